"""The "LLM client request" contentview: the request as the client sent it, beside the rewritten one.

Routing rewrites a chat flow's request for the upstream; client_request.py keeps the client's own request in
the exchange record's `client_request` (credentials removed, body capped). This view, picked by hand from the view
menu of a request, shows it: the request line, the headers, then the body as indented JSON (the client's model
name, its tool-call ids with thought signatures packed in) and, for a chat body, the conversation as the LLM chat
view reads it.
"""

from __future__ import annotations

import orjson
from mitmproxy import http
from mitmproxy.contentviews import Contentview, Metadata

from ..formats import kept_body
from ..formats.exchange import Exchange
from .chatview import render_request

NO_CLIENT_REQUEST = "This flow keeps no client request (flow.metadata['llm']['client_request'])."


def client_request(metadata: Metadata) -> dict | None:
    flow = metadata.flow
    found = Exchange.find(flow) if flow is not None else None
    if found is None or found.client_request is None:
        return None
    assert isinstance(flow, http.HTTPFlow)  # only HTTP flows carry the record
    # Kept as a patch of the forwarded body (kept_body.py): whole again, or as stored when the request was edited.
    return kept_body.whole(found.client_request, flow.request.raw_content) or found.client_request


def render_client_request(stored: dict) -> str:
    lines = [f"{stored.get('method')} {stored.get('path')}  (as the client sent it; credentials not kept)"]
    lines += [f"{name}: {value}" for name, value in stored.get("headers") or ()]
    if "body_patch" in stored:
        return "\n".join([*lines, "", "(the body was kept as a patch of the forwarded one, which was edited since)"])
    if "body" not in stored:
        return "\n".join([*lines, "", "(the body went upstream unchanged: see the request itself)"])
    body = stored["body"]
    body = body.encode() if isinstance(body, str) else body or b""
    if stored.get("truncated"):
        lines += ["", f"body cut at {len(body):,} of {stored['truncated']:,} bytes (translate_keep_client_request)"]
        return "\n".join([*lines, body.decode("utf-8", "replace")])
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "\n".join([*lines, "", body.decode("utf-8", "replace")])
    lines += ["", orjson.dumps(parsed, option=orjson.OPT_INDENT_2).decode()]
    if isinstance(parsed, dict) and isinstance(parsed.get("messages"), list):
        lines += ["", "─" * 40, render_request(parsed)]
    return "\n".join(lines)


class ClientRequestView(Contentview):
    name = "LLM client request"
    syntax_highlight = "none"

    def prettify(self, data: bytes, metadata: Metadata) -> str:
        stored = client_request(metadata)
        if stored is None:
            raise ValueError(NO_CLIENT_REQUEST)
        return render_client_request(stored)

    def render_priority(self, data: bytes, metadata: Metadata) -> float:
        return -1.0  # chosen by hand; the LLM chat view stays the default
