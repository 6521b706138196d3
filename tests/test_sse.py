from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from addon.formats.sse import Event, SSEDecoder, encode_event, parse_event


def chunk_frame(content: str) -> bytes:
    body = {"choices": [{"delta": {"content": content}, "index": 0}], "object": "chat.completion.chunk"}
    return encode_event(orjson.dumps(body))


STREAM = (
    b": keep-alive\n\n"
    + chunk_frame("Hällo ✓")
    + b"event: note\nid: 7\ndata: first\ndata:second\n\n"
    + chunk_frame("wörld")
    + b"data: [DONE]\n\n"
)
EXPECTED_DATA = [
    None,
    orjson.dumps(orjson.loads(chunk_frame("Hällo ✓")[6:])),
    b"first\nsecond",
    chunk_frame("wörld")[6:-2],
    b"[DONE]",
]


def decode_all(decoder: SSEDecoder, chunks: list[bytes]) -> list[Event]:
    events: list[Event] = []
    for chunk in chunks:
        events += decoder.decode(chunk)
    return events + decoder.flush()


def check(events: list[Event], stream: bytes = STREAM) -> None:
    assert [e.data for e in events] == EXPECTED_DATA
    assert b"".join(e.raw for e in events) == stream


def test_whole_stream() -> None:
    events = decode_all(SSEDecoder(), [STREAM])
    check(events)
    assert events[0] == Event(b": keep-alive\n\n", None)
    assert events[2].event == b"note" and events[2].id == b"7"


def test_byte_by_byte() -> None:
    check(decode_all(SSEDecoder(), [STREAM[i : i + 1] for i in range(len(STREAM))]))


def test_every_split_point() -> None:
    for i in range(len(STREAM) + 1):
        check(decode_all(SSEDecoder(), [STREAM[:i], STREAM[i:]]))


def test_every_pair_of_split_points_with_empty_chunks() -> None:
    stream = b"data: a\r\n\r\n: c\r\rdata: \xc3\xa4\n\n"
    for i in range(len(stream) + 1):
        for j in range(i, len(stream) + 1):
            events = decode_all(SSEDecoder(), [b"", stream[:i], b"", stream[i:j], stream[j:], b""])
            assert [e.data for e in events] == [b"a", None, "ä".encode()]
            assert b"".join(e.raw for e in events) == stream


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_line_endings(eol: bytes) -> None:
    stream = STREAM.replace(b"\n", eol)
    check(decode_all(SSEDecoder(), [stream[i : i + 3] for i in range(0, len(stream), 3)]), stream)
    for i in range(len(stream) + 1):
        check(decode_all(SSEDecoder(), [stream[:i], stream[i:]]), stream)


def test_crlf_split_between_cr_and_lf() -> None:
    decoder = SSEDecoder()
    assert decoder.decode(b"data: x\r\n\r") == []  # the last "\r" may be the start of "\r\n"
    assert decoder.decode(b"\n") == [Event(b"data: x\r\n\r\n", b"x")]
    assert decoder.decode(b"data: y\r\n") == []
    assert decoder.decode(b"\r\n") == [Event(b"data: y\r\n\r\n", b"y")]


def test_cr_only_event_waits_for_next_byte_or_flush() -> None:
    decoder = SSEDecoder()
    assert decoder.decode(b"data: x\r\r") == []
    assert decoder.flush() == [Event(b"data: x\r\r", b"x")]


def test_mid_utf8() -> None:
    text = "data: 日本語 ✓\n\n".encode()
    decoder = SSEDecoder()
    events = [e for b in text for e in decoder.decode(bytes([b]))]
    assert [e.data.decode() for e in events if e.data] == ["日本語 ✓"]


def test_multiline_data_and_colon_spacing() -> None:
    events = SSEDecoder().decode(b"data:a\ndata:  b\ndata\ndata: c:d\n\n")
    assert events[0].data == b"a\n b\n\nc:d"


def test_comment_only_event_has_no_data() -> None:
    assert SSEDecoder().decode(b": keep-alive\n\n") == [Event(b": keep-alive\n\n", None)]


def test_done() -> None:
    assert SSEDecoder().decode(b"data: [DONE]\n\n")[0].data == b"[DONE]"


def test_flush_partial_event_with_data() -> None:
    decoder = SSEDecoder()
    assert decoder.decode(b"data: a\n\ndata: b\ndata: c") == [Event(b"data: a\n\n", b"a")]
    assert decoder.flush() == [Event(b"data: b\ndata: c", b"b\nc")]
    assert decoder.flush() == []


@pytest.mark.parametrize("rest", [b"", b": keep", b"\n", b"event: x\n"])
def test_flush_without_data_returns_nothing(rest: bytes) -> None:
    decoder = SSEDecoder()
    decoder.decode(b"data: a\n\n" + rest)
    assert decoder.flush() == []


def test_decoder_is_reusable_after_flush() -> None:
    decoder = SSEDecoder()
    decoder.decode(b"data: a")
    decoder.flush()
    assert decoder.decode(b"data: b\n\n") == [Event(b"data: b\n\n", b"b")]


def test_extra_blank_lines_stay_in_raw() -> None:
    stream = b"data: a\n\n\ndata: b\n\n\n\n"
    events = decode_all(SSEDecoder(), [stream])
    assert [e.data for e in events] == [b"a", b"b", None]  # the last two newlines are an empty event
    assert b"".join(e.raw for e in events) == stream


def test_large_event_in_small_chunks() -> None:
    payload = b"x" * 200_000
    stream = b"data: " + payload + b"\n\n"
    events = decode_all(SSEDecoder(), [stream[i : i + 100] for i in range(0, len(stream), 100)])
    assert [e.data for e in events] == [payload]


def test_parse_event_ignores_unknown_fields_and_nul_ids() -> None:
    raw = b"retry: 10\nid: a\0b\nfoo\ndata: x\n\n"
    assert parse_event(raw) == Event(raw, b"x")


def test_encode_event_round_trip() -> None:
    assert encode_event(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert SSEDecoder().decode(encode_event(b"[DONE]"))[0].data == b"[DONE]"


@pytest.mark.parametrize("data", [b"a\nb", b"a\r\nb\n", b"\n", b""])
def test_encode_event_multiline(data: bytes) -> None:
    events = SSEDecoder().decode(encode_event(data))
    assert [e.data for e in events] == [data.replace(b"\r\n", b"\n")]


_text = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=12)
_line = st.one_of(_text.map(lambda t: ("data", t)), _text.map(lambda t: ("comment", t)))


@given(
    events=st.lists(st.lists(_line, min_size=1, max_size=3), max_size=5),
    eol=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    cuts=st.lists(st.integers(min_value=0), max_size=8),
)
def test_random_streams_and_splits(events: list[list[tuple[str, str]]], eol: bytes, cuts: list[int]) -> None:
    stream, expected = b"", []
    for lines in events:
        data = [t.encode() for kind, t in lines if kind == "data"]
        expected.append(b"\n".join(data) if data else None)
        stream += b"".join((b"data: " if kind == "data" else b":") + t.encode() + eol for kind, t in lines) + eol
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in zip(points, points[1:])]
    decoded = decode_all(SSEDecoder(), chunks)
    assert [e.data for e in decoded] == expected
    assert b"".join(e.raw for e in decoded) == stream
