"""Replay (request/replay.py) with the client request kept beside (client_request.py) and routing, hooks called
directly: a replayed flow is translated once, with the key of now, and starts its metadata afresh."""

from __future__ import annotations

import json

import pytest
from mitmproxy.test import taddons, tflow

from addon.formats.exchange import Exchange
from addon.request.client_request import ClientRequest
from addon.request.replay import Replay
from addon.request.routing import Routing
from tests.support import configure_routing

KEY = "AIzaSy-test-key-000000000000"
CONFIG = {
    "provider": {
        "local": {
            "options": {
                "baseURL": "http://127.0.0.1:8000/v1",
                "proxy": {"models": {"local-model": "gemini-2.5-flash", "local-3": "gemini-3-pro-preview"}},
            },
            "models": {"local-model": {}, "local-3": {}},
        }
    },
}
SIGNED = {
    "model": "local-3",
    "messages": [
        {"role": "user", "content": "read it"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1__thought__SIG1", "type": "function", "function": {"name": "read", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1__thought__SIG1", "content": "text"},
    ],
}


@pytest.fixture
def replay_hooks(tmp_path, monkeypatch):
    """(hooks, tctx): hooks(flow) runs Replay, ClientRequest and Routing's request hooks as proxy.py orders them."""

    def start(key: str | None = KEY, proxy_key: str | None = None):
        monkeypatch.delenv("GEMINI_API_KEY", raising=False)
        monkeypatch.delenv("PROXY_API_KEY", raising=False)
        if key:
            monkeypatch.setenv("GEMINI_API_KEY", key)
        if proxy_key:
            monkeypatch.setenv("PROXY_API_KEY", proxy_key)
        addons = [Replay(), ClientRequest(), Routing()]
        tctx = taddons.context(*addons)
        tctx.__enter__()
        configure_routing(tctx, addons[2], CONFIG, tmp_path)

        def hooks(flow):
            for addon in addons:
                addon.request(flow)

        started.append(tctx)
        return hooks

    started: list = []
    yield start
    for tctx in started:
        tctx.__exit__(None, None, None)


def live_chat(body: dict, path: str = "/v1/chat/completions", **headers: str):
    flow = tflow.tflow(live=True)
    flow.request.method, flow.request.path = "POST", path
    flow.request.headers.update(headers)
    flow.request.content = json.dumps(body).encode()
    return flow


def as_replayed(flow):
    """What mitmproxy's ClientPlayback.start_replay and the replay layer do to a stored flow."""
    flow.backup()
    flow.is_replay, flow.response, flow.error = "request", None, None
    flow.live = True
    return flow


def answered(flow):
    flow.response = tflow.tresp()
    record = Exchange.of(flow)
    record.answer, record.t_end = {"content": "old answer", "usage": {"prompt_tokens": 9}}, 1.0
    flow.live = False
    return flow


def test_a_replayed_chat_is_translated_once_with_its_signatures_restored_once(replay_hooks):
    hooks = replay_hooks()
    flow = live_chat(SIGNED, authorization="Bearer client-secret")
    hooks(flow)
    first_url, first_body = flow.request.url, flow.request.content
    assert first_url == "http://upstream.test/v1beta/openai/chat/completions"
    answered(flow)
    hooks(as_replayed(flow))
    meta = Exchange.of(flow)
    assert flow.response is None and flow.request.url == first_url  # not .../openai/beta/openai/...
    assert flow.request.content == first_body  # same model and body as the original upstream request
    body = json.loads(flow.request.content)
    call = body["messages"][1]["tool_calls"][0]
    assert call["id"] == "call_1" and call["extra_content"]["google"]["thought_signature"] == "SIG1"
    assert meta.repairs.count("restored thought signature for call call_1") == 1
    assert meta.replay["n"] == 1 and meta.replay["from"] == "client request"
    assert meta.answer is None and meta.t_end is None  # the old answer is not reported again
    assert flow.request.headers["authorization"] == "Bearer AIza...00"  # the mask in the flow, the key on the wire
    assert bytes(flow.request.headers).count(f"Bearer {KEY}".encode()) == 1
    assert "client-secret" not in json.dumps(meta.client_request["headers"])


def test_each_replay_counts_and_uses_the_key_of_now(replay_hooks):
    flow = live_chat({"model": "local-model", "messages": [{"role": "user", "content": "hi"}]})
    replay_hooks()(flow)
    answered(flow)
    hooks = replay_hooks(key="AIzaSy-rotated-key-11111111")
    hooks(as_replayed(flow))
    answered(flow)
    hooks(as_replayed(flow))
    assert Exchange.of(flow).replay["n"] == 2
    assert b"Bearer AIzaSy-rotated-key-11111111" in bytes(flow.request.headers)
    assert flow.request.url == "http://upstream.test/v1beta/openai/chat/completions"


def test_an_already_restored_upstream_request_is_not_repaired_again(replay_hooks):
    """A flow recorded without its client request (cut, or an older file): its upstream request goes out again as
    it was; the signatures it already carries are not touched."""
    hooks = replay_hooks()
    flow = live_chat(SIGNED)
    hooks(flow)
    sent = flow.request.content
    answered(flow)
    Exchange.of(flow).client_request = None
    hooks(as_replayed(flow))
    assert json.loads(flow.request.content) == json.loads(sent)
    assert Exchange.of(flow).repairs == [] and Exchange.of(flow).replay["from"] == "upstream request"
    assert Exchange.of(flow).client_model == "local-3"  # the answer is named for the client again


def test_an_edited_request_is_sent_with_the_edit(replay_hooks):
    hooks = replay_hooks()
    flow = live_chat({"model": "local-model", "messages": [{"role": "user", "content": "hi"}]})
    hooks(flow)
    answered(flow)
    flow.backup()  # what mitmweb's editor does before it changes the flow
    edited = json.loads(flow.request.content) | {"temperature": 0.1}
    flow.request.content = json.dumps(edited).encode()
    hooks(as_replayed(flow))
    body = json.loads(flow.request.content)
    assert body["temperature"] == 0.1 and body["model"] == "gemini-2.5-flash"
    assert flow.request.url == "http://upstream.test/v1beta/openai/chat/completions"
    assert Exchange.of(flow).replay["from"] == "edited request"


def test_no_key_now_fails_the_replay_and_sends_nothing(replay_hooks):
    flow = live_chat({"model": "local-model", "messages": [{"role": "user", "content": "hi"}]})
    replay_hooks()(flow)
    answered(flow)
    replay_hooks(key=None)(as_replayed(flow))
    assert flow.response is not None and flow.response.status_code == 401
    error = json.loads(flow.response.content)["error"]
    assert error["code"] == "upstream_key_missing" and "GEMINI_API_KEY" in error["message"]
    assert Exchange.of(flow).error == error["message"]


def test_a_live_request_without_a_key_is_still_forwarded(replay_hooks):
    """The key check is for replays only: an upstream that needs no key (a local server) keeps working."""
    flow = live_chat({"model": "local-model", "messages": [{"role": "user", "content": "hi"}]})
    replay_hooks(key=None)(flow)
    assert flow.response is None and "authorization" not in flow.request.headers


def test_a_replay_passes_the_proxy_key_check(replay_hooks):
    hooks = replay_hooks(proxy_key="proxy-secret")
    flow = live_chat(
        {"model": "local-model", "messages": [{"role": "user", "content": "hi"}]}, authorization="Bearer proxy-secret"
    )
    hooks(flow)
    assert flow.response is None
    answered(flow)
    hooks(as_replayed(flow))
    assert flow.response is None and Exchange.of(flow).replay["n"] == 1
    stranger = live_chat({"model": "local-model", "messages": []})
    hooks(stranger)
    assert stranger.response.status_code == 401


def test_a_passthrough_path_is_prefixed_once(replay_hooks):
    hooks = replay_hooks()
    flow = live_chat({"input": "x", "model": "gemini-embedding-001"}, path="/v1/embeddings")
    hooks(flow)
    assert flow.request.url == "http://upstream.test/v1beta/openai/embeddings"
    answered(flow)
    hooks(as_replayed(flow))
    assert flow.request.url == "http://upstream.test/v1beta/openai/embeddings"


def test_a_fallback_attempt_in_flight_is_left_to_routing(replay_hooks):
    hooks = replay_hooks()
    attempt = live_chat({"model": "local-3", "messages": [{"role": "user", "content": "hi"}]})
    attempt.is_replay = "request"
    attempt.metadata["llm"] = Exchange(fallback_of="abc", attempt=1, client_model="local-model")
    hooks(attempt)
    meta = Exchange.of(attempt)
    assert meta.replay is None and meta.client_model == "local-model" and meta.upstream_model == "gemini-3-pro-preview"


def test_a_saved_fallback_attempt_replays_under_the_fallbacks_name(replay_hooks):
    hooks = replay_hooks()
    attempt = live_chat({"model": "local-3", "messages": [{"role": "user", "content": "hi"}]})
    attempt.is_replay = "request"
    attempt.metadata["llm"] = Exchange(fallback_of="abc", attempt=1, client_model="local-model")
    hooks(attempt)
    sent = attempt.request.content
    answered(attempt)
    hooks(as_replayed(attempt))
    meta = Exchange.of(attempt)
    assert meta.replay["n"] == 1 and meta.fallback_of == "abc" and meta.client_model == "local-model"
    assert meta.upstream_model == "gemini-3-pro-preview" and attempt.request.content == sent
    assert attempt.request.url == "http://upstream.test/v1beta/openai/chat/completions"
