"""The "LLM client format" contentview: a Responses or Anthropic Messages exchange beside the chat exchange it became.

For flows that request/ingress.py translated (the exchange record's `client_format`), this is the default view:
the request as the client sent it (its body, from `client_request`) above the chat request routing sent on, and
the answer as the client received it (the flow's response: JSON, or its events one per line) above the chat answer
it was translated from (`chat_response`, as the LLM chat view renders it).
"""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.contentviews import Metadata

from ..formats.exchange import Exchange
from .chat_assembly import assemble_json, assemble_sse, split_events
from .client_body import client_body
from .render import conversation
from .render.document import NOT_MINE, OVER_CHAT, Section, View, clip, pretty, record

NATIVE = "(the flow's request is the upstream's own body: see the LLM native request view)"
CHAT_ANSWER = "the chat answer it was translated from"


class ClientFormatView(View):
    name = "LLM client format"
    not_mine = "Not a Responses or Anthropic Messages exchange the proxy translated."

    def sections(self, data: bytes, metadata: Metadata, ex: Exchange) -> list[Section | None] | None:
        if not ex.client_format:
            return None
        if isinstance(metadata.http_message, http.Request):
            return request_sections(ex, data)
        return answer_sections(ex, data, streamed=data.lstrip()[:1] not in (b"{", b"["))

    def render_priority(self, data: bytes, metadata: Metadata) -> float:
        return OVER_CHAT if record(metadata).client_format else NOT_MINE  # above the LLM chat view for these flows


def request_sections(ex: Exchange, data: bytes) -> list[Section | None]:
    body = client_body(ex)
    sent = [pretty(body) if body else "(not kept)"]
    sent += ["", "translation: " + "; ".join(ex.client_notes)] if ex.client_notes else []
    chat = conversation.chat_request(data)
    became = [NATIVE] if chat is None else conversation.request(chat, ex.client_model)
    title = f"{ex.client_format} request, as the client sent it:"
    return [Section(title, sent), Section("the chat request it became:", became)]


def answer_sections(ex: Exchange, data: bytes, streamed: bool) -> list[Section | None]:
    title = f"{ex.client_format} answer, as the client received it:"
    received = Section(title, event_lines(data) if streamed else [pretty(data)])
    chat = ex.chat_response
    if not chat:
        return [received, Section(None, ["(no chat answer kept)"])]
    try:
        asm = assemble_json(chat) if chat.lstrip()[:1] == b"{" else assemble_sse(chat)
    except ValueError:
        return [received, Section(f"{CHAT_ANSWER}:", [pretty(chat)])]
    return [received, Section(None, conversation.response(asm, ex, None, CHAT_ANSWER))]


def event_lines(body: bytes) -> list[str]:
    """A stream's events, one line each: the event's name and its data."""
    lines = []
    for n, event in enumerate(split_events(body)):
        name, data = (event.event or b"").decode("utf-8", "replace"), (event.data or b"").decode("utf-8", "replace")
        lines.append(f"[{n}] {name:<42} {clip(data, 300)}")
    return lines
