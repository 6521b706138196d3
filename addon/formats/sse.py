"""Incremental server-sent-events decoder and encoder, working on bytes.

Modelled on httpx's ``_decoders.LineDecoder``: feed any chunks to :meth:`SSEDecoder.decode`, get the
completed events back, and call :meth:`SSEDecoder.flush` at the end of the stream. Chunk boundaries mean
nothing (mid-line, between ``\\r`` and ``\\n``, inside a UTF-8 character). Each event keeps the exact bytes
it came from, so an event the caller does not change can be re-emitted byte for byte.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["Event", "SSEDecoder", "encode_event"]

# A blank line: a line ending directly followed by another one. A lone "\r" that is the first half of a
# "\r\n" must not count as a line ending of its own, hence the lookahead.
_EVENT_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r|\n)")
_LINE_END = re.compile(rb"\r\n|\r|\n")
_COLON = 58  # ord(":")


class Event(NamedTuple):
    """One SSE event.

    ``raw`` holds its exact bytes including the terminating blank line; ``data`` the ``data:`` lines joined
    with ``b"\\n"``, or None when the event had no data field (comments, keep-alives). A tuple: one is made
    for every chunk of every stream, and a frozen dataclass takes several times longer to build.
    """

    raw: bytes
    data: bytes | None
    event: bytes | None = None
    id: bytes | None = None


def parse_event(raw: bytes) -> Event:
    """Parse the fields of one event's bytes (any line endings) into an :class:`Event`."""
    if raw[:6] == b"data: " and raw.find(b"\n", 6) == len(raw) - 2 and raw[-1:] == b"\n" and b"\r" not in raw:
        return Event(raw, raw[6:-2])  # fast path: the usual single "data: ...\n\n" line
    lines = _LINE_END.split(raw) if b"\r" in raw else raw.split(b"\n")
    data: list[bytes] = []
    name: bytes | None = None
    event_id: bytes | None = None
    for line in lines:
        if not line or line[0] == _COLON:
            continue
        field, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value
        elif field == b"id" and b"\0" not in value:
            event_id = value
    joined = (data[0] if len(data) == 1 else b"\n".join(data)) if data else None
    return Event(raw, joined, name, event_id)


class SSEDecoder:
    """Split a byte stream into SSE events, one stream per instance."""

    def __init__(self) -> None:
        self._buf = bytearray()  # bytes of the event in progress
        self._scan = 0  # offset in _buf before which no event end can start
        self._cr = False  # a "\r" was seen: use the regex instead of find(b"\n\n")

    @property
    def idle(self) -> bool:
        """No bytes of an unfinished event are waiting: a chunk that is one whole event is that event."""
        return not self._buf

    def decode(self, chunk: bytes) -> list[Event]:
        """Feed bytes; return the events completed by them."""
        if not chunk:
            return []
        if not self._cr and b"\r" in chunk:
            self._cr = True
        if not self._buf:  # usual case: nothing pending, split the chunk itself without copying it
            events, used = self._split(chunk, final=False)
            self._buf += chunk[used:]
        else:
            self._buf += chunk
            events, used = self._split(self._buf, final=False)
            del self._buf[:used]
        # An event end takes at most 4 bytes ("\r\n\r\n"): next time, resume scanning just before the tail.
        self._scan = max(0, len(self._buf) - 3)
        return events

    def flush(self) -> list[Event]:
        """End of stream: return the remaining events, including an unterminated one that has data."""
        events, used = self._split(self._buf, final=True)
        rest = bytes(self._buf[used:])
        self._buf.clear()
        self._scan = 0
        if rest:
            event = parse_event(rest)
            if event.data is not None:
                events.append(event)
        return events

    def _split(self, buf: bytes | bytearray, final: bool) -> tuple[list[Event], int]:
        """The complete events in ``buf`` and the number of bytes they take."""
        events: list[Event] = []
        start = 0
        if not self._cr:  # fast path: "\n" is the only line ending, so a blank line is b"\n\n"
            end = buf.find(b"\n\n", self._scan)
            while end >= 0:
                events.append(parse_event(bytes(buf[start : end + 2])))
                start = end + 2
                end = buf.find(b"\n\n", start)
            return events, start
        end = self._find_end(buf, self._scan, final)
        while end >= 0:
            events.append(parse_event(bytes(buf[start:end])))
            start = end
            end = self._find_end(buf, start, final)
        return events, start

    @staticmethod
    def _find_end(buf: bytes | bytearray, pos: int, final: bool) -> int:
        """Offset just past the next blank line at or after ``pos`` (any line endings), or -1."""
        match = _EVENT_END.search(buf, pos)
        if match is None:
            return -1
        end = match.end()
        if not final and end == len(buf) and buf[-1] == 0x0D:
            return -1  # this "\r" may be the first half of a "\r\n": wait for the next byte
        return end


def encode_event(data: bytes) -> bytes:
    """Frame ``data`` as one SSE event (``b"data: " + data + b"\\n\\n"``; one data line per line of it)."""
    if b"\n" in data or b"\r" in data:
        data = b"\ndata: ".join(_LINE_END.split(data))
    return b"data: " + data + b"\n\n"
