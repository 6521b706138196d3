"""Property tests (hypothesis): the request validator and the SSE stream rewriter never raise anything unplanned,
and a stream that needs no rewriting passes through byte for byte however it is cut into pieces."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from addon.request.chat_request import ClientError, load_messages, parse_chat_request
from addon.response.stream_rewrite import StreamOptions, StreamRewriter

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
FIELDS = [
    "model",
    "messages",
    "stream",
    "temperature",
    "max_tokens",
    "tools",
    "tool_choice",
    "stop",
    "n",
    "stream_options",
    "role",
    "content",
]
chat_like = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), json_values, max_size=8)
messages = st.lists(
    st.dictionaries(st.sampled_from(["role", "content", "tool_calls", "name"]), json_values, max_size=4), max_size=4
)


def validate(content: bytes) -> None:
    try:
        request = parse_chat_request(content, 10_000_000)
    except ClientError as e:
        assert 400 <= e.status < 500 and str(e)
    else:
        assert isinstance(request.model, str) and isinstance(load_messages(request).body["messages"], list)


@FUZZ
@given(st.binary(max_size=2000))
def test_validator_on_any_bytes(content):
    validate(content)


@FUZZ
@given(chat_like, st.none() | messages)
def test_validator_on_json_shapes(body, msgs):
    if msgs is not None:
        body = {**body, "messages": msgs}
    validate(json.dumps(body).encode())


@FUZZ
@given(st.integers(1, 3000))
def test_validator_on_deep_nesting(depth):
    validate(b'{"model": "m", "messages": ' + b"[" * depth + b"]" * depth + b"}")


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]


def run(rewriter: StreamRewriter, pieces: list[bytes]) -> bytes:
    out = b"".join(b"".join(rewriter(piece)) for piece in pieces if piece)
    return out + b"".join(rewriter(b""))


OPTIONS = [StreamOptions("local-model", repair, pack, 1_000_000) for repair in (False, True) for pack in (False, True)]


@FUZZ
@given(st.binary(max_size=3000), st.lists(st.integers(0, 4000), max_size=20), st.sampled_from(OPTIONS))
def test_rewriter_on_any_bytes(data, cuts, options):
    run(StreamRewriter(options), split(data, cuts))


chunk_json = st.fixed_dictionaries(
    {
        "choices": st.lists(
            st.dictionaries(
                st.sampled_from(["index", "delta", "finish_reason"]),
                json_values | st.fixed_dictionaries({"tool_calls": st.lists(json_values, max_size=2)}),
                max_size=3,
            ),
            max_size=2,
        )
    },
    optional={"model": st.text(max_size=10), "id": st.text(max_size=5), "usage": json_values},
)


@FUZZ
@given(
    st.lists(chunk_json | json_values, max_size=8),
    st.lists(st.integers(0, 4000), max_size=20),
    st.sampled_from(OPTIONS),
)
def test_rewriter_on_chunk_shaped_json(chunks, cuts, options):
    data = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    out = run(StreamRewriter(options), split(data, cuts))
    assert out.endswith(b"data: [DONE]\n\n")


def plain_chunk(text: str, finish: bool) -> dict:
    return {
        "id": "x",
        "object": "chat.completion.chunk",
        "model": "local-model",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": "stop" if finish else None}],
    }


line_end = st.sampled_from([b"\n", b"\r\n", b"\r"])
clean_event = st.one_of(
    st.builds(
        lambda t, f, e: b"data: " + json.dumps(plain_chunk(t, f)).encode() + e + e,
        st.text(max_size=30),
        st.booleans(),
        line_end,
    ),
    st.builds(lambda c, e: b":" + c.encode() + e + e, st.text(alphabet="abc ping", max_size=10), line_end),
    st.builds(lambda e: b"event: message" + e + b"data: [DONE]" + e + e, line_end),
)


@FUZZ
@given(st.lists(clean_event, max_size=10), st.lists(st.integers(0, 4000), max_size=30), st.sampled_from(OPTIONS))
def test_stream_needing_no_rewrite_passes_byte_for_byte(events, cuts, options):
    data = b"".join(events)
    assert run(StreamRewriter(options), split(data, cuts)) == data
