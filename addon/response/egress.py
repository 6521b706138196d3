"""Other client formats out: the chat answer translated back into the format the client spoke (ingress.py).

A streamed answer: the stream rewriter that responses.py set (StreamRewriter or NativeStream) gets a translating
layer (ClientStream, below): what the rewriter would send a chat client is read as chat chunks and written as
Responses or Anthropic events (formats/responses_stream.py, anthropic_stream.py). The rewriter keeps doing
everything else (repairs, the answer, timeouts, fallbacks read it as before); its error event at a cut comes in
the client's format. A whole answer, or an error, is translated in `response` (litellm's adapters). Afterwards
the flow's response holds what the client received and the exchange record's `chat_response` the chat answer.

In proxy.py this addon comes after Responses (its `responseheaders` wraps the rewriter Responses set) and after
Report and Sessions (they read the chat answer in `response`).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
from mitmproxy import ctx, http

from ..formats import client_formats, litellm_formats
from ..formats.anthropic_stream import AnthropicStream
from ..formats.capped import CappedBuffer
from ..formats.chat_stream_in import ChatStreamReader
from ..formats.client_formats import ANTHROPIC, COUNT_TOKENS
from ..formats.exchange import Exchange
from ..formats.responses_stream import ResponsesStream
from .stream_rewrite import StreamRewriter

logger = logging.getLogger(__name__)


class ClientStream(StreamRewriter):
    """The translating layer, mixed in over the rewriter's own class (see `translate_stream`)."""

    client_translator: ChatStreamReader
    client_sent: CappedBuffer

    def __call__(self, data: bytes) -> list[bytes]:
        pieces = super().__call__(data)
        out = b"".join([self.client_translator.feed(piece) for piece in pieces])
        if not data and self.held is None:  # while events are held (fallbacks.py), release() ends the stream
            out += self.client_translator.end()
        if not out:
            return []
        self.client_sent.add(out)
        return [out]

    def release(self) -> bytes:
        """The held events (fallbacks.py sends them when a retry failed), translated, with the stream's end."""
        held = super().release()
        out = self.client_translator.feed(held) + self.client_translator.end()
        self.client_sent.add(out)
        return out

    def error_event(self, message: str, status: int, code: str | None = None) -> bytes:
        out = self.client_translator.fail(message, status, code) or b": stream ended\n\n"
        self.client_sent.add(out)
        return out


_classes: dict[type, type] = {}


def translate_stream(rewriter: StreamRewriter, translator: ChatStreamReader, keep_bytes: int) -> None:
    """Give a live rewriter the translating layer: its class becomes ClientStream over its own class, so every
    other addon still finds the rewriter it set, with all its state."""
    base = type(rewriter)
    cls = _classes.get(base) or _classes.setdefault(base, type(f"Client{base.__name__}", (ClientStream, base), {}))
    rewriter.__class__ = cls
    layer: Any = rewriter
    layer.client_translator, layer.client_sent = translator, CappedBuffer(keep_bytes)


def stream_translator(ex: Exchange) -> ChatStreamReader:
    params = ex.client_params or {}
    if ex.client_format == ANTHROPIC:
        return AnthropicStream(ex.client_model or "")
    echo = {k: v for k, v in (params.get("echo") or {}).items() if k != "user"}
    return ResponsesStream(ex.client_model or "", echo, frozenset(params.get("custom_tools") or ()))


def whole_answer(ex: Exchange, content: bytes) -> bytes:
    """A chat.completion body in the client's format; ValueError when it cannot be read."""
    completion = orjson.loads(content)
    if not isinstance(completion, dict):
        raise ValueError("the answer is not a JSON object")
    params = ex.client_params or {}
    if ex.client_format == ANTHROPIC:
        return orjson.dumps(litellm_formats.chat_to_anthropic(completion, params.get("tool_names")))
    echo = dict(params.get("echo") or {})
    answer = litellm_formats.chat_to_responses({"model": ex.client_model, **echo}, completion)
    return orjson.dumps(answer)


def error_in_format(ex: Exchange, status: int, content: bytes) -> bytes:
    found = client_formats.openai_error_message(content)
    message, code = found if found else (content[:500].decode("utf-8", "replace") or f"HTTP {status}", None)
    return client_formats.error_in_format(ex.client_format, message, status, code)


class Egress:
    def __init__(self) -> None:
        self.streams: dict[str, ClientStream] = {}

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        ex = Exchange.find(flow)
        if ex is None or ex.client_format is None or flow.response is None or not flow.live:
            return
        rewriter = flow.response.stream
        if isinstance(rewriter, StreamRewriter) and not isinstance(rewriter, ClientStream):
            keep = sys.maxsize if ex.fallback_of is not None else ctx.options.translate_keep_stream_bytes
            translate_stream(rewriter, stream_translator(ex), keep)
            self.streams[flow.id] = rewriter  # type: ignore[assignment]  # it is a ClientStream now

    def response(self, flow: http.HTTPFlow) -> None:
        ex = Exchange.find(flow)
        response = flow.response
        if ex is None or ex.client_format is None or response is None or not flow.live:
            return
        stream = self.streams.pop(flow.id, None)
        if flow.is_replay == "response" or ex.chat_response is not None or ex.answered_by:
            return  # played back from a recording, done already, or a fallback attempt's answer (translated there)
        if stream is not None:
            ex.chat_response = response.content
            response.content = bytes(stream.client_sent.data)
            return
        ex.chat_response = response.content or b""
        if response.status_code >= 400:
            response.content = error_in_format(ex, response.status_code, response.content or b"")
            return
        if ex.client_format == COUNT_TOKENS:
            return  # answered by ingress.py in Anthropic's shape
        try:
            response.content = whole_answer(ex, response.content or b"")
        except ValueError as e:  # orjson's and litellm's errors
            message = f"The proxy could not translate the upstream's answer: {e}"
            ex.error = message
            response.status_code = 502
            response.content = client_formats.error_in_format(ex.client_format, message, 502, "untranslatable_answer")
        response.headers["content-type"] = "application/json"

    def error(self, flow: http.HTTPFlow) -> None:
        ex = Exchange.find(flow)
        if ex is None or ex.client_format is None:
            return
        stream = self.streams.pop(flow.id, None)
        if stream is not None and flow.response is not None:
            ex.chat_response = flow.response.content
            flow.response.content = bytes(stream.client_sent.data)
            return
        page = flow.response  # the error hook's answer (responses.py), sent in place of mitmproxy's page
        if page is not None and page.status_code >= 400:
            page.content = error_in_format(ex, page.status_code, page.content or b"")
