"""The "LLM client format" contentview: a Responses or Anthropic Messages exchange beside the chat exchange it became.

For flows that request/ingress.py translated (the exchange record's `client_format`), this is the default view:
the request as the client sent it (its body, from `client_request`) above the chat request routing sent on, and
the answer as the client received it (the flow's response: JSON, or its events one per line) above the chat answer
it was translated from (`chat_response`, as the LLM chat view renders it).
"""

from __future__ import annotations

import orjson
from mitmproxy import http
from mitmproxy.contentviews import Contentview, Metadata

from ..formats.exchange import Exchange
from ..formats.sse import SSEDecoder
from .chat_assembly import assemble_json, assemble_sse
from .chatview import render_request, render_response
from .client_body import client_body

RULE = "─" * 40


def _exchange(metadata: Metadata) -> Exchange | None:
    flow = metadata.flow
    found = Exchange.find(flow) if flow is not None else None
    return found if found is not None and found.client_format else None


def pretty(body: bytes) -> str:
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")


def event_lines(body: bytes) -> list[str]:
    """A stream's events, one line each: the event's name and its data."""
    decoder = SSEDecoder()
    events = decoder.decode(body) + decoder.flush()
    lines = []
    for n, event in enumerate(events):
        name = (event.event or b"").decode("utf-8", "replace")
        lines.append(f"[{n}] {name:<42} {(event.data or b'').decode('utf-8', 'replace')[:300]}")
    return lines


def request_text(ex: Exchange, data: bytes) -> str:
    body = client_body(ex)
    lines = [f"{ex.client_format} request, as the client sent it:", pretty(body) if body else "(not kept)"]
    if ex.client_notes:
        lines += ["", "translation: " + "; ".join(ex.client_notes)]
    lines += ["", RULE, "the chat request it became:"]
    try:
        lines.append(_render_chat_request(orjson.loads(data), ex.client_model))
    except (orjson.JSONDecodeError, TypeError, AttributeError):
        lines.append("(the flow's request is the upstream's own body: see the LLM native request view)")
    return "\n".join(lines)


def _render_chat_request(body: object, client_model: str | None) -> str:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise TypeError("not a chat request")
    return render_request(body, client_model)


def answer_text(ex: Exchange, data: bytes, streamed: bool) -> str:
    lines = [f"{ex.client_format} answer, as the client received it:"]
    lines += event_lines(data) if streamed else [pretty(data)]
    chat = ex.chat_response
    lines += ["", RULE]
    if not chat:
        return "\n".join([*lines, "(no chat answer kept)"])
    try:
        asm = assemble_json(chat) if chat.lstrip()[:1] == b"{" else assemble_sse(chat)
        lines.append(render_response(asm, ex, None, "the chat answer it was translated from"))
    except ValueError:
        lines += ["the chat answer it was translated from:", pretty(chat)]
    return "\n".join(lines)


class ClientFormatView(Contentview):
    name = "LLM client format"
    syntax_highlight = "none"

    def prettify(self, data: bytes, metadata: Metadata) -> str:
        ex = _exchange(metadata)
        if ex is None:
            raise ValueError("Not a Responses or Anthropic Messages exchange the proxy translated.")
        if isinstance(metadata.http_message, http.Request):
            return request_text(ex, data)
        streamed = data.lstrip()[:1] not in (b"{", b"[")
        return answer_text(ex, data, streamed)

    def render_priority(self, data: bytes, metadata: Metadata) -> float:
        return 3.0 if _exchange(metadata) is not None else -1.0  # above the LLM chat view for these flows
