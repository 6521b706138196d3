"""The messages of a chat request, split and checked once, and reused by the next turn of the conversation.

A long opencode session sends its whole conversation with every request, a megabyte or more, and a turn only
adds messages at the end. Checking the messages (each an object with a role string and content of the right
kind, valid UTF-8), splitting them for the session digests and digesting each costs ~3 ms per MB. So the split
of a request is kept for a while (`Conversations`, bounded in bytes), and a request whose messages start with
the same bytes as all or some of a kept request's messages takes their split and checks only the messages after
them. The split says where each message is in the request's own bytes, so a split never holds an older request.

`split_messages` is the plain reading; `Conversations.split` gives exactly what it gives (tested) or raises what
it raises, faster when a kept split applies.
"""

from __future__ import annotations

import array
import codecs
import zlib
from collections import OrderedDict
from dataclasses import dataclass

import msgspec

KEPT_BYTES = 12 * 1024 * 1024  # the messages kept for reuse, in all: a few long sessions' worth
KEPT_SPLITS = 32
LOOKUP_BYTES = 256  # the first bytes a kept split must share with a request to be looked at further
WHITESPACE = frozenset(b" \t\r\n")


class _MessageShape(msgspec.Struct):
    """What is checked of each message without decoding it."""

    role: str
    content: msgspec.Raw = msgspec.Raw(b"null")
    tool_calls: msgspec.Raw = msgspec.Raw(b"null")
    tool_call_id: msgspec.Raw = msgspec.Raw(b"null")


_SHAPE = msgspec.json.Decoder(_MessageShape)
_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_NULL = b"null"
_CONTENT_STARTS = frozenset(b'"[n')  # a string, a list of parts, or null


@dataclass(slots=True, frozen=True)
class Split:
    """A request's `messages` array (its bytes, as it came) and where each message is in it."""

    raw: bytes
    starts: array.array  # ('L') offset of each message in `raw`
    ends: array.array  # ('L') offset just after it
    roles: tuple[str, ...]
    refs: tuple[bytes, ...]  # each message's raw tool_calls and tool_call_id values, one per line; b"" for none
    digests: array.array  # ('Q') each message's digest()

    def __len__(self) -> int:
        return len(self.starts)

    def messages(self) -> list[memoryview]:
        view = memoryview(self.raw)
        return [view[start:end] for start, end in zip(self.starts, self.ends)]

    def call_refs(self) -> bytes:
        """Every message's tool_calls and tool_call_id values, one per line."""
        return b"\n".join(ref for ref in self.refs if ref)


def digest(raw: bytes | memoryview | msgspec.Raw) -> int:
    """A 64-bit digest of raw JSON: CRC-32 and the length (the session digests compare messages by it)."""
    view = memoryview(raw)
    return zlib.crc32(view) | len(view) << 32


def split_messages(raw: bytes) -> Split:
    """Check and split a `messages` array; ValueError (msgspec.DecodeError, UnicodeDecodeError) when
    it is not a list of message objects, each with a role string and a string, list or null content, in valid
    UTF-8."""
    return _split_after(raw, _empty(raw), 0)


def _empty(raw: bytes) -> Split:
    return Split(raw, array.array("L"), array.array("L"), (), (), array.array("Q"))


def _split_after(raw: bytes, kept: Split, n: int) -> Split:
    """The split of `raw` whose first n messages are kept's (the same bytes at the same offsets), the rest read
    here."""
    if n:
        pos = kept.ends[n - 1]
        if _next(raw, pos) == ord(","):
            pos = _skip(raw, pos, b",")
            if _next(raw, pos) == ord("]"):
                raise ValueError("a `,` before the end of the messages")
        rest = b"[" + raw[pos:]  # the messages after the kept ones, as a list (`[]` when there are none)
    else:
        pos, rest = _skip(raw, 0, b"["), raw
    raws = _LIST.decode(rest)  # also makes sure that the list ends the array: nothing after its `]`
    codecs.utf_8_decode(memoryview(raw)[pos:], "strict", True)  # msgspec does not look inside raw values
    starts, ends, digests = kept.starts[:n], kept.ends[:n], kept.digests[:n]
    roles, refs = list(kept.roles[:n]), list(kept.refs[:n])
    for i, message in enumerate(raws):
        shape = _SHAPE.decode(message)
        if memoryview(shape.content)[0] not in _CONTENT_STARTS:
            raise ValueError(f"messages[{n + i}].content must be a string, a list of parts or null")
        if i:
            pos = _skip(raw, pos, b",")
        pos = _skip_whitespace(raw, pos)
        starts.append(pos)
        pos += len(message)
        ends.append(pos)
        roles.append(shape.role)
        refs.append(b"\n".join(bytes(r) for r in (shape.tool_calls, shape.tool_call_id) if bytes(r) != _NULL))
        digests.append(digest(message))
    return Split(raw, starts, ends, tuple(roles), tuple(refs), digests)


def _skip_whitespace(raw: bytes, pos: int) -> int:
    while pos < len(raw) and raw[pos] in WHITESPACE:
        pos += 1
    return pos


def _next(raw: bytes, pos: int) -> int:
    """The first byte at or after pos that is not whitespace; -1 at the end."""
    pos = _skip_whitespace(raw, pos)
    return raw[pos] if pos < len(raw) else -1


def _skip(raw: bytes, pos: int, token: bytes) -> int:
    """The offset after `token` (and the whitespace before it); ValueError when something else is there."""
    pos = _skip_whitespace(raw, pos)
    if raw[pos : pos + 1] != token:
        raise ValueError(f"expected {token.decode()!r} at offset {pos} of the messages")
    return pos + 1


class Conversations:
    """The splits of recent requests, reused for the messages a request repeats from one of them."""

    def __init__(self, kept_bytes: int = KEPT_BYTES, kept_splits: int = KEPT_SPLITS) -> None:
        self.kept_bytes = kept_bytes
        self.kept_splits = kept_splits
        self.kept: OrderedDict[int, Split] = OrderedDict()  # id -> split, least recently used first
        self.size = 0
        self.reused = 0  # messages taken from a kept split rather than read again (for tests and benchmarks)

    def split(self, raw: bytes) -> Split:
        """What split_messages(raw) gives, or raises."""
        kept, n = self.longest_prefix(raw)
        split = _split_after(raw, kept, n)
        self.reused += n
        if n and kept.ends[n - 1] * 2 >= len(kept.raw):
            # Most of it again: the same conversation, continued or retried, so the newer split stands for it.
            # (Subagents share only their first messages: each keeps its own.)
            self.forget(kept)
        elif n:
            self.kept.move_to_end(id(kept))
        self.keep(split)
        return split

    def longest_prefix(self, raw: bytes) -> tuple[Split, int]:
        """The kept split whose leading messages `raw` repeats most of, and how many; (empty, 0) for none."""
        best, most = _empty(raw), 0
        for kept in reversed(self.kept.values()):
            if not raw.startswith(memoryview(kept.raw)[: min(LOOKUP_BYTES, kept.ends[0])]):
                continue
            n = _shared_messages(kept, raw)
            if n > most:
                best, most = kept, n
                if n == len(kept):
                    break
        return best, most

    def keep(self, split: Split) -> None:
        if not len(split) or len(split.raw) > self.kept_bytes:
            return
        self.kept[id(split)] = split
        self.size += len(split.raw)
        while self.size > self.kept_bytes or len(self.kept) > self.kept_splits:
            self.forget(next(iter(self.kept.values())))

    def forget(self, split: Split) -> None:
        if self.kept.pop(id(split), None) is not None:
            self.size -= len(split.raw)


def _shared_messages(kept: Split, raw: bytes) -> int:
    """How many of kept's leading messages `raw` repeats byte for byte (what follows is read as the rest)."""

    def repeats(n: int) -> bool:
        end = kept.ends[n - 1]
        return raw.startswith(memoryview(kept.raw)[:end])

    last = len(kept)
    if repeats(last):
        return last
    # A retried or edited turn changes its last few messages: step back 1, 2, 4, ... messages (each step a
    # comparison of up to the whole conversation), then bisect between the last step that failed and the one
    # that held.
    high, step = last, 1  # repeats(high) does not hold
    while True:
        low = max(high - step, 0)
        if low == 0 or repeats(low):
            break
        high, step = low, step * 2
    while high - low > 1:  # repeats(low) holds (0: trivially), repeats(high) does not
        mid = (low + high) // 2
        if repeats(mid):
            low = mid
        else:
            high = mid
    return low
