"""The request side of the native Gemini path: the client's OpenAI body becomes a `generateContent` body.

routing.py calls `rewrite` for targets whose `api` is "gemini" or "vertex". The flow then holds exactly what
Gemini receives (the native body, its URL, `x-goog-api-key` masked); the client's OpenAI request is what
client_request.py keeps for every chat flow (the exchange record's `client_request`), which the chat view and the
tool check read.
Vertex AI's OAuth token is attached later, by vertex_auth.py (minting it must not block the event loop).
"""

from __future__ import annotations

import orjson
from mitmproxy import http

from ..config import resolution
from ..formats.exchange import Exchange
from ..gemini import native_request
from ..runtime import upstream_key
from .chat_request import ChatRequest, load_messages


def rewrite(flow: http.HTTPFlow, chat: ChatRequest, target: resolution.Target, ex: Exchange) -> None:
    """Replace the body with the native one; ValueError (for the client) when it cannot be translated."""
    ex.api = target.api
    native, notes = native_request.translate(load_messages(chat).body, target.upstream_model, target.api)
    ex.repairs = notes
    flow.request.content = orjson.dumps(native)
    flow.request.headers["content-type"] = "application/json"


def path(target: resolution.Target, stream: bool) -> str:
    return native_request.native_path(target.upstream_model, stream)


def attach_credentials(flow: http.HTTPFlow, target: resolution.Target) -> None:
    """Gemini's API key in `x-goog-api-key` (masked in the flow); Vertex AI's token comes from vertex_auth."""
    if target.api == "gemini" and target.api_key:
        masked = resolution.mask_key(target.api_key)
        upstream_key.attach_key(flow.request, target.api_key, masked, header="x-goog-api-key", scheme="")
    elif target.api == "vertex":
        Exchange.of(flow).vertex_auth = True
