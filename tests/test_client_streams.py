"""The chat-stream translators (formats/anthropic_stream.py, responses_stream.py, chat_stream_in.py) and the
client formats' pure parts (formats/client_formats.py)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from addon.formats import client_formats
from addon.formats.anthropic_stream import AnthropicStream
from addon.formats.chat_stream_in import ChatStreamReader
from addon.formats.responses_stream import ResponsesStream


def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict | None = None) -> bytes:
    body: dict[str, Any] = {
        "id": "x",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        body["usage"] = usage
    return b"data: " + orjson.dumps(body) + b"\n\n"


STREAM = (
    chunk({"role": "assistant", "reasoning_content": "Hmm. "})
    + chunk({"reasoning_content": "Yes."})
    + chunk({"content": "Hello "})
    + chunk({"content": "there."})
    + chunk({"tool_calls": [{"index": 0, "id": "c1__thought__sig", "function": {"name": "read", "arguments": '{"pa'}}]})
    + chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'th":"a"}'}}]})
    + chunk({}, "tool_calls")
    + chunk({}, None, {"prompt_tokens": 12, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 2}})
    + b"data: [DONE]\n\n"
)


def events(out: bytes) -> list[tuple[str, dict]]:
    found = []
    for block in out.split(b"\n\n"):
        if block:
            name, data = block.split(b"\n", 1)
            found.append((name.removeprefix(b"event: ").decode(), json.loads(data.removeprefix(b"data: "))))
    return found


def feed_awkwardly(translator: ChatStreamReader, data: bytes, size: int = 7) -> bytes:
    out = b"".join(translator.feed(data[i : i + size]) for i in range(0, len(data), size))
    return out + translator.end()


@pytest.mark.parametrize("size", [1, 7, 10_000])
def test_anthropic_stream_writes_every_block_and_the_end(size: int) -> None:
    found = events(feed_awkwardly(AnthropicStream("local-3"), STREAM, size))
    names = [name for name, _ in found]
    assert names == [
        "message_start",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    assert found[0][1]["message"]["model"] == "local-3"
    assert [found[i][1]["content_block"]["type"] for i in (1, 5, 9)] == ["thinking", "text", "tool_use"]
    assert found[9][1]["content_block"]["id"] == "c1__thought__sig"
    assert found[10][1]["delta"] == {"type": "input_json_delta", "partial_json": '{"pa'}
    assert found[13][1]["delta"]["stop_reason"] == "tool_use"
    assert found[13][1]["usage"] == {"input_tokens": 10, "output_tokens": 7, "cache_read_input_tokens": 2}


@pytest.mark.parametrize("size", [1, 7, 10_000])
def test_responses_stream_writes_every_item_and_the_end(size: int) -> None:
    found = events(feed_awkwardly(ResponsesStream("local-3", {"instructions": "i"}), STREAM, size))
    names = [name for name, _ in found]
    assert names[:2] == ["response.created", "response.in_progress"] and names[-1] == "response.completed"
    for name in (
        "response.reasoning_summary_part.added", "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done", "response.reasoning_summary_part.done",
        "response.content_part.added", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
    ):  # fmt: skip
        assert name in names
    assert names.count("response.output_item.added") == names.count("response.output_item.done") == 3
    assert [data["sequence_number"] for _, data in found] == list(range(len(found)))
    final = found[-1][1]["response"]
    assert [item["type"] for item in final["output"]] == ["reasoning", "message", "function_call"]
    assert final["output"][2]["arguments"] == '{"path":"a"}' and final["output"][2]["call_id"] == "c1__thought__sig"
    assert final["output"][1]["content"][0]["text"] == "Hello there."
    assert final["usage"]["input_tokens"] == 12 and final["usage"]["input_tokens_details"]["cached_tokens"] == 2
    assert final["instructions"] == "i"


def test_custom_tool_calls_come_back_as_custom_tool_calls() -> None:
    call = {"index": 0, "id": "c", "function": {"name": "apply_patch", "arguments": '{"input": "*** Begin"}'}}
    out = ResponsesStream("m", {}, frozenset({"apply_patch"})).feed(
        chunk({"tool_calls": [call]}, "tool_calls") + b"data: [DONE]\n\n"
    )
    final = events(out)[-1][1]["response"]
    assert final["output"][0]["type"] == "custom_tool_call" and final["output"][0]["input"] == "*** Begin"


@pytest.mark.parametrize("make", [lambda: AnthropicStream("m"), lambda: ResponsesStream("m", {})])
def test_a_stream_that_stops_short_ends_with_the_formats_error(make: Any) -> None:
    translator = make()
    out = translator.feed(chunk({"content": "Hel"})) + translator.end()
    last = events(out)[-1]
    assert last[0] == "error"
    assert "ended before" in json.dumps(last[1])
    assert translator.fail("again", 502, None) == b""  # exactly one terminal sequence


@pytest.mark.parametrize("make", [lambda: AnthropicStream("m"), lambda: ResponsesStream("m", {})])
def test_an_error_event_from_the_upstream_ends_the_stream(make: Any) -> None:
    translator = make()
    error = b'data: {"error": {"message": "Gemini: quota", "code": "RESOURCE_EXHAUSTED"}}\n\n'
    found = events(translator.feed(chunk({"content": "a"}) + error + chunk({"content": "late"})) + translator.end())
    assert found[-1][0] == "error" and "quota" in json.dumps(found[-1][1])
    assert not any("late" in json.dumps(data) for _, data in found)


def test_anthropic_error_event_shape() -> None:
    translator = AnthropicStream("m")
    name, data = events(translator.fail("Upstream failed: gone", 502, "upstream_unreachable"))[0]
    assert (name, data) == (
        "error",
        {"type": "error", "error": {"type": "api_error", "message": "Upstream failed: gone"}},
    )


def test_responses_failure_is_response_failed_then_error() -> None:
    found = events(ResponsesStream("m", {}).fail("cut", 502, "upstream_unreachable"))
    assert [name for name, _ in found] == ["response.created", "response.in_progress", "response.failed", "error"]
    assert found[2][1]["response"]["error"] == {"code": "upstream_unreachable", "message": "cut"}


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("/v1/responses", client_formats.RESPONSES),
        ("/responses", client_formats.RESPONSES),
        ("/v1/messages?beta=true", client_formats.ANTHROPIC),
        ("/messages/", client_formats.ANTHROPIC),
        ("/v1/messages/count_tokens?beta=true", client_formats.COUNT_TOKENS),
        ("/v1/chat/completions", None),
        ("/v1/responses/resp_1", None),
    ],
)
def test_client_format_by_path(path: str, fmt: str | None) -> None:
    assert client_formats.client_format(path) == fmt


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id_unsupported"),
        ({"tools": [{"type": "computer_use_preview"}]}, "unsupported_tool_type"),
        ({"tools": [{"type": "file_search"}]}, "unsupported_tool_type"),
    ],
)
def test_responses_refusals(body: dict, code: str) -> None:
    refusal = client_formats.check_responses(body)
    assert refusal is not None and refusal.status == 400 and refusal.code == code


def test_responses_takes_codex_tools() -> None:
    tools = [{"type": t} for t in ("function", "custom", "namespace", "web_search")]
    assert client_formats.check_responses({"tools": tools, "store": False}) is None


def test_anthropic_refusals() -> None:
    assert client_formats.check_anthropic({"messages": []}) is None
    assert client_formats.check_anthropic({}) is not None
    refusal = client_formats.check_anthropic({"messages": [], "tools": [{"type": "web_search_20250305", "name": "w"}]})
    assert refusal is not None and "server tool" in refusal.message


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (429, "rate_limit_error"),
        (502, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_errors_in_anthropic_shape(status: int, kind: str) -> None:
    body = json.loads(client_formats.error_in_format(client_formats.ANTHROPIC, "no", status))
    assert body == {"type": "error", "error": {"type": kind, "message": "no"}}


def test_errors_in_responses_shape_are_openais() -> None:
    body = json.loads(client_formats.error_in_format(client_formats.RESPONSES, "no", 400, "bad"))
    assert body == {"error": {"message": "no", "type": "invalid_request_error", "code": "bad"}}
