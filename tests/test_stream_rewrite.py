"""addon/stream_rewrite.py: events renamed as they pass, byte for byte where only the model name changes."""

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from addon.response.stream_rewrite import StreamOptions, StreamRewriter

PLAIN = StreamOptions("local-model", repair_tool_calls=False, pack_signatures=False, keep_bytes=1 << 20)
REPAIRING = StreamOptions("local-model", repair_tool_calls=True, pack_signatures=True, keep_bytes=1 << 20)


def event(chunk: dict, separators: tuple[str, str] = (",", ":")) -> bytes:
    return b"data: " + json.dumps(chunk, separators=separators).encode() + b"\n\n"


def text_chunk(text: str, model: str = "gemini-2.5-flash") -> dict:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }


def test_only_the_model_value_changes_in_the_upstreams_bytes():
    raw = event(text_chunk('héllo "model":"gemini-2.5-flash"'))  # the name inside text is escaped
    rewriter = StreamRewriter(PLAIN)
    [out] = rewriter(raw)
    assert out == raw.replace(b'"model":"gemini-2.5-flash","choices"', b'"model":"local-model","choices"')
    assert rewriter.answer.content == 'héllo "model":"gemini-2.5-flash"'


@pytest.mark.parametrize(
    "chunk, separators",
    [
        (text_chunk("hi"), (", ", ": ")),  # not compact: encoded anew
        (text_chunk("hi") | {"usage": {"model": "gemini-2.5-flash"}}, (",", ":")),  # a second "model" key
    ],
)
def test_other_spellings_are_encoded_anew(chunk, separators):
    [out] = StreamRewriter(PLAIN)(event(chunk, separators))
    assert out.startswith(b"data: ") and out.endswith(b"\n\n")
    assert orjson.loads(out[6:-2]) == chunk | {"model": "local-model"}


def test_an_event_already_named_as_the_client_asked_passes_untouched():
    raw = event(text_chunk("hi", model="local-model"))
    assert StreamRewriter(REPAIRING)(raw) == [raw]


def test_a_repaired_event_is_encoded_anew():
    chunk = text_chunk("")
    chunk["choices"][0]["delta"] = {"tool_calls": [{"id": "", "function": {"name": "read", "arguments": "{}"}}]}
    rewriter = StreamRewriter(REPAIRING)
    [out] = rewriter(event(chunk))
    call = orjson.loads(out[6:-2])["choices"][0]["delta"]["tool_calls"][0]
    assert call["index"] == 0 and call["id"] and call["type"] == "function"
    assert rewriter.repairs and rewriter.answer.tool_calls[0].name == "read"


def test_the_usual_events_after_the_first_rename_in_place_and_still_fold_into_the_answer(monkeypatch):
    """After the first event teaches the rewriter the upstream's spelling, the usual event (one per read) is
    renamed in __call__ itself; the result is what rewrite() gives, and a tool call or a second model key still
    takes the decoding path."""
    rewriter = StreamRewriter(REPAIRING, t_start=100.0)
    clock = iter(float(t) for t in range(101, 200))
    monkeypatch.setattr("addon.response.stream_rewrite.time.time", lambda: next(clock))
    texts = [f"part {i} " for i in range(40)]  # more than FOLD_BATCH events wait for the fold
    raws = [event(text_chunk(text)) for text in texts]
    outs = [rewriter(raw) for raw in raws]
    assert outs == [[raw.replace(b'"gemini-2.5-flash"', b'"local-model"')] for raw in raws]
    call = text_chunk("")
    call["choices"][0]["delta"] = {"tool_calls": [{"id": "", "function": {"name": "read", "arguments": "{}"}}]}
    [out] = rewriter(event(call))
    assert orjson.loads(out[6:-2])["choices"][0]["delta"]["tool_calls"][0]["id"]  # repaired: decoded
    [after] = rewriter(event(text_chunk("tail")))  # after a tool call every event is decoded (finish reason)
    assert orjson.loads(after[6:-2])["model"] == "local-model"
    assert rewriter.answer.content == "".join(texts) + "tail" and rewriter.answer.tool_calls[0].name == "read"
    assert rewriter.chunk_times == [float(t) for t in range(1, 43)]  # seconds since t_start, one per event
    assert bytes(rewriter.sent.data) == b"".join(o for [o] in outs) + out + after


def test_done_and_several_events_in_one_read():
    rewriter = StreamRewriter(PLAIN)
    [out] = rewriter(event(text_chunk("a")) + event(text_chunk("b")) + b"data: [DONE]\n\n")
    assert out.count(b'"model":"local-model"') == 2 and out.endswith(b"data: [DONE]\n\n")
    assert rewriter.saw_done and rewriter.answer.content == "ab" and len(rewriter.chunk_times) == 3
    assert rewriter(b"") == []


@given(st.text(max_size=40), st.text(min_size=1, max_size=20).filter(lambda m: m != "local-model"))
def test_renamed_events_say_the_same_but_the_model(text, upstream_model):
    chunk = text_chunk(text, upstream_model)
    [out] = StreamRewriter(PLAIN)(event(chunk))
    assert orjson.loads(out[6:-2]) == chunk | {"model": "local-model"}


# Holding an empty answer back (translate_retry_empty_answer): Gemini's empty "stop" for a malformed call.
HOLDING = PLAIN._replace(hold_empty=True)
ROLE_ONLY = {**text_chunk(""), "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
EMPTY_STOP = {
    **text_chunk(""),
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 4211, "completion_tokens": 0, "total_tokens": 4211},
}


def test_events_wait_while_the_answer_is_empty_and_go_out_with_the_first_text():
    rewriter = StreamRewriter(HOLDING)
    assert rewriter(event(ROLE_ONLY)) == []
    out = rewriter(event(text_chunk("Hello")))
    assert len(out) == 1 and out[0].count(b"data: ") == 2 and b'"local-model"' in out[0]
    assert rewriter.held is None and bytes(rewriter.sent.data) == out[0]
    assert rewriter(event(text_chunk(" world"))) == [event(text_chunk(" world", "local-model"))]  # then as usual


def test_an_empty_answer_is_held_to_the_end_and_released_on_demand():
    rewriter = StreamRewriter(HOLDING)
    assert rewriter(event(EMPTY_STOP)) == [] and rewriter(b"data: [DONE]\n\n") == [] and rewriter(b"") == []
    assert rewriter.sent.data == b"" and rewriter.answer.finish_reason == "stop"
    released = rewriter.release()
    assert released.count(b"data: ") == 2 and released.endswith(b"data: [DONE]\n\n")
    assert bytes(rewriter.sent.data) == released and rewriter.release() == b""


def test_without_hold_empty_nothing_waits():
    rewriter = StreamRewriter(PLAIN)
    assert rewriter(event(EMPTY_STOP)) != [] and rewriter.held is None


# The usual event is neither decoded nor encoded on its way; the answer folds the waiting ones when it is read.
def call_chunk(call: dict, finish: str | None = None) -> dict:
    chunk = text_chunk("")
    chunk["choices"][0] |= {"delta": {"tool_calls": [call]}, "finish_reason": finish}
    return chunk


def test_the_usual_event_is_not_decoded_as_it_passes(monkeypatch):
    from addon.response import stream_rewrite

    decoded: list[bytes] = []
    loads = orjson.loads
    monkeypatch.setattr(stream_rewrite.orjson, "loads", lambda data: decoded.append(data) or loads(data))
    rewriter = StreamRewriter(REPAIRING)
    for n in range(100):
        [out] = rewriter(event(text_chunk(f"t{n} ")))
        assert out == event(text_chunk(f"t{n} ", "local-model"))
    batches = 99 // stream_rewrite.FOLD_BATCH
    # the first event decoded to learn how the upstream writes its model's name; the others folded in batches
    assert len(decoded) == 1 + batches
    assert all(d.count(b'"chat.completion.chunk"') == stream_rewrite.FOLD_BATCH for d in decoded[1:])
    assert rewriter.answer.content == "".join(f"t{n} " for n in range(100))
    assert len(decoded) == 2 + batches  # the rest (fewer than a batch) folded at once, when the answer was read


STOP = {**text_chunk(""), "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
MIXED = [
    text_chunk("Let me read it. "),
    text_chunk("", model="local-model"),
    call_chunk({"id": "", "function": {"name": "read", "arguments": '{"filePath": "a"}'}}),
    text_chunk("and more "),
    STOP,
]


@pytest.mark.parametrize("split", ["event", "byte", "whole"])
def test_events_folded_later_and_at_once_make_the_answer_of_every_event_in_order(split):
    from addon.formats.answer import Answer

    stream = b"".join(event(c) for c in MIXED) + b"data: not json\n\n" + b"data: [DONE]\n\n"
    reads = {
        "event": [event(c) for c in MIXED] + [b"data: not json\n\n", b"data: [DONE]\n\n"],
        "byte": [stream[i : i + 1] for i in range(len(stream))],
        "whole": [stream],
    }[split]
    rewriter = StreamRewriter(REPAIRING)
    sent = b"".join(piece for read in [*reads, b""] for piece in rewriter(read))
    received = [orjson.loads(e[6:]) for e in sent.split(b"\n\n") if e.startswith(b"data: {")]
    assert [c["model"] for c in received] == ["local-model"] * len(MIXED)
    expected = Answer()
    for chunk in received:  # what the client got, folded event by event
        expected.add_chunk(chunk)
    assert rewriter.answer.to_dict() == expected.to_dict()
    assert rewriter.answer.content == "Let me read it. and more " and rewriter.answer.finish_reason == "tool_calls"
    assert rewriter.saw_done and b"data: not json\n\n" in sent


def test_an_event_that_is_two_json_values_is_left_out_of_the_answer_as_before():
    rewriter = StreamRewriter(PLAIN)
    rewriter(event(text_chunk("a")))
    [out] = rewriter(b'data: {"choices": [{"delta": {"content": "x"}}]}, {"b": 2}\n\n')
    assert out == b'data: {"choices": [{"delta": {"content": "x"}}]}, {"b": 2}\n\n'
    rewriter(event(text_chunk("b")))
    assert rewriter.answer.content == "ab"
