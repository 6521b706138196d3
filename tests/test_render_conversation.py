"""addon/inspection/render/conversation.py: a chat request and answer in words, as every LLM view shows them.
The views' own tests (test_chatview.py and the others) check the whole text; these check the pieces directly."""

from __future__ import annotations

import orjson
import pytest
from mitmproxy.contentviews import Metadata
from mitmproxy.test import tflow

from addon.formats.exchange import Exchange
from addon.inspection.chat_assembly import assemble_json, assemble_sse, from_answer
from addon.inspection.render import conversation

READ = {
    "type": "function",
    "function": {
        "name": "read",
        "description": "Read a file.\nLong help.",
        "parameters": {
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "mode": {"enum": ["a", "b"]},
                "n": {"type": ["integer", "null"]},
            },
            "required": ["path"],
        },
    },
}
CALL = {"id": "call_1", "type": "function", "function": {"name": "read", "arguments": '{"path": "a"}'}}
REQUEST = {
    "model": "local-3",
    "messages": [
        {
            "role": "user",
            "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "u"}}],
        },
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "x" * 2500},
        {"role": "tool", "tool_call_id": "call_9", "content": "?"},
    ],
    "tools": [READ],
    "temperature": 0.2,
}


def frame(obj: dict) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


STREAM = (
    frame(
        {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}]}
    )
    + frame(
        {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, **CALL}]}}]}
    )
    + frame({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
)


@pytest.mark.parametrize("body", [None, b"", b"not json", b"[]", b'{"messages": "no"}', b'{"contents": []}'])
def test_what_is_not_a_chat_request(body: bytes | None) -> None:
    assert conversation.chat_request(body) is None


def test_a_chat_request() -> None:
    assert conversation.chat_request(orjson.dumps(REQUEST)) == REQUEST


def test_the_request_names_tool_results_after_their_calls_and_shortens_long_text() -> None:
    lines = conversation.request(REQUEST)
    assert lines[:2] == ["chat request: 4 messages, 1 tools", ""]
    assert "[1] assistant" in lines and "    tool call read (call_1):" in lines
    assert "[2] tool: tool result for call_1 (read)  (2500 chars)" in lines
    assert "[3] tool: tool result for call_9 (unknown call)" in lines
    assert "    [image_url: u]" in lines and "    ... (700 chars) ..." in lines
    assert "  read(path: string*, mode?: a|b, n?: integer|null)" in lines and "      Read a file." in lines
    assert lines[-2:] == ["  model: local-3", "  temperature: 0.2"]


def test_the_answer_its_check_and_its_chunks() -> None:
    offered = {"read": READ["function"]["parameters"]}
    lines = conversation.response(assemble_sse(STREAM), Exchange(chunk_times=[0.5]), offered, "title")
    assert lines[0] == "title" and "stream ended without [DONE] — cut or incomplete" in lines
    assert ["text:", "  Hi"] == lines[lines.index("text:") : lines.index("text:") + 2]
    assert "tool-call check: the call fits the offered tools" in lines
    assert '    0    0.500s  role=assistant +text "Hi"' in lines and lines[-1].endswith("finish=tool_calls")
    unchecked = conversation.response(assemble_sse(STREAM), Exchange(), None, "t")
    assert "tool-call check: skipped, the request body is not available" in unchecked


def test_a_cut_body_shows_the_stored_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    ex = Exchange(body_truncated=True, answer={"content": "whole answer"}, error="upstream 502")
    lines = conversation.response(assemble_sse(STREAM), ex, None, "t")
    assert "the stored body was cut at the cap; the answer below is flow.metadata['llm']['answer']" in lines
    assert "  whole answer" in lines and "  Hi" not in lines and "error: upstream 502" in lines
    monkeypatch.setattr(conversation, "CHUNK_ROWS", 1)
    assert conversation.response(assemble_sse(STREAM), Exchange(), None, "t")[-1] == "... (2 more chunks)"


def test_a_stored_answer_without_chunks_has_no_table() -> None:
    lines = conversation.response(from_answer({"content": "A"}), Exchange(), None, "t")
    assert not any(line.startswith("chunks (") for line in lines)


def test_the_upstream_answer_with_its_raw_events_or_body() -> None:
    lines = conversation.upstream(STREAM, None)
    assert lines[0] == "upstream answer, before the proxy rewrote it" and lines[-4] == "raw events:"
    assert lines[-3].startswith('[0] data: {"object":"chat.completion.chunk"')
    error = b'{"error": {"message": "quota"}}'
    lines = conversation.upstream(error, None)
    assert lines[0].startswith("upstream body, before the proxy rewrote it: The body is not a chat completion")
    assert lines[-2:] == ["raw body:", error.decode()]
    json_answer = orjson.dumps({"choices": [{"index": 0, "message": {"content": "ok"}}]})
    assert conversation.upstream(json_answer, None)[0] == "upstream answer, before the proxy rewrote it (JSON)"
    assert assemble_json(json_answer).content == "ok"


def test_the_offered_tools_come_from_the_clients_body_before_the_flows_request() -> None:
    flow = tflow.tflow()
    flow.request.content = b'{"contents": []}'  # the native path: the flow's request is Gemini's body
    ex = Exchange(client_request={"method": "POST", "path": "/", "headers": [], "body": orjson.dumps(REQUEST)})
    assert conversation.offered(Metadata(flow=flow), ex) == {"read": READ["function"]["parameters"]}
    assert conversation.offered(Metadata(flow=flow), Exchange()) == {}
    flow.request.content = b"not json"
    assert conversation.offered(Metadata(flow=flow), Exchange()) is None
    assert conversation.offered(Metadata(), Exchange()) is None
