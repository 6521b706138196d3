"""A stream's stored copy: bytes up to a cap, and whether more came (the answer folded from a stream stays
complete; only what a flow keeps of its body is cut). Used by the proxy's stream rewriter and capture mode's tap."""

from __future__ import annotations


class CappedBuffer:
    def __init__(self, cap: int) -> None:
        self.data = bytearray()
        self.cap = cap
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        data = self.data
        if len(data) + len(chunk) <= self.cap:  # the usual chunk: no slicing
            data += chunk
            return
        room = self.cap - len(data)
        self.truncated = True
        data += chunk[: max(room, 0)]
