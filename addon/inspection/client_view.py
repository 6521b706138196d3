"""The "LLM client request" contentview: the request as the client sent it, beside the rewritten one.

Routing rewrites a chat flow's request for the upstream; client_request.py keeps the client's own request in
the exchange record's `client_request` (credentials removed, body capped). This view, picked by hand from the view
menu of a request, shows it: the request line, the headers, then the body as indented JSON (the client's model
name, its tool-call ids with thought signatures packed in) and, for a chat body, the conversation as the LLM chat
view reads it.
"""

from __future__ import annotations

from mitmproxy.contentviews import Metadata

from ..formats.exchange import Exchange
from .render import conversation
from .render.document import Section, View, kept_request, pretty

PATCHED = "(the body was kept as a patch of the forwarded one, which was edited since)"
UNCHANGED = "(the body went upstream unchanged: see the request itself)"


class ClientRequestView(View):  # picked by hand (View's render_priority); the LLM chat view stays the default
    name = "LLM client request"
    not_mine = "This flow keeps no client request (flow.metadata['llm']['client_request'])."

    def sections(self, data: bytes, metadata: Metadata, ex: Exchange) -> list[Section | None] | None:
        stored = kept_request(metadata, ex)
        return None if stored is None else client_request(stored)


def client_request(stored: dict) -> list[Section | None]:
    """The kept request's line and headers, its body, and the conversation when the body is a chat request."""
    title = f"{stored.get('method')} {stored.get('path')}  (as the client sent it; credentials not kept)"
    head = [*(f"{name}: {value}" for name, value in stored.get("headers") or ()), ""]
    if "body_patch" in stored or "body" not in stored:
        return [Section(title, [*head, PATCHED if "body_patch" in stored else UNCHANGED])]
    body = stored["body"]
    body = body.encode() if isinstance(body, str) else body or b""
    if stored.get("truncated"):
        cut = f"body cut at {len(body):,} of {stored['truncated']:,} bytes (translate_keep_client_request)"
        return [Section(title, [*head, cut, body.decode("utf-8", "replace")])]
    chat = conversation.chat_request(body)
    return [Section(title, [*head, pretty(body)]), Section(None, conversation.request(chat)) if chat else None]
