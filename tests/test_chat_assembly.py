import orjson
import pytest

from addon.inspection import chat_assembly
from addon.inspection.chat_assembly import assemble_json, assemble_sse


def frame(delta: dict | None = None, finish: str | None = None, **extra) -> bytes:
    """One OpenAI `chat.completion.chunk` SSE event."""
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1732600000,
        "model": "local-model",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
        **extra,
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def tool_frag(index: int, args: str = "", id: str | None = None, name: str | None = None) -> bytes:
    fn = {"arguments": args} | ({"name": name} if name else {})
    call = {"index": index, "function": fn} | ({"id": id, "type": "function"} if id else {})
    return frame({"tool_calls": [call]})


DONE = b"data: [DONE]\n\n"
USAGE = b'data: {"object": "chat.completion.chunk", "choices": [], "usage": {"total_tokens": 9}}\n\n'


def test_text_stream():
    body = frame({"role": "assistant", "content": ""}) + frame({"content": "Hel"}) + frame({"content": "lo"})
    asm = assemble_sse(body + frame(finish="stop") + USAGE + DONE)
    assert (asm.content, asm.finish_reason, asm.usage, asm.done) == ("Hello", "stop", {"total_tokens": 9}, True)
    assert asm.model == "local-model"
    assert [c.added for c in asm.chunks] == [
        "role=assistant",
        '+text "Hel"',
        '+text "lo"',
        "finish=stop",
        "usage",
        "[DONE]",
    ]
    assert asm.chunks[1].raw == frame({"content": "Hel"})


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
def test_reasoning_deltas(key):
    asm = assemble_sse(frame({key: "Think"}) + frame({key: "ing."}) + frame({"content": "Done."}) + DONE)
    assert (asm.reasoning, asm.content) == ("Thinking.", "Done.")
    assert asm.chunks[0].added == '+reasoning "Think"'


def test_parallel_tool_calls_with_openai_fragments():
    body = (
        tool_frag(0, id="call_1", name="read")
        + tool_frag(0, '{"filePath"')
        + tool_frag(1, id="call_2", name="glob")
        + tool_frag(0, ': "/src/app.ts"}')
        + tool_frag(1, '{"pattern": "**/*.ts"}')
        + frame(finish="tool_calls")
        + DONE
    )
    asm = assemble_sse(body)
    assert asm.tool_calls == [
        {"id": "call_1", "name": "read", "arguments": '{"filePath": "/src/app.ts"}'},
        {"id": "call_2", "name": "glob", "arguments": '{"pattern": "**/*.ts"}'},
    ]
    assert asm.finish_reason == "tool_calls"
    assert [c.added for c in asm.chunks[:2]] == ["+tool_call[0] read", "+args 11 chars"]


def test_gemini_parallel_calls_all_at_index_0_stay_apart():
    body = tool_frag(0, '{"a": 1}', id="call_a", name="read") + tool_frag(0, '{"b": 2}', id="call_b", name="bash")
    asm = assemble_sse(body + DONE)
    assert [(c["id"], c["name"], c["arguments"]) for c in asm.tool_calls] == [
        ("call_a", "read", '{"a": 1}'),
        ("call_b", "bash", '{"b": 2}'),
    ]
    assert [c.added for c in asm.chunks] == [
        "+tool_call[0] read +args 8 chars",
        "+tool_call[1] bash +args 8 chars",
        "[DONE]",
    ]


def test_repeated_whole_name_is_not_doubled():
    asm = assemble_sse(tool_frag(0, "{", id="c", name="read") + tool_frag(0, "}", id="c", name="read") + DONE)
    assert asm.tool_calls == [{"id": "c", "name": "read", "arguments": "{}"}]
    assert [c.added for c in asm.chunks] == ["+tool_call[0] read +args 1 chars", "+args 1 chars", "[DONE]"]


def test_cut_stream_is_not_done_and_keeps_the_last_unterminated_event():
    asm = assemble_sse(frame({"content": "Hel"}) + frame({"content": "lo"})[:-2])
    assert (asm.content, asm.done, len(asm.chunks)) == ("Hello", False, 2)


def test_odd_events_are_listed_not_fatal():
    body = b": keep-alive\n\ndata: {not json\n\n" + b'data: {"error": {"code": 429, "message": "Slow down"}}\n\n'
    asm = assemble_sse(body.replace(b"\n", b"\r\n") + b"data: [1]\n\n" + frame() + DONE)
    assert [c.added for c in asm.chunks] == [
        "(no data)",
        "not JSON: {not json",
        "error: 429: Slow down",
        "not a chunk object",
        "(empty)",
        "[DONE]",
    ]
    assert asm.errors == ["unreadable event: {not json", "429: Slow down"]


def test_json_completion():
    message = {
        "role": "assistant",
        "content": "Reading it.",
        "reasoning_content": "The user wants the file.",
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "read", "arguments": '{"filePath": "a"}'}},
        ],
    }
    body = {
        "object": "chat.completion",
        "model": "local-model",
        "usage": {"total_tokens": 5},
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
    }
    asm = assemble_json(orjson.dumps(body))
    assert (asm.content, asm.reasoning) == ("Reading it.", "The user wants the file.")
    assert (asm.finish_reason, asm.done) == ("tool_calls", True)
    assert asm.tool_calls == [{"id": "call_1", "name": "read", "arguments": '{"filePath": "a"}'}]
    assert asm.answer() == {
        "content": "Reading it.",
        "reasoning": "The user wants the file.",
        "tool_calls": asm.tool_calls,
        "finish_reason": "tool_calls",
        "usage": {"total_tokens": 5},
    }
    assert chat_assembly.from_answer(asm.answer()).answer() == asm.answer()


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"error": {"message": "bad"}}'])
def test_json_that_is_not_a_completion(body):
    with pytest.raises(ValueError, match="not"):
        assemble_json(body)


def test_from_answer_tolerates_missing_and_odd_keys():
    asm = chat_assembly.from_answer({"tool_calls": [{"name": "read", "arguments": {"filePath": "a"}}, "junk"]})
    assert (asm.content, asm.finish_reason, asm.usage) == ("", None, None)
    assert asm.tool_calls == [{"id": "", "name": "read", "arguments": '{"filePath":"a"}'}]
