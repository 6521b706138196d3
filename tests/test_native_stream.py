"""addon/gemini/native_stream.py and the NativeStream rewriter (addon/response/native_responses.py): Gemini's
native answers in OpenAI's shape, streams translated event by event however the bytes are split."""

from __future__ import annotations

import json

import orjson
import pytest

from addon.formats.sse import SSEDecoder
from addon.gemini.native_stream import NativeAnswerError, Translator, finish_reason, usage
from addon.gemini.thought_signatures import split_id
from addon.response.native_responses import NativeStream
from addon.response.stream_rewrite import StreamOptions
from tests.fake_gemini_native import FakeNativeGemini, Reply

USAGE = {
    "promptTokenCount": 120,
    "candidatesTokenCount": 12,
    "thoughtsTokenCount": 30,
    "cachedContentTokenCount": 100,
    "totalTokenCount": 162,
}


def native_events(reply: Reply, model: str = "gemini-3-pro-preview") -> list[dict]:
    return FakeNativeGemini()._events(reply, model)


def native_sse(reply: Reply) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in native_events(reply))


@pytest.mark.parametrize(
    ("native", "calls", "expected"),
    [
        ("STOP", False, "stop"),
        ("STOP", True, "tool_calls"),
        ("MAX_TOKENS", False, "length"),
        ("MAX_TOKENS", True, "length"),
        ("SAFETY", False, "content_filter"),
        ("RECITATION", False, "content_filter"),
        ("PROHIBITED_CONTENT", False, "content_filter"),
        ("OTHER", False, "stop"),
        (None, False, None),
    ],
)
def test_finish_reasons(native: str | None, calls: bool, expected: str | None) -> None:
    assert finish_reason(native, calls) == expected


@pytest.mark.parametrize("native", ["MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL"])
def test_failed_tool_call_finishes_are_errors(native: str) -> None:
    with pytest.raises(NativeAnswerError, match=native) as caught:
        finish_reason(native, False, "Malformed function call: print(x")
    assert caught.value.code == native.lower() and "print(x" in str(caught.value)


def test_usage_carries_cached_and_reasoning_tokens() -> None:
    assert usage(USAGE) == {
        "prompt_tokens": 120,
        "completion_tokens": 42,
        "total_tokens": 162,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 30},
    }


def test_completion_from_a_whole_answer() -> None:
    merged = FakeNativeGemini._merge(native_events(Reply(calls=[("read", {"path": "a"}), ("ls", {})])))
    body = Translator("local-3").completion(merged)
    message = body["choices"][0]["message"]
    assert body["model"] == "local-3" and body["object"] == "chat.completion"
    assert message["content"] == "Hello from native Gemini."
    assert message["reasoning_content"] == "Thinking it over."
    first, second = message["tool_calls"]
    assert (first["index"], second["index"]) == (0, 1)
    assert split_id(first["id"])[1] is not None and split_id(second["id"])[1] is None
    assert json.loads(first["function"]["arguments"]) == {"path": "a"}
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["usage"]["prompt_tokens_details"]["cached_tokens"] == 100


def test_a_prompt_blocked_before_any_candidate_is_content_filter() -> None:
    body = Translator("m").completion({"promptFeedback": {"blockReason": "SAFETY"}})
    assert body["choices"][0]["finish_reason"] == "content_filter"


def run_stream(data: bytes, cuts: list[int]) -> tuple[bytes, NativeStream]:
    stream = NativeStream(StreamOptions("local-3", True, True, 1 << 20))
    out: list[bytes] = []
    for start, end in zip([0, *cuts], [*cuts, len(data)]):
        pieces = stream(data[start:end])
        assert all(pieces), "an empty piece would end the client's chunked body"
        out += pieces
    out += stream(b"")
    return b"".join(out), stream


def openai_chunks(sent: bytes) -> list[dict]:
    decoder = SSEDecoder()
    events = decoder.decode(sent) + decoder.flush()
    assert events[-1].data == b"[DONE]"
    return [orjson.loads(e.data) for e in events[:-1]]


def test_stream_translation_is_the_same_split_at_every_byte() -> None:
    data = native_sse(Reply(text="Héllo wörld", calls=[("read", {"path": "ä"})]))
    whole, stream = run_stream(data, [])
    chunks = openai_chunks(whole)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "reasoning_content": "Thinking it over."}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "Héllo wörld"
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "tool_calls"
    assert last["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "read"
    assert last["usage"]["completion_tokens_details"]["reasoning_tokens"] == 30
    assert {c["model"] for c in chunks} == {"local-3"}
    assert stream.answer.to_dict()["reasoning"] == "Thinking it over." and stream.saw_done
    for cut in range(1, len(data)):
        sent, _ = run_stream(data, [cut])
        assert _without_ids(sent) == _without_ids(whole), f"split at byte {cut}"


def _without_ids(sent: bytes) -> list[dict]:
    chunks = openai_chunks(sent)
    for chunk in chunks:
        chunk.pop("id"), chunk.pop("created")
        for call in chunk["choices"][0]["delta"].get("tool_calls", []):
            call.pop("id")
    return chunks


def test_a_malformed_function_call_ends_the_stream_with_an_error_event() -> None:
    sent, stream = run_stream(native_sse(Reply(text="", thought=None, finish="MALFORMED_FUNCTION_CALL")), [7])
    decoder = SSEDecoder()
    events = decoder.decode(sent) + decoder.flush()
    error = orjson.loads(events[-1].data)["error"]
    assert error["code"] == "malformed_function_call" and error["type"] == "api_error"
    assert b"[DONE]" not in sent and stream.error and not stream.saw_done


def test_a_stream_that_stops_without_a_finish_reason_is_reported() -> None:
    events = native_events(Reply())
    data = b"data: " + json.dumps(events[0]).encode() + b"\r\n\r\n"
    sent, stream = run_stream(data, [])
    assert b"incomplete_stream" in sent and stream.error
