"""The client's request as it came, kept beside the rewritten one: what replay, resend, the view and export use.

Routing rewrites a chat request in place (model, URL, key, Gemini repairs), so the flow's request is the upstream's.
This addon, placed before routing, stores the client's own request in the exchange record's `client_request`:
method, path and headers (the client's credentials removed: the proxy key never lands in a flow file) and, for chat
requests, the body as the client sent it, cut at `translate_keep_client_request` bytes like stream bodies. Other
paths keep no body: routing does not change it. Once routing has forwarded a chat body, `shrink` keeps the client's
as a patch of it (formats/kept_body.py: `model` and the repaired fields), so a kept flow holds its history once;
`whole` gives the body back. A body the patch cannot describe briefly (the native path's) stays as it came.
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec
import orjson
from mitmproxy import ctx, http

from ..formats import kept_body
from ..formats.client_formats import client_format
from ..formats.exchange import Exchange
from ..runtime.option_help import one_paragraph

CHAT_PATHS = ("/chat/completions", "/v1/chat/completions")
# Never stored: the client's credentials (PROXY_API_KEY travels as its Bearer token) and cookies.
CREDENTIALS = frozenset(("authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie"))


def is_chat_path(path: str) -> bool:
    return (path.split("?", 1)[0].rstrip("/") or "/") in CHAT_PATHS


def snapshot(request: http.Request, keep_bytes: int) -> dict:
    """The client's request as plain data for flow.metadata (saved in -w files): no credentials, body capped."""
    stored: dict = {
        "method": request.method,
        "path": request.path,
        "headers": [
            [name, value] for name, value in request.headers.items(multi=True) if name.lower() not in CREDENTIALS
        ],
    }
    if request.method == "POST" and (is_chat_path(request.path) or client_format(request.path)):
        body = request.raw_content or b""
        stored["body"] = body if len(body) <= keep_bytes else body[:keep_bytes]
        if len(body) > keep_bytes:
            stored["truncated"] = len(body)
    return stored


def complete(stored: object) -> bool:
    """Whether a stored client request can be sent again as it came (nothing cut, no patch left to apply)."""
    return (
        isinstance(stored, dict)
        and "truncated" not in stored
        and "body_patch" not in stored
        and isinstance(stored.get("path"), str)
    )


class Beside(NamedTuple):
    """A chat body's fields but its raw `messages`, copied before routing rewrites them (see `beside`)."""

    content: bytes  # the body routing read
    messages: msgspec.Raw  # its `messages`, forwarded as they came
    fields: dict  # the other fields, a copy


def beside(content: bytes, body: dict) -> Beside | None:
    """What `shrink` needs to patch the client's body without reading its history again: `body` (parsed from
    `content`) but its messages, copied before the rewrite; None when the messages are not raw (parsed whole)."""
    messages = body.get("messages")
    if not isinstance(messages, msgspec.Raw):
        return None
    return Beside(content, messages, orjson.loads(orjson.dumps({k: v for k, v in body.items() if k != "messages"})))


def shrink(stored: dict | None, forwarded: bytes, client: Beside | None = None, sent: dict | None = None) -> None:
    """Keep the stored body as a patch of the forwarded one, when that is much smaller. With `client` (`beside`)
    and `sent` (the body `forwarded` encodes): when the stored body is the one routing read and `sent` still holds
    its raw messages, only the fields around them are compared (another client format's body was translated
    before routing read it, and is compared whole)."""
    if not stored or "truncated" in stored or not isinstance(stored.get("body"), bytes) or kept_body.encoded(stored):
        return
    body = stored["body"]
    if client is not None and sent is not None and sent.get("messages") is client.messages and body == client.content:
        fields = {k: v for k, v in sent.items() if k != "messages"}
        patch = kept_body.make_beside(client.fields, fields, forwarded, len(body))
    else:
        patch = kept_body.make(body, forwarded)
    if patch is not None:
        del stored["body"]
        stored["body_patch"] = patch


whole = kept_body.whole  # the stored request with its body whole (formats/kept_body.py)


def restore(request: http.Request, stored: dict) -> None:
    """Make `request` the stored client request again (method, path, headers and, if stored, the body)."""
    request.method = stored["method"]
    request.path = stored["path"]
    headers = http.Headers()
    for name, value in stored.get("headers") or ():
        headers.add(name, value)
    if "body" in stored:
        request.raw_content = stored["body"]
        headers["content-length"] = str(len(stored["body"]))
    elif "content-length" in request.headers:
        headers["content-length"] = request.headers["content-length"]
    request.headers = headers


class ClientRequest:
    def load(self, loader) -> None:
        loader.add_option(
            "translate_keep_client_request",
            int,
            4 * 1024 * 1024,
            one_paragraph("""
            How much of each chat request's body, as the client sent it, the flow keeps beside the rewritten one
            (flow.metadata["llm"]["client_request"], the "LLM client request" view, replay, llm.resend, export).
            A longer body is cut, and a replay then starts from the rewritten request instead. 0 keeps none.
            """),
        )

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        Exchange.of(flow).client_request = snapshot(flow.request, ctx.options.translate_keep_client_request)
