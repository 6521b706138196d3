"""The SSE stream rewriter: the callable mitmproxy calls with each piece of a streamed chat response.

Each complete event is rewritten as it passes (model name restored, Gemini's tool-call deltas repaired, thought
signatures carried in tool-call ids) and sent on at once; nothing waits for the end of the stream. An event that
needs no change goes out byte for byte. Both sides are kept, up to a cap, for the flow: what the client received
and what the upstream sent.

The usual event (text, the model's name written once, no tool call) is neither decoded nor encoded: its name is
swapped in its bytes, and its data waits in `pending` until FOLD_BATCH of them wait or someone reads `answer`,
which folds everything waiting at once (one JSON decode for the lot). Folding in batches, not all at the end,
keeps a stream's last event cheap: with hundreds of streams ending within the same second, folding whole answers
at the end held up the others' chunks (the benchmark's worst 1% of chunk delays were all in the streams' last
fifth). An event with a tool call, any event after one (the finish reason may need its repair), an event whose
name cannot be swapped in place, and every event while the answer is held empty is decoded at once, after the
events before it are folded, so the answer keeps the stream's order.

With `hold_empty` (translate_retry_empty_answer), the events before the answer has any text, reasoning or tool
call wait in `held` instead: an answer that ends with nothing in it can then be asked for again before the client
got a byte of it (fallbacks.py), and is sent as it came otherwise (`release`).

What other addons may use (the rewriter's whole interface; anything else is its own): `rewriter_of(flow)` finds a
flow's rewriter (None when its response is not a rewritten stream); `answer` (the answer so far), `holding` (its
events are held while the answer is empty) and `release()` (the held events, now sent) for fallbacks.py;
`last_data` (when the upstream last sent bytes) and `complete` (the client has the whole answer) for
upstream_timeouts.py; `error` (an error event ended the stream, native_responses.py) for responses.py.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import orjson
from mitmproxy import http

from ..formats import errors
from ..formats.answer import Answer
from ..formats.capped import CappedBuffer
from ..formats.sse import Event, SSEDecoder, encode_event
from ..gemini import thought_signatures
from ..gemini.stream_toolcalls import ToolCallFixer

FOLD_BATCH = 16  # events folded into the answer at a time (one JSON decode for them all)


class StreamOptions(NamedTuple):
    client_model: str
    repair_tool_calls: bool
    pack_signatures: bool
    keep_bytes: int  # per side; beyond this the stored body is cut (the answer stays complete)
    hold_empty: bool = False  # hold the events back while the answer is empty (see the module docstring)


def rewriter_of(flow: http.HTTPFlow) -> StreamRewriter | None:
    """The flow's stream rewriter while its response is a rewritten stream, else None."""
    stream = flow.response.stream if flow.response is not None else None
    return stream if isinstance(stream, StreamRewriter) else None


class StreamRewriter:
    error: str | None = None  # why an error event ended the stream (native_responses.py sets it)

    def __init__(self, options: StreamOptions, t_start: float | None = None) -> None:
        self.options = options
        self.client_model_field = b'"model":' + orjson.dumps(options.client_model)  # what rename() writes
        self.decoder = SSEDecoder()
        self.fixer = ToolCallFixer() if options.repair_tool_calls else None
        self._answer = Answer()
        self.pending: list[bytes] = []  # data of events not folded into the answer yet, in order
        self.upstream_model_field: bytes | None = None  # the `"model":...` the upstream writes, once seen
        self.tools_seen = False  # a tool call passed: every later event is decoded (see the module docstring)
        self.upstream = CappedBuffer(options.keep_bytes)
        self.sent = CappedBuffer(options.keep_bytes)
        self.repairs: list[str] = []
        self.chunk_at: list[float] = []  # when each event was sent on (time.time())
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
        if not data:
            self.finished = True
            return self.send(now, self.decoder.flush())
        self.last_data = now
        self.upstream.add(data)
        if (
            data[:6] == b"data: "
            and data.find(b"\n") == len(data) - 2
            and data[-1:] == b"\n"
            and self.decoder.idle
            and b"\r" not in data
        ):
            # The usual read: one whole one-line `data: ...` event, nothing waiting before it (sse.parse_event's
            # fast path, without the decoder and the Event).
            field = self.upstream_model_field  # known once an event was renamed in place (never in NativeStream)
            if (
                field is not None
                and self.held is None
                and not self.tools_seen
                and data[6:7] == b"{"
                and data.count(b'"model"') == 1
                and field in data
                and b'"tool_calls"' not in data
            ):
                # rewrite()'s usual event, done here: this runs for nearly every chunk of every stream, where each
                # method call is a measurable share of the proxy's own cost per chunk (benchmark: 256 streams).
                out = data.replace(field, self.client_model_field)
                pending = self.pending
                pending.append(data[6:-2])
                if len(pending) >= FOLD_BATCH:
                    self.fold()
                self.chunk_at.append(now)
                self.sent.add(out)
                return [out]
            out = self.rewrite(data, data[6:-2])
            self.chunk_at.append(now)
            return self.sent_out(now, out)
        return self.send(now, self.decoder.decode(data))

    def send(self, now: float, events: list[Event]) -> list[bytes]:
        """The events of one read, rewritten, as one piece for the client (or none)."""
        if not events:
            return []
        if len(events) == 1:
            out = self.rewrite(events[0].raw, events[0].data)
        else:
            out = b"".join([self.rewrite(event.raw, event.data) for event in events])
        self.chunk_at.extend([now] * len(events))
        return self.sent_out(now, out)

    def sent_out(self, now: float, out: bytes) -> list[bytes]:
        if self.t_first is None:
            self.t_first = now
        if self.held is not None and not (out := self.hold(out)):
            return []
        self.sent.add(out)
        return [out]

    @property
    def chunk_times(self) -> list[float]:
        """When each event was sent on, in seconds since the request (the flow's chunk table)."""
        start = self.t_start
        return [round(t - start, 4) for t in self.chunk_at]

    @property
    def holding(self) -> bool:
        """The events are held back while the answer is empty (`hold_empty`): the client has none of them yet."""
        return self.held is not None

    @property
    def complete(self) -> bool:
        """The client has the whole answer: [DONE] came, or the upstream's body ended."""
        return self.saw_done or self.finished

    @property
    def answer(self) -> Answer:
        """The answer so far, every event up to now folded in."""
        if self.pending:
            self.fold()
        return self._answer

    def keep(self, data: bytes) -> None:
        """An event's data, to be folded later: FOLD_BATCH at a time, so a stream's end does not fold all of them
        at once (hundreds of streams ending together would hold up the chunks of the others)."""
        pending = self.pending
        pending.append(data)
        if len(pending) >= FOLD_BATCH:
            self.fold()

    def fold(self) -> None:
        """Fold the waiting events into the answer: one decode for all of them, each on its own if that fails."""
        pending, self.pending = self.pending, []
        try:
            chunks = orjson.loads(b"[" + b",".join(pending) + b"]")
        except orjson.JSONDecodeError:
            chunks = []
        if len(chunks) != len(pending):  # one of them is not a JSON value of its own
            chunks = [_loads(data) for data in pending]
        add = self._answer.add_chunk
        for chunk in chunks:
            if chunk.__class__ is dict:
                add(chunk)

    def hold(self, out: bytes) -> bytes:
        """Keep events back while the answer has nothing in it; the held events and these once it has."""
        answer, held = self.answer, self.held
        assert held is not None
        if not (answer.content_parts or answer.tool_calls or answer.reasoning_parts):
            held += out
            return b""
        self.held = None
        return bytes(held) + out if held else out

    def error_event(self, message: str, status: int, code: str | None = None) -> bytes:
        """The last event for a client whose stream is cut (responses.py writes it): OpenAI's error event here;
        a client that speaks another format gets its own (response/egress.py)."""
        return errors.sse_error_event(message, status, code)

    def release(self) -> bytes:
        """The events still held (none once the answer had something in it), now counted as sent."""
        held, self.held = bytes(self.held or b""), None
        self.sent.add(held)
        return held

    def rewrite(self, raw: bytes, data: bytes | None) -> bytes:
        if data is None:
            return raw
        if data[:1] == b"{" and self.held is None and not self.tools_seen and b'"tool_calls"' not in data:
            # The usual event: its name swapped in its bytes, its data folded later (see the module docstring).
            models = raw.count(b'"model"')
            if models == 1:
                upstream = self.upstream_model_field
                if upstream is not None and upstream in raw:
                    self.keep(data)
                    return raw.replace(upstream, self.client_model_field)
                if self.client_model_field in raw:
                    self.keep(data)
                    return raw
            elif not models:
                self.keep(data)
                return raw
        if self.pending:
            self.fold()
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
        self._answer.add_chunk(chunk)
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
            self.upstream_model_field = token
            return raw.replace(token, self.client_model_field)
        return encode_event(orjson.dumps(chunk))

    def repair(self, chunk: dict) -> bool:
        """Gemini's repairs on one chunk, in place; True when something was changed (and noted)."""
        if self.fixer is not None or self.options.pack_signatures:
            self.tools_seen = self.tools_seen or any(
                isinstance(c, dict) and isinstance(c.get("delta"), dict) and c["delta"].get("tool_calls")
                for c in chunk.get("choices") or ()
                if isinstance(chunk.get("choices"), list)
            )
        notes = self.fixer.fix(chunk) if self.fixer is not None else []
        if self.options.pack_signatures:
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") if isinstance(choice, dict) else None
                if isinstance(delta, dict) and isinstance(delta.get("tool_calls"), list):
                    notes += thought_signatures.pack_tool_calls(delta["tool_calls"])
        self.repairs += notes
        return bool(notes)


def _loads(data: bytes) -> object:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
