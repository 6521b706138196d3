"""Capture mode's reading of each format, from real opencode 1.18.33 requests (tests/fixtures/capture_*.json,
recorded by tests/record_capture_fixtures.py): the LLM chat view, the comment and the tool-call check.

Each flow is played through the Capture addon's hooks as mitmproxy calls them, the stream in small pieces.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mitmproxy import contentviews, http
from mitmproxy.test import taddons, tflow

from addon.capture.recorder import Capture, chat_body
from addon.capture.view import CaptureChatView
from addon.formats.exchange import Exchange
from addon.inspection.sessions import keys as session_keys
from addon.inspection.sessions.addon import Sessions

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FORMATS = {
    "gemini_native": ("gemini-2.5-flash", "gemini-2.5-flash", "Gemini generateContent"),
    "anthropic": ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "Anthropic Messages"),
    "openai_responses": ("gpt-4o", "gpt-4o-2024-08-06", "OpenAI Responses"),
}
PATH_IN_FIXTURES = "/tmp/cap/run/project/notes.txt"


def fixture(fmt: str) -> dict:
    return json.loads((FIXTURES / f"capture_{fmt}.json").read_text())


def make_flow(host: str, exchange: dict) -> http.HTTPFlow:
    flow = tflow.tflow()
    flow.request = http.Request.make(
        "POST", f"https://{host}{exchange['path']}", json.dumps(exchange["request"]), exchange["request_headers"]
    )
    flow.response = None
    return flow


def play(addons: object, host: str, exchange: dict, piece: int = 7, status: int = 200) -> http.HTTPFlow:
    """The exchange through the hooks of the addon (or list of addons, in chain order): request, response headers,
    the stream in small pieces, the end."""
    chain = addons if isinstance(addons, list) else [addons]

    def hook(name: str) -> None:
        for addon in chain:
            if hasattr(addon, name):
                getattr(addon, name)(flow)

    flow = make_flow(host, exchange)
    hook("requestheaders")
    hook("request")
    flow.response = http.Response.make(status, b"", exchange["response_headers"])
    hook("responseheaders")
    body = exchange["response"].encode()
    if callable(flow.response.stream):
        passed = b"".join(
            b"".join(flow.response.stream(body[i : i + piece])) for i in range(0, len(body), piece)
        ) + b"".join(flow.response.stream(b""))
        assert passed == body  # unchanged, piece by piece
    else:
        flow.response.content = body
    hook("response")
    return flow


def view(flow: http.HTTPFlow, message: http.Message) -> str:
    metadata = contentviews.Metadata(flow=flow, http_message=message, content_type=message.headers.get("content-type"))
    return CaptureChatView().prettify(message.get_content(strict=False) or b"", metadata)


@pytest.fixture
def capture():
    addon = Capture()
    with taddons.context(addon):
        yield addon


@pytest.mark.parametrize("fmt", FORMATS)
def test_tool_call_turn(capture, fmt):
    record = fixture(fmt)
    client_model, upstream_model, title = FORMATS[fmt]
    flow = play(capture, record["host"], record["exchanges"][0])
    meta = Exchange.of(flow)
    assert meta.capture == fmt and meta.client_model == client_model and meta.upstream_model == upstream_model
    [call] = meta.answer["tool_calls"]
    assert call["name"] == "read" and json.loads(call["arguments"]) == {"filePath": PATH_IN_FIXTURES}
    assert meta.answer["finish_reason"] == "tool_calls" and meta.answer["usage"]["completion_tokens"] == 30
    assert meta.t_request <= meta.t_first_chunk <= meta.t_end and meta.tool_checks == []
    assert flow.comment.startswith(f"1 tool call: read | {client_model} -> {upstream_model} | ")
    # The fixtures' Anthropic and Responses answers report cached prompt tokens; the comment names them.
    assert re.search(r" in( \([\d,]+ cached\))? / 30 out tokens \| ", flow.comment), flow.comment
    assert flow.marked == ":wrench:"

    request = view(flow, flow.request)
    assert request.startswith(f"{title} via {record['host']}, read as OpenAI chat\n\nchat request: 2 messages, 3 tools")
    assert "[1] user\n    Read the file " + PATH_IN_FIXTURES in request
    assert "read(filePath: string*, offset?: " in request
    answer = view(flow, flow.response)
    assert answer.startswith(f"{title} via {record['host']}, stream read as chunks")
    assert f'tool call [0] read ({call["id"]}):\n  {{\n    "filePath": "{PATH_IN_FIXTURES}"\n  }}' in answer
    assert "tool-call check: the call fits the offered tools" in answer
    assert "stream ended without [DONE]" not in answer


@pytest.mark.parametrize("fmt", FORMATS)
def test_tool_result_turn(capture, fmt):
    record = fixture(fmt)
    flow = play(capture, record["host"], record["exchanges"][1])
    meta = Exchange.of(flow)
    assert meta.answer["content"].startswith("Tool said: <path>" + PATH_IN_FIXTURES)
    assert meta.answer["finish_reason"] == "stop" and flow.marked == ""
    request = view(flow, flow.request)
    assert "chat request: 4 messages, 3 tools" in request
    assert "    tool call read (" in request and ": tool result for " in request and "(read)" in request
    assert "PELICAN-7" in request
    assert "text:\n  Tool said: <path>" in view(flow, flow.response)


@pytest.mark.parametrize("fmt", FORMATS)
def test_tool_call_that_does_not_fit(capture, fmt):
    record = fixture(fmt)
    exchange = dict(record["exchanges"][0])
    exchange["response"] = exchange["response"].replace("filePath", "fileName")  # the model misnamed the field
    flow = play(capture, record["host"], exchange)
    assert Exchange.of(flow).tool_checks == [
        f"read ({Exchange.of(flow).answer['tool_calls'][0]['id']}): missing required field 'filePath'"
    ]
    assert flow.marked == ":warning:" and flow.comment.startswith("tool-call problem: read (")
    assert "missing required field 'filePath'" in view(flow, flow.response)


def test_price_from_litellms_table(capture):
    capture.costs = {"gemini/gemini-2.5-flash": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}}
    record = fixture("gemini_native")
    flow = play(capture, record["host"], record["exchanges"][0])
    assert "| $0.0013 |" in flow.comment  # 1,200 in, 30 out


def test_upstream_error_is_marked(capture):
    record = fixture("anthropic")
    exchange = {**record["exchanges"][0], "response_headers": {"content-type": "application/json"}}
    exchange["response"] = '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    flow = play(capture, record["host"], exchange, status=529)
    assert flow.marked == ":x:" and flow.comment.startswith("error: upstream 529: ") and "Overloaded" in flow.comment


@pytest.mark.parametrize(
    "host, path, body",
    [
        ("registry.npmjs.org", "/v1/messages", b'{"messages": []}'),  # not a provider's host
        ("api.anthropic.com", "/v1/models", b"{}"),  # not an exchange's path
        ("api.anthropic.com", "/v1/messages", b"not json"),  # the path, but not the format
        ("api.openai.com", "/v1/responses", b'{"model": "gpt-4o"}'),
    ],
)
def test_other_traffic_is_left_alone(capture, host, path, body):
    flow = tflow.tflow()
    flow.request = http.Request.make("POST", f"https://{host}{path}", body)
    flow.response = None
    capture.requestheaders(flow)
    capture.request(flow)
    flow.response = http.Response.make(200, b'{"ok": true}', {"content-type": "application/json"})
    capture.responseheaders(flow)
    capture.response(flow)
    assert "llm" not in flow.metadata and not flow.comment and not flow.marked and flow.response.stream is False


def test_json_answer_of_gemini(capture):
    record = fixture("gemini_native")
    events = [
        json.loads(line[6:]) for line in record["exchanges"][1]["response"].splitlines() if line.startswith("data:")
    ]
    whole = {
        **events[-1],
        "candidates": [
            {
                **events[-1]["candidates"][0],
                "content": {
                    "role": "model",
                    "parts": [p for e in events for p in e["candidates"][0]["content"]["parts"]],
                },
            }
        ],
    }
    exchange = {**record["exchanges"][1], "path": "/v1beta/models/gemini-2.5-flash:generateContent"}
    exchange |= {"response": json.dumps(whole), "response_headers": {"content-type": "application/json"}}
    flow = play(capture, record["host"], exchange)
    assert Exchange.of(flow).answer["content"].startswith("Tool said: ")
    assert view(flow, flow.response).startswith("Gemini generateContent via generativelanguage.googleapis.com (JSON)")


@pytest.mark.parametrize("fmt", FORMATS)
def test_two_turns_of_one_session(fmt):
    """opencode's two requests of one task, in any provider's format: turns 1 and 2 of the session its headers name,
    the comment's prefix, and what is new in turn 2 (the model's tool call and the tool's result)."""
    record = fixture(fmt)
    capture, sessions = Capture(), Sessions(chat_body)
    with taddons.context(capture, sessions):
        first, second = (play([capture, sessions], record["host"], exchange) for exchange in record["exchanges"])
    session_id = record["exchanges"][0]["request_headers"]["x-session-affinity"]
    tag = session_keys.tag(session_id)
    assert [Exchange.of(f).session["turn"] for f in (first, second)] == [1, 2]
    assert {Exchange.of(f).session["id"] for f in (first, second)} == {session_id}
    assert first.comment.startswith(f"1 tool call: read | {FORMATS[fmt][0]} -> ") and first.comment.endswith(
        f" | {tag} #1"
    )
    assert second.comment.startswith(f"{FORMATS[fmt][0]} -> ") and second.comment.endswith(f" | {tag} #2")
    diff = Exchange.of(second).session["diff"]
    assert diff["base_turn"] == 1 and diff["new_from"] == 2 and diff["new_count"] == 2
    assert diff.get("rewritten_at") is None and not diff.get("system_changed") and not diff.get("tools_changed")
    assert [(m["role"], m.get("calls"), m.get("tool")) for m in diff["new"]] == [
        ("assistant", ["read"], None),
        ("tool", None, "read"),
    ]
    request = view(second, second.request)
    assert f"what is new in turn 2 (session {tag} = {session_id}):\n" in request
    assert "  +2 messages (assistant with 1 tool call, 1 tool result) since turn 1\n" in request
    assert "    [2] assistant, tool calls: read" in request and "    [3] tool result for " in request
    assert request.index("what is new in turn 2") < request.index("chat request: 4 messages, 3 tools")
    assert f"what is new in turn 1 (session {tag} = {session_id}):\n  first turn: 2 messages, 3 tools" in view(
        first, first.request
    )
    session = sessions.index.get(session_id)
    assert session is not None and [t.number for t in session.turns] == [1, 2]
    assert [t.tool_calls for t in session.turns] == [1, 0] and session.tokens_out == 30 + session.turns[1].tokens_out


def test_gemini_call_ids_are_the_same_in_the_answer_and_in_the_next_request():
    """Gemini's calls have no ids: the one capture mode gives a call in turn 1's answer is the one turn 2's request
    names it by (and its tool result points at), whichever turn the call comes in."""
    record = fixture("gemini_native")
    capture = Capture()
    with taddons.context(capture):
        first, second = (play(capture, record["host"], exchange) for exchange in record["exchanges"])
    answered = Exchange.of(first).answer["tool_calls"][0]["id"]
    messages = json.loads(chat_body(second))["messages"]
    repeated = [c["id"] for m in messages for c in m.get("tool_calls") or ()]
    results = [m["tool_call_id"] for m in messages if m["role"] == "tool"]
    assert answered.startswith("call_") and repeated == [answered] and results == [answered]
    later = {**record["exchanges"][1]["request"]}
    later["contents"] = [{"role": "user", "parts": [{"text": "first"}]}, *later["contents"]]  # one more turn before
    moved = make_flow(record["host"], {**record["exchanges"][1], "request": later})
    with taddons.context(capture):
        capture.requestheaders(moved)
        capture.request(moved)
    assert [c["id"] for m in json.loads(chat_body(moved))["messages"] for c in m.get("tool_calls") or ()] == [answered]


def test_the_log_shows_the_tool_calls_with_their_arguments(capture, caplog):
    caplog.set_level("INFO")
    record = fixture("gemini_native")
    flow = play(capture, record["host"], record["exchanges"][0])
    call = Exchange.of(flow).answer["tool_calls"][0]
    assert f"  tool call read ({call['id']}): {call['arguments']}" in caplog.text
    assert "filePath" in call["arguments"]


def test_map_remote_makes_connections_lazy():
    from mitmproxy.addons.mapremote import MapRemote
    from mitmproxy.addons.proxyserver import Proxyserver

    capture = Capture()
    with taddons.context(Proxyserver(), MapRemote(), capture) as tctx:
        assert tctx.options.connection_strategy == "eager"  # mitmproxy's default, left alone without a rule
        tctx.configure(capture, map_remote=["|https://generativelanguage.googleapis.com|http://127.0.0.1:9102"])
        assert tctx.options.connection_strategy == "lazy"
