from __future__ import annotations

import copy
import re
from typing import Any

import orjson
import pytest

from addon.gemini.stream_toolcalls import ToolCallFixer, fix_message_response, new_call_id

ID_RE = re.compile(r"call_[0-9a-f]{24}")


def gemini_chunk(
    tool_calls: list[dict[str, Any]] | None = None, content: str | None = None, finish_reason: str | None = None
) -> dict[str, Any]:
    """The shape Gemini's OpenAI-compatible endpoint streams (a real chunk, re-serialised)."""
    delta: dict[str, Any] = {"role": "assistant"}
    if content is not None:
        delta["content"] = content
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    return orjson.loads(
        orjson.dumps(
            {
                "choices": [{"delta": delta, "finish_reason": finish_reason, "index": 0}],
                "created": 1764130000,
                "id": "Pd0maLuCBJWHz7IPxMXw0QM",
                "model": "gemini-2.5-flash",
                "object": "chat.completion.chunk",
            }
        )
    )


def gemini_call(name: str, arguments: str, call_id: str = "") -> dict[str, Any]:
    return {"function": {"arguments": arguments, "name": name}, "id": call_id, "type": "function"}


def accumulate(chunks: list[dict[str, Any]]) -> dict[int, dict[str, str]]:
    """Merge deltas by index the way the openai SDK and the AI SDK do (id and arguments concatenate)."""
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for call in chunk["choices"][0]["delta"].get("tool_calls") or []:
            acc = calls.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
            acc["id"] += call.get("id") or ""
            acc["name"] += (call.get("function") or {}).get("name") or ""
            acc["arguments"] += (call.get("function") or {}).get("arguments") or ""
    return calls


def run(chunks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Fix ``chunks`` in place, checking the contract callers rely on: notes exactly when a chunk changed."""
    fixer, notes = ToolCallFixer(), []
    for chunk in chunks:
        before = copy.deepcopy(chunk)
        new = fixer.fix(chunk)
        assert bool(new) == (chunk != before)
        notes += new
    return chunks, notes


def test_single_gemini_call_gets_index_id_and_finish_reason() -> None:
    chunks, notes = run(
        [
            gemini_chunk([gemini_call("read", '{"path":"a.txt"}')]),
            gemini_chunk(content="", finish_reason="stop"),
        ]
    )
    call = chunks[0]["choices"][0]["delta"]["tool_calls"][0]
    assert call["index"] == 0 and ID_RE.fullmatch(call["id"])
    assert chunks[1]["choices"][0]["finish_reason"] == "tool_calls"
    assert notes == ["tool call 0: index 0 assigned", "tool call 0: id generated", "finish_reason stop -> tool_calls"]


def test_two_parallel_calls_without_index_stay_apart() -> None:
    chunks, notes = run(
        [
            gemini_chunk([gemini_call("read", '{"path":"a.txt"}')]),
            gemini_chunk([gemini_call("read", '{"path":"b.txt"}')]),
            gemini_chunk(finish_reason="stop"),
        ]
    )
    calls = accumulate(chunks)
    assert sorted(calls) == [0, 1]
    assert calls[0]["arguments"] == '{"path":"a.txt"}' and calls[1]["arguments"] == '{"path":"b.txt"}'
    assert calls[0]["id"] != calls[1]["id"] and all(ID_RE.fullmatch(c["id"]) for c in calls.values())
    assert "tool call 1: index 1 assigned" in notes


def test_parallel_calls_in_one_delta_and_existing_ids_kept() -> None:
    chunks, notes = run(
        [
            gemini_chunk(
                [gemini_call("read", "{}", "function-call-1"), gemini_call("ls", "{}", "")], finish_reason="stop"
            )
        ]
    )
    tool_calls = chunks[0]["choices"][0]["delta"]["tool_calls"]
    assert [c["index"] for c in tool_calls] == [0, 1]
    assert tool_calls[0]["id"] == "function-call-1" and ID_RE.fullmatch(tool_calls[1]["id"])
    assert chunks[0]["choices"][0]["finish_reason"] == "tool_calls"
    assert "tool call 0: id generated" not in notes and "tool call 1: id generated" in notes


def chunk(*tool_calls: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    """A plain OpenAI-style chunk carrying ``tool_calls`` (none: a delta without them)."""
    delta = {"tool_calls": list(tool_calls)} if tool_calls else {}
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return {"object": "chat.completion.chunk", "choices": [choice]}


def start(
    name: str, arguments: str = "", call_id: str = "", index: int | None = None, typed: bool = True
) -> dict[str, Any]:
    call: dict[str, Any] = {"id": call_id, "function": {"name": name, "arguments": arguments}}
    if typed:
        call["type"] = "function"
    return call if index is None else {"index": index, **call}


def more(arguments: str, index: int | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"function": {"arguments": arguments}}
    return call if index is None else {"index": index, **call}


def openai_fragments() -> list[dict[str, Any]]:
    return [
        chunk(start("read", call_id="call_a", index=0)),
        chunk(more('{"pa', 0)),
        chunk(more('th":"a"}', 0)),
        chunk(start("ls", call_id="call_b", index=1)),
        chunk(more("{}", 1)),
        chunk(finish_reason="tool_calls"),
    ]


def test_openai_style_fragments_unchanged() -> None:
    original = openai_fragments()
    chunks, notes = run(copy.deepcopy(original))
    assert chunks == original and notes == []
    assert accumulate(chunks)[0] == {"id": "call_a", "name": "read", "arguments": '{"path":"a"}'}


def test_fragments_without_index_continue_the_last_call() -> None:
    chunks, notes = run(
        [
            chunk(start("read", call_id="call_a", typed=False)),
            chunk(more('{"path"')),
            chunk(more(':"a"}')),
            chunk(start("ls", "{}", call_id="call_b", typed=False)),
        ]
    )
    assert accumulate(chunks) == {
        0: {"id": "call_a", "name": "read", "arguments": '{"path":"a"}'},
        1: {"id": "call_b", "name": "ls", "arguments": "{}"},
    }
    assert notes == [
        "tool call 0: index 0 assigned",
        "tool call 0: type function added",
        "tool call 0: index 0 assigned (fragment)",
        "tool call 0: index 0 assigned (fragment)",
        "tool call 1: index 1 assigned",
        "tool call 1: type function added",
    ]


def test_reused_explicit_index_with_new_id_is_a_new_call() -> None:
    chunks, notes = run(
        [
            chunk(start("a", "{}", call_id="call_a", index=0)),
            chunk(start("b", "{", call_id="call_b", index=0)),
            chunk(more("}", 0)),
        ]
    )
    assert accumulate(chunks) == {
        0: {"id": "call_a", "name": "a", "arguments": "{}"},
        1: {"id": "call_b", "name": "b", "arguments": "{}"},
    }
    assert notes == ["tool call 1: index 0 -> 1", "tool call 1: index 0 -> 1 (fragment)"]


def test_empty_id_on_explicit_index_is_generated_once() -> None:
    fixer = ToolCallFixer()
    first, later = chunk(start("a", index=0)), chunk({"id": "", **more("{}", 0)})
    assert fixer.fix(first) == ["tool call 0: id generated"]
    assert fixer.fix(later) == []
    generated = first["choices"][0]["delta"]["tool_calls"][0]["id"]
    assert later["choices"][0]["delta"]["tool_calls"][0]["id"] == ""  # clients concatenate ids: leave fragments be
    assert fixer.call_ids == {0: {0: generated}}


def test_text_only_stream_untouched() -> None:
    original = [
        gemini_chunk(content="Hello"),
        gemini_chunk(content=" world"),
        gemini_chunk(content="", finish_reason="stop"),
    ]
    chunks, notes = run(copy.deepcopy(original))
    assert chunks == original and notes == []


def test_finish_reason_stop_only_after_tool_calls() -> None:
    fixer = ToolCallFixer()
    stop = gemini_chunk(finish_reason="stop")
    assert fixer.fix(stop) == [] and stop["choices"][0]["finish_reason"] == "stop"
    fixer.fix(gemini_chunk([gemini_call("read", "{}")]))
    length = gemini_chunk(finish_reason="length")
    assert fixer.fix(length) == [] and length["choices"][0]["finish_reason"] == "length"


def test_call_and_finish_reason_in_the_same_chunk() -> None:
    chunks, _ = run([gemini_chunk([gemini_call("read", "{}")], finish_reason="stop")])
    assert chunks[0]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    "chunk",
    [
        {},
        {"choices": None},
        {"choices": [None, 1, "x"]},
        {"choices": [{"delta": None}]},
        {"choices": [{"delta": {"tool_calls": None}}]},
        {"choices": [{"delta": {"tool_calls": [None, 3]}}]},
        {"choices": [{"delta": {"tool_calls": [{"function": "x"}]}}]},
        {"choices": [{"index": True, "delta": {}}]},
    ],
)
def test_odd_shapes_do_not_raise(chunk: dict[str, Any]) -> None:
    ToolCallFixer().fix(chunk)


def test_new_call_id_shape() -> None:
    assert ID_RE.fullmatch(new_call_id()) and new_call_id() != new_call_id()


def test_fix_message_response() -> None:
    body = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "", "type": "function", "function": {"name": "read", "arguments": "{}"}},
                        {"id": "call_x", "type": "function", "function": {"name": "ls", "arguments": "{}"}},
                    ],
                },
            }
        ]
    }
    notes = fix_message_response(body)
    calls = body["choices"][0]["message"]["tool_calls"]
    assert ID_RE.fullmatch(calls[0]["id"]) and calls[1]["id"] == "call_x"
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert notes == ["tool call 0: id generated", "finish_reason stop -> tool_calls"]


@pytest.mark.parametrize(
    "body",
    [
        {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}]},
        {"choices": [{"finish_reason": "stop", "message": {"tool_calls": []}}]},
        {},
        {"choices": "x"},
        {"choices": [None, {"message": None}]},
    ],
)
def test_fix_message_response_leaves_others_alone(body: dict[str, Any]) -> None:
    original = copy.deepcopy(body)
    assert fix_message_response(body) == [] and body == original
