"""The SSE stream rewriter: the callable mitmproxy calls with each piece of a streamed chat response.

Each complete event is rewritten as it passes (model name restored, Gemini's tool-call deltas repaired, thought
signatures carried in tool-call ids) and sent on at once; nothing waits for the end of the stream. An event that
needs no change goes out byte for byte. Both sides are kept, up to a cap, for the flow: what the client received
and what the upstream sent.

With `hold_empty` (translate_retry_empty_answer), the events before the answer has any text, reasoning or tool
call wait in `held` instead: an answer that ends with nothing in it can then be asked for again before the client
got a byte of it (fallbacks.py), and is sent as it came otherwise (`release`).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import orjson

from ..formats.answer import Answer
from ..formats.sse import SSEDecoder, encode_event
from ..gemini import thought_signatures
from ..gemini.stream_toolcalls import ToolCallFixer


class StreamOptions(NamedTuple):
    client_model: str
    repair_tool_calls: bool
    pack_signatures: bool
    keep_bytes: int  # per side; beyond this the stored body is cut (the answer stays complete)
    hold_empty: bool = False  # hold the events back while the answer is empty (see the module docstring)


class CappedBuffer:
    def __init__(self, cap: int) -> None:
        self.data = bytearray()
        self.cap = cap
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        room = self.cap - len(self.data)
        if len(chunk) > room:
            self.truncated = True
            chunk = chunk[: max(room, 0)]
        self.data += chunk


class StreamRewriter:
    def __init__(self, options: StreamOptions, t_start: float | None = None) -> None:
        self.options = options
        self.client_model_field = b'"model":' + orjson.dumps(options.client_model)  # what rename() writes
        self.decoder = SSEDecoder()
        self.fixer = ToolCallFixer() if options.repair_tool_calls else None
        self.answer = Answer()
        self.upstream = CappedBuffer(options.keep_bytes)
        self.sent = CappedBuffer(options.keep_bytes)
        self.repairs: list[str] = []
        self.chunk_times: list[float] = []
        self.t_start = t_start or time.time()
        self.t_first: float | None = None
        self.saw_done = False
        self.finished = False
        self.last_data = time.time()  # when the upstream last sent bytes (the idle timeout watches it)
        self.held: bytearray | None = bytearray() if options.hold_empty else None

    def __call__(self, data: bytes) -> list[bytes]:
        # mitmproxy calls once more with b"" at the end; an empty chunk must never be sent (it would end the
        # client's chunked body early), so nothing-to-send is an empty list.
        now = time.time()
        if data:
            self.last_data = now
            self.upstream.add(data)
            events = self.decoder.decode(data)
        else:
            self.finished = True
            events = self.decoder.flush()
        if not events:
            return []
        if len(events) == 1:  # the usual case: one event per read
            out = self.rewrite(events[0].raw, events[0].data)
        else:
            out = b"".join([self.rewrite(event.raw, event.data) for event in events])
        if self.t_first is None:
            self.t_first = now
        self.chunk_times.extend([round(now - self.t_start, 4)] * len(events))
        if self.held is not None and not (out := self.hold(out)):
            return []
        self.sent.add(out)
        return [out]

    def hold(self, out: bytes) -> bytes:
        """Keep events back while the answer has nothing in it; the held events and these once it has."""
        answer, held = self.answer, self.held
        assert held is not None
        if not (answer.content_parts or answer.tool_calls or answer.reasoning_parts):
            held += out
            return b""
        self.held = None
        return bytes(held) + out if held else out

    def release(self) -> bytes:
        """The events still held (none once the answer had something in it), now counted as sent."""
        held, self.held = bytes(self.held or b""), None
        self.sent.add(held)
        return held

    def rewrite(self, raw: bytes, data: bytes | None) -> bytes:
        if data is None:
            return raw
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            if data.strip() == b"[DONE]":
                self.saw_done = True
            return raw
        if not isinstance(chunk, dict):
            return raw
        upstream_model = chunk.get("model")
        renamed = upstream_model is not None and upstream_model != self.options.client_model
        if renamed:
            chunk["model"] = self.options.client_model
        repaired = self.repair(chunk)
        self.answer.add_chunk(chunk)
        if repaired:
            return encode_event(orjson.dumps(chunk))
        if renamed:
            return self.rename(raw, upstream_model, chunk)
        return raw

    def rename(self, raw: bytes, upstream_model: object, chunk: dict) -> bytes:
        """The event with only its model name changed: the upstream's bytes but for that one value, when the
        event's only `"model"` key is written compactly (escaped quotes cannot form it inside a string); else
        the chunk encoded anew."""
        token = b'"model":' + orjson.dumps(upstream_model)
        if raw.count(b'"model"') == 1 and token in raw:
            return raw.replace(token, self.client_model_field)
        return encode_event(orjson.dumps(chunk))

    def repair(self, chunk: dict) -> bool:
        """Gemini's repairs on one chunk, in place; True when something was changed (and noted)."""
        notes = self.fixer.fix(chunk) if self.fixer is not None else []
        if self.options.pack_signatures:
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") if isinstance(choice, dict) else None
                if isinstance(delta, dict) and isinstance(delta.get("tool_calls"), list):
                    notes += thought_signatures.pack_tool_calls(delta["tool_calls"])
        self.repairs += notes
        return bool(notes)
