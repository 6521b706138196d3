"""Other client formats in: an OpenAI Responses or Anthropic Messages request becomes the chat request routing takes.

Placed after client_request.py (which keeps the client's own request) and before routing.py. For `POST
/v1/responses` and `POST /v1/messages` (also without /v1, with any query) the body is translated by litellm's
adapters (formats/litellm_formats.py), a few fields are mapped or dropped on the way (noted in the exchange
record's `client_notes`), and the flow becomes `POST /v1/chat/completions`: routing, the Gemini repairs,
fallbacks, sessions and views then see one chat exchange. response/egress.py translates the answer back.
`POST /v1/messages/count_tokens` is answered here with litellm's token counter for the resolved model.

The client's `x-api-key` is its key for this proxy, as a Bearer token is: it is moved to `authorization` for
routing's proxy-key check, and point_at drops both before anything goes upstream. A replayed flow comes back
here in its client format (replay.py restores the client request), so it is translated once per pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

import orjson
from mitmproxy import ctx, http

from ..formats import client_formats, litellm_bridge, litellm_formats
from ..formats.client_formats import ANTHROPIC, COUNT_TOKENS, RESPONSES
from ..formats.exchange import Exchange
from . import body_encoding
from .local_answers import answered_here, client_authorized, json_response

logger = logging.getLogger(__name__)
CHAT_PATH = "/v1/chat/completions"
CLIENT_ONLY_HEADERS = ("anthropic-", "openai-beta", "x-stainless-")
# Fields the chat request gets although Gemini does nothing with them; dropped with a note.
DROPPED_CHAT_FIELDS = ("user", "context_management", "metadata", "prompt_cache_key", "web_search_options")
# Echoed on a Responses answer (what the Responses API repeats from the request).
ECHOED = (
    "instructions",
    "metadata",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning",
    "max_output_tokens",
    "temperature",
    "top_p",
    "text",
    "store",
    "truncation",
    "user",
)


class IngressError(ValueError):
    def __init__(self, message: str, status: int = 400, code: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.code = status, code


def parse_body(flow: http.HTTPFlow) -> dict[str, Any]:
    """The request body as a JSON object; IngressError names what is wrong."""
    try:
        content = body_encoding.decode_body(
            flow.request.raw_content or b"",
            flow.request.headers.get("content-encoding", ""),
            ctx.options.translate_max_body,
        )
        body = orjson.loads(content)
    except ValueError as e:
        raise IngressError(f"The request body is not valid JSON: {e}.") from None
    if not isinstance(body, dict):
        raise IngressError("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise IngressError('The request needs a `model` string, e.g. "local-model".', code="invalid_model")
    return body


def translate(fmt: str, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(chat body, what the answer's translation needs, notes) for a Responses or Messages body."""
    refusal = client_formats.check_responses(body) if fmt == RESPONSES else client_formats.check_anthropic(body)
    if refusal is not None:
        raise IngressError(refusal.message, refusal.status, refusal.code)
    notes: list[str] = []
    if fmt == RESPONSES:
        chat = litellm_formats.responses_to_chat(body)
        custom = [t.get("name") for t in body.get("tools") or () if isinstance(t, dict) and t.get("type") == "custom"]
        params: dict[str, Any] = {"echo": {k: body[k] for k in ECHOED if k in body}, "custom_tools": custom}
    else:
        chat, tool_names = litellm_formats.anthropic_to_chat(body)
        params = {"tool_names": tool_names}
    for message in chat.get("messages") or ():
        # Claude's thinking blocks come back with Anthropic's signatures: no other model can read them.
        if isinstance(message, dict) and (
            message.pop("thinking_blocks", None) or message.pop("reasoning_content", None)
        ):
            notes.append("dropped thinking blocks of earlier turns")
    for name in DROPPED_CHAT_FIELDS:
        if chat.pop(name, None) is not None:
            notes.append(f"dropped {name}")
    if chat.get("stream"):
        chat["stream_options"] = {"include_usage": True}
    params["stream"] = bool(chat.get("stream"))
    return chat, params, sorted(set(notes), key=notes.index)


class Ingress:
    def __init__(self, routing: Any = None) -> None:
        self.routing = routing  # routing.Routing: its config (to resolve a model for counting) and proxy key

    def request(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        if flow.response or flow.error or not flow.live:
            return None
        fmt = client_formats.client_format(flow.request.path)
        if fmt is None:
            return None
        if not litellm_bridge.ready() and _on_event_loop():
            return self.when_warm(flow, fmt)
        self.translate(flow, fmt)
        return None

    async def when_warm(self, flow: http.HTTPFlow, fmt: str) -> None:
        try:
            await asyncio.wrap_future(litellm_bridge.warm())
        except Exception as e:
            return refuse(flow, fmt, IngressError(f"The proxy cannot translate: importing litellm failed: {e}", 503))
        self.translate(flow, fmt)

    def translate(self, flow: http.HTTPFlow, fmt: str) -> None:
        ex = Exchange.of(flow)
        ex.client_format = fmt
        if "x-api-key" in flow.request.headers and "authorization" not in flow.request.headers:
            flow.request.headers["authorization"] = "Bearer " + flow.request.headers["x-api-key"]
        try:
            if flow.request.method != "POST":
                raise IngressError(f"{flow.request.path.split('?')[0]} takes POST.", 405, "method_not_allowed")
            body = parse_body(flow)
            if fmt == COUNT_TOKENS:
                return self.count_tokens(flow, body)
            chat, params, notes = translate(fmt, body)
        except ValueError as e:  # litellm's refusals come as ValueError too
            status, code = (e.status, e.code) if isinstance(e, IngressError) else (400, "invalid_request_error")
            return refuse(flow, fmt, IngressError(str(e), status, code))
        ex.client_params, ex.client_notes = params, notes
        dropped = f"; {', '.join(notes)}" if notes else ""
        logger.info(f"{fmt} request {flow.request.path.split('?')[0]} translated to a chat request{dropped}")
        flow.request.path = CHAT_PATH
        for name in [n for n in flow.request.headers if n.lower().startswith(CLIENT_ONLY_HEADERS)]:
            flow.request.headers.pop(name, None)  # the format's own headers mean nothing upstream
        flow.request.headers.pop("content-encoding", None)
        flow.request.content = orjson.dumps(chat)

    def count_tokens(self, flow: http.HTTPFlow, body: dict[str, Any]) -> None:
        routing = self.routing
        if routing is not None and routing.proxy_key and not client_authorized(flow, routing.proxy_key):
            raise IngressError("Missing or wrong proxy key: send PROXY_API_KEY as x-api-key.", 401, "invalid_api_key")
        chat, _, _ = translate(ANTHROPIC, {**body, "max_tokens": body.get("max_tokens") or 1})
        model = body["model"]
        if routing is not None and routing.watch is not None:
            target = routing.watch.resolve(model)
            model = target.litellm_model if not target.litellm_model.startswith("openai/") else target.upstream_model
        tokens = litellm_formats.count_tokens(model, chat.get("messages") or [], chat.get("tools"))
        json_response(flow, 200, orjson.dumps({"input_tokens": tokens}))


def refuse(flow: http.HTTPFlow, fmt: str, error: IngressError) -> None:
    body = client_formats.error_in_format(fmt, str(error), error.status, error.code)
    flow.response = http.Response.make(error.status, body, {"content-type": "application/json"})
    Exchange.of(flow).error = str(error)
    answered_here(flow)


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
