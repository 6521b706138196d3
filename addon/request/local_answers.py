"""What the proxy answers itself, never forwarded: /health, the model list, its own errors, and the proxy key.

A flow the proxy answers itself names the proxy's own address, not the reverse-proxy target mitmproxy put there:
mitmdump's line then reads `POST http://127.0.0.1:8000/v1/chat/completions << 400`, not the upstream's URL.
"""

from __future__ import annotations

import hmac

import orjson
from mitmproxy import http

from ..config.config_watch import ConfigWatch
from ..formats import errors, litellm_bridge
from ..formats.exchange import Exchange

CHAT_PATHS = ("/chat/completions", "/v1/chat/completions")
MODEL_PATHS = ("/models", "/v1/models")


def json_response(flow: http.HTTPFlow, status: int, body: bytes) -> None:
    flow.response = http.Response.make(status, body, {"content-type": "application/json"})
    answered_here(flow)


def error_response(flow: http.HTTPFlow, status: int, message: str, code: str | None = None) -> None:
    flow.response = errors.error_response(message, status, code)
    Exchange.of(flow).error = message
    answered_here(flow)


def answered_here(flow: http.HTTPFlow) -> None:
    """Point the flow at the address the client connected to (see the module docstring)."""
    host, port = flow.client_conn.sockname[:2]
    if host:
        flow.request.scheme, flow.request.host, flow.request.port = "http", host, port


def health(flow: http.HTTPFlow, watch: ConfigWatch) -> None:
    config = watch.config
    body = {
        "status": "ok",
        "config": config.path,
        "models": len(config.model_names()),
        "config_error": watch.error,
        "litellm": litellm_bridge.state(),  # "loading" for the first seconds: chat requests wait for it
    }
    json_response(flow, 200, orjson.dumps(body))


def models(flow: http.HTTPFlow, watch: ConfigWatch) -> None:
    json_response(flow, 200, orjson.dumps({"object": "list", "data": watch.config.model_names()}))


def client_authorized(flow: http.HTTPFlow, proxy_key: str) -> bool:
    """Whether the request's Bearer token is the proxy key (compared in constant time)."""
    sent = flow.request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(sent.encode(), proxy_key.encode())
