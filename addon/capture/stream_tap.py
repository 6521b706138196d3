"""Capture mode's stream tap: each piece of a streamed answer goes on unchanged and at once, and is read on the way.

The tap keeps a copy of what passed, up to a cap (the flow's stored body), splits it into SSE events and feeds
each to its format's reader (capture/readers), whose chunks the one answer fold (formats.answer) takes, so the
answer is complete even when the stored body was cut. A compressed stream cannot be read piece by piece: it is
kept, and read whole at the end (when it was not cut).
"""

from __future__ import annotations

import time
from typing import Any

from mitmproxy.net import encoding

from ..formats.answer import Answer
from ..formats.capped import CappedBuffer
from ..formats.sse import SSEDecoder


class StreamTap:
    def __init__(self, reader_stream: Any, keep_bytes: int, t_start: float, content_encoding: str = "") -> None:
        self.reader = reader_stream  # a formats.<format>.Stream
        self.decoder = SSEDecoder()
        self.answer = Answer()
        self.kept = CappedBuffer(keep_bytes)
        self.encoding = content_encoding.strip().lower() if content_encoding.strip().lower() != "identity" else ""
        self.t_start = t_start
        self.t_first: float | None = None
        self.chunk_times: list[float] = []
        self.errors: list[str] = []

    def __call__(self, data: bytes) -> list[bytes]:
        now = time.time()
        if data:
            self.kept.add(data)
            if self.t_first is None:
                self.t_first = now
            if not self.encoding:
                self.read(self.decoder.decode(data), now)
            return [data]
        if self.encoding:
            self.read_whole(now)
        else:
            self.read(self.decoder.flush(), now)
        return []  # an empty piece would end the client's chunked body early

    def read(self, events: list, now: float) -> None:
        for event in events:
            if event.data is None:
                continue
            self.chunk_times.append(round(now - self.t_start, 4))
            for chunk in self.reader.chunks(event.data):
                if isinstance(chunk.get("error"), dict):
                    self.errors.append(f"{chunk['error'].get('code')}: {chunk['error'].get('message')}")
                self.answer.add_chunk(chunk)

    def read_whole(self, now: float) -> None:
        if self.kept.truncated:
            self.errors.append(f"the {self.encoding}-compressed stream was cut at the cap: its answer is not read")
            return
        try:
            plain = encoding.decode(bytes(self.kept.data), self.encoding)
        except ValueError as e:
            self.errors.append(f"the {self.encoding}-compressed stream cannot be decoded: {e}")
            return
        if isinstance(plain, str):  # a text codec named as the content-encoding: mitmproxy decodes it to text
            plain = plain.encode()
        decoder = SSEDecoder()
        self.read(decoder.decode(plain) + decoder.flush(), now)
