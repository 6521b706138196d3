"""The request as the upstream gets it: the body's model and defaults, the Gemini repairs, URL, headers and key.

routing.py decides where a chat request goes; these functions rewrite it for that target. The real key is only on
the wire (runtime/upstream_key.py); the flow shows it masked.
"""

from __future__ import annotations

import functools
import time

from mitmproxy import ctx, http
from mitmproxy.net.http import url

from ..config import keys, resolution
from ..formats.exchange import Exchange
from ..gemini import request_fields, thought_signatures, tool_schema
from ..runtime import upstream_key
from .chat_request import ChatRequest, load_messages

# Client headers that must never reach the upstream: credentials of the client, and hints that name other hosts.
DROPPED_HEADERS = frozenset(
    (
        b"authorization",
        b"x-api-key",
        b"api-key",
        b"x-goog-api-key",
        b"x-forwarded-host",
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-original-url",
        b"x-rewrite-url",
        b"proxy-authorization",
    )
)


@functools.lru_cache(maxsize=256)
def parsed_url(address: str) -> tuple[bytes, bytes, int, bytes]:
    """What setting request.url would set; parsed once per upstream URL (the host check is IDNA work)."""
    return url.parse(address)


def point_at(flow: http.HTTPFlow, api_base: str, rest: str, key: str | None, headers: dict[str, str]) -> None:
    """Send the flow to `api_base` + `rest`, without the client's credentials, with the target's headers and key."""
    flow.request.scheme, flow.request.host, flow.request.port, flow.request.path = parsed_url(
        api_base.rstrip("/") + "/" + rest
    )
    # One pass over the fields: popping each dropped name would scan them all a dozen times per request.
    kept = [(name, value) for name, value in flow.request.headers.fields if name.lower() not in DROPPED_HEADERS]
    flow.request.headers = http.Headers(kept)
    for name, value in headers.items():
        flow.request.headers[name] = value
    if key:
        upstream_key.attach_key(flow.request, key, resolution.mask_key(key))


def record_target(
    ex: Exchange, flow: http.HTTPFlow, target: resolution.Target, client_model: str, stream: bool
) -> None:
    """What routing decided, in the flow's exchange record (the key only masked)."""
    ex.endpoint = f"{flow.request.method} {flow.request.path}"
    ex.client_model = client_model
    ex.upstream_model = target.upstream_model
    ex.stream = stream
    ex.litellm_model = target.litellm_model
    ex.api_base = target.api_base
    ex.provider = target.provider
    ex.is_gemini = target.is_gemini
    ex.key = keys.shown(target.api_key, target.api_base)
    ex.key_source = target.key_source
    ex.key_hint = keys.refusal_hint(keys.Key(target.api_key, target.key_source, target.key_hint), target.api_base)
    ex.t_request = time.time()
    ex.repairs = []
    ex.fallbacks = list(target.fallbacks)
    ex.context_window = target.context_window
    ex.price_in = target.input_cost_per_token
    ex.price_out = target.output_cost_per_token
    ex.price_cached = target.cache_read_cost_per_token


def rewrite_body(chat: ChatRequest, target: resolution.Target, default_temperature: float | None) -> list[str]:
    """The upstream's model, the configured defaults and, for Gemini, the repairs; what was repaired."""
    body = chat.body
    body["model"] = target.upstream_model
    repairs: list[str] = []
    if default_temperature is not None and "temperature" not in body:
        body["temperature"] = default_temperature
    if ctx.options.translate_default_max_tokens and "max_tokens" not in body:
        body["max_tokens"] = ctx.options.translate_default_max_tokens
    if not target.is_gemini:
        return repairs
    # Fields first: translating legacy `functions` into `tools` gives the schema cleaner more to clean.
    if ctx.options.translate_repair_fields:
        repairs += request_fields.repair_fields(body, target.upstream_model)
    if ctx.options.translate_repair_schemas:
        repairs += tool_schema.clean_tools(body)
    if ctx.options.translate_repair_signatures and thought_signatures.may_restore(
        chat.call_refs, target.upstream_model
    ):
        repairs += thought_signatures.restore_request(load_messages(chat).body, target.upstream_model)
    return repairs
