"""mitmproxy contentviews for OpenAI chat completions, drawn by the renderer (render/).

`ChatView` ("LLM chat") shows a request as the conversation (messages, tools offered, other
parameters) and a response (JSON or SSE) as the assembled assistant answer, the tool-call check
and a table of the chunks. `LLMUpstreamRawView` ("LLM upstream raw", chosen by hand) shows the
upstream's stream before the proxy rewrote it, from the exchange record's `upstream_raw` (formats/exchange.py).
The entry script registers both with `contentviews.add(...)`.
"""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.contentviews import Metadata

from ..formats.exchange import Exchange
from . import turn_text
from .chat_assembly import assemble_json, assemble_sse, from_answer
from .render import conversation
from .render.document import DEFAULT, NOT_MINE, Section, View, loads, record

STORED = "chat completion: response body not stored; answer from flow.metadata['llm']['answer']"


class ChatView(View):
    name = "LLM chat"
    not_mine = "Not an OpenAI chat completion request or response."

    def sections(self, data: bytes, metadata: Metadata, ex: Exchange) -> list[Section | None] | None:
        kind = _kind(data, metadata, ex)
        if kind == "request":
            return [Section(None, [*turn_text.view_lines(ex), *conversation.request(loads(data), ex.client_model)])]
        if kind == "json":
            asm, title = assemble_json(data), "chat completion (JSON)"
        elif kind == "sse":
            asm, title = assemble_sse(data), "chat completion stream"
        elif kind == "stored":
            asm, title = from_answer(ex.answer or {}), STORED
        else:
            return None
        return [Section(None, conversation.response(asm, ex, conversation.offered(metadata, ex), title))]

    def render_priority(self, data: bytes, metadata: Metadata) -> float:
        return DEFAULT if _kind(data, metadata, record(metadata)) else NOT_MINE


class LLMUpstreamRawView(View):  # picked by hand (View's render_priority)
    name = "LLM upstream raw"
    not_mine = "This flow has no upstream_raw in flow.metadata['llm']."

    def sections(self, data: bytes, metadata: Metadata, ex: Exchange) -> list[Section | None] | None:
        raw = ex.upstream_raw
        return [Section(None, conversation.upstream(raw, conversation.offered(metadata, ex)))] if raw else None


def _kind(data: bytes, metadata: Metadata, ex: Exchange) -> str | None:
    """ "request", "json", "sse", "stored" (empty response body, answer in metadata) or None."""
    head = data[:64].lstrip()
    if not head:
        stored = isinstance(metadata.http_message, http.Response) and ex.answer
        return "stored" if isinstance(stored, dict) else None
    if not head.startswith(b"{"):
        sse = metadata.content_type == "text/event-stream" or head.startswith((b"data:", b":"))
        return "sse" if sse and (b"chat.completion.chunk" in data or _chat_path(metadata)) else None
    body = loads(data)
    if isinstance(body, dict) and isinstance(body.get("messages"), list):
        return "request"
    return "json" if isinstance(body, dict) and isinstance(body.get("choices"), list) else None


def _chat_path(metadata: Metadata) -> bool:
    request = getattr(metadata.flow, "request", None) or metadata.http_message
    return isinstance(request, http.Request) and request.path.split("?")[0].endswith("/chat/completions")
