"""The response side of the native Gemini path: Gemini's answers go back to the client in OpenAI's shape.

A streamed answer passes through NativeStream, a StreamRewriter whose events are translated instead of renamed
(so the idle timeout, the stored bodies, the answer in flow.metadata and the error event at a cut work as for
OpenAI-compatible streams); a whole answer is translated in `rewrite_completion`. responses.py calls in here
for flows whose exchange record's `api` is not "openai".
"""

from __future__ import annotations

import orjson
from mitmproxy import http

from ..formats import errors
from ..formats.answer import Answer
from ..formats.exchange import Exchange
from ..formats.sse import encode_event
from ..gemini.native_stream import NativeAnswerError, Translator
from .stream_rewrite import StreamOptions, StreamRewriter

DONE = b"data: [DONE]\n\n"


def is_native(ex: Exchange) -> bool:
    return ex.api != "openai"


class NativeStream(StreamRewriter):
    """Gemini's `streamGenerateContent?alt=sse` events in, chat.completion.chunk events out, one for one."""

    def __init__(self, options: StreamOptions, t_start: float | None = None) -> None:
        super().__init__(options._replace(repair_tool_calls=False, pack_signatures=False), t_start)
        self.translator = Translator(options.client_model)
        self.error: str | None = None
        self.error_code: str | None = None
        self.ended = False

    def __call__(self, data: bytes) -> list[bytes]:
        out = [piece for piece in super().__call__(data) if piece]  # an empty piece would end the client's body
        if data or self.ended:
            return out
        self.ended = True  # the end of the upstream's stream: close the client's as OpenAI streams end
        if self.error is None and not self.translator.finished:
            tail = self.fail("Gemini's stream ended before it said the answer was finished.", "incomplete_stream")
        else:
            tail = b"" if self.error else DONE
            self.saw_done = self.error is None
        if tail:
            self.sent.add(tail)
        return [*out, tail] if tail else out

    def rewrite(self, raw: bytes, data: bytes | None) -> bytes:
        if self.error is not None:
            return b""  # nothing after a failure is forwarded
        if data is None:
            return raw  # a comment or keep-alive
        try:
            native = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self.fail(f"Gemini sent an event that is not JSON: {data[:200]!r}", "upstream_bad_event")
        if not isinstance(native, dict):
            return self.fail(f"Gemini sent an event that is not an object: {data[:200]!r}", "upstream_bad_event")
        if isinstance(native.get("error"), dict):
            upstream = native["error"]
            return self.fail(f"Gemini: {upstream.get('message')}", str(upstream.get("status") or "upstream_error"))
        try:
            chunk = self.translator.chunk(native)
        except NativeAnswerError as e:
            return self.fail(str(e), e.code)
        self.answer.add_chunk(chunk)
        return encode_event(orjson.dumps(chunk))

    def fail(self, message: str, code: str) -> bytes:
        self.error, self.error_code = message, code
        self.repairs.append(f"stream ended with an error event: {code}")
        return errors.sse_error_event(message, 502, code)


def rewrite_completion(flow: http.HTTPFlow, ex: Exchange) -> None:
    """A whole generateContent answer as a chat.completion (or an OpenAI-shaped error, status 502)."""
    assert flow.response is not None
    try:
        native = orjson.loads(flow.response.content or b"")
        if not isinstance(native, dict):
            raise ValueError("Gemini's answer is not a JSON object.")
        body = Translator(ex.client_model or "").completion(native)
    except NativeAnswerError as e:
        return _fail(flow, ex, str(e), e.code)
    except ValueError as e:  # orjson.JSONDecodeError is one
        return _fail(flow, ex, f"Gemini's answer cannot be read: {e}", "upstream_bad_answer")
    answer = Answer()
    answer.add_completion(body)
    ex.answer = answer.to_dict()
    ex.upstream_raw = flow.response.content
    flow.response.content = orjson.dumps(body)
    flow.response.headers["content-type"] = "application/json"


def _fail(flow: http.HTTPFlow, ex: Exchange, message: str, code: str) -> None:
    assert flow.response is not None
    ex.error = message
    ex.upstream_raw = flow.response.content
    flow.response.status_code = 502
    flow.response.content = errors.error_body(message, 502, code)
    flow.response.headers["content-type"] = "application/json"
