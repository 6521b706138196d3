"""What counts as the same request for playback (response/replay_match.py), and OfflineReplay's hooks."""

from __future__ import annotations

import json

import pytest
from mitmproxy import io
from mitmproxy.addons.serverplayback import ServerPlayback
from mitmproxy.test import taddons, tflow

from addon.formats.exchange import Exchange
from addon.response import replay_match
from addon.response.offline_replay import HEADER, OfflineReplay


def body(call_id: str = "call_1__thought__SIG", signature: str | None = "SIG", date: str = "Thu Nov 27 2025", **extra):
    call = {"id": call_id, "type": "function", "function": {"name": "read", "arguments": '{"filePath": "/p/a.txt"}'}}
    if signature:
        call["extra_content"] = {"google": {"thought_signature": signature}}
    return {
        "model": "gemini-3-pro-preview",
        "messages": [
            {"role": "system", "content": f"Today's date: {date}. Session 0b7c8d2e-1111-4222-8333-944455556666."},
            {"role": "user", "content": "read it"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call_id, "content": "text"},
        ],
        **extra,
    }


def key(data: dict) -> str:
    return replay_match.request_key(
        "POST", "https", "/v1beta/openai/chat/completions", replay_match.normalized(json.dumps(data).encode())
    )


@pytest.mark.parametrize(
    "other",
    [
        body(call_id="call_9", signature=None),  # another run's ids, no signature
        body(signature="skip_thought_signature_validator"),
        body(date="Fri Nov 28 2025"),
        body(user="someone", metadata={"session": "x"}, prompt_cache_key="ses_1"),
    ],
    ids=["ids", "signature", "date", "session-fields"],
)
def test_what_changes_between_runs_is_ignored(other):
    assert key(other) == key(body())


@pytest.mark.parametrize(
    "other",
    [body(temperature=0.2), body(model="gemini-2.5-pro"), {**body(), "messages": body()["messages"][:2]}],
    ids=["temperature", "model", "messages"],
)
def test_what_is_asked_is_not(other):
    assert key(other) != key(body())


def test_the_difference_is_said_against_the_closest():
    recorded = [("/p", replay_match.normalized(json.dumps(body()).encode()))]
    changed = body()
    changed["messages"][1]["content"] = "read it again"
    form = replay_match.normalized(json.dumps(changed).encode())
    assert "agrees on 1 message(s); messages[1] is now" in replay_match.difference(form, "/p", recorded)
    assert replay_match.difference(form, "/q", recorded) == "the recording has no request to /q"
    hotter = replay_match.normalized(json.dumps(body(temperature=1)).encode())
    assert replay_match.difference(hotter, "/p", recorded).endswith("differs in temperature")


def recorded_flow(data: dict):
    flow = tflow.tflow(resp=True)
    flow.request.method, flow.request.path = "POST", "/v1beta/openai/chat/completions"
    flow.request.content = json.dumps(data).encode()
    flow.metadata["llm"] = {"key": "(none)", "answer": {"content": "recorded"}}
    return flow


def test_playback_matches_by_key_and_refuses_the_rest(tmp_path):
    path = tmp_path / "session.mitm"
    with path.open("wb") as f:
        io.FlowWriter(f).add(recorded_flow(body()))
    playback, addon = ServerPlayback(), OfflineReplay()
    with taddons.context(playback, addon) as tctx:
        tctx.configure(addon, server_replay=[str(path)])
        assert tctx.options.server_replay_use_headers == [HEADER] and tctx.options.server_replay_ignore_content
        addon.running()
        live = recorded_flow(body(call_id="call_other", signature=None))
        live.response, live.live = None, True
        addon.request(live)
        playback.request(live)
        assert live.is_replay == "response" and Exchange.of(live).recorded["key"] == live.request.headers[HEADER]
        addon.response(live)
        assert Exchange.of(live).answer == {"content": "recorded"}
        unknown = recorded_flow(body(temperature=0.1))
        unknown.response, unknown.live = None, True
        addon.request(unknown)
        error = json.loads(unknown.response.content)["error"]
        assert unknown.response.status_code == 404 and error["code"] == "no_recorded_answer"
        assert error["message"].startswith(f"No recorded answer in {path} matches this request")
