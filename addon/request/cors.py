"""CORS for browser clients: preflights answered, and the CORS headers added for the origins the user allows.

Off by default: a browser page may only call the proxy when translate_cors_origins names its origin (or is `*`).
A preflight (OPTIONS with Access-Control-Request-Method) is answered here, before the proxy key is checked (a
browser sends no credentials with it): 204 for an allowed origin, 403 for another, and 405 while CORS is off.
Every other response to an allowed origin gets Access-Control-Allow-Origin (the origin itself, with Vary: Origin),
added when its headers are set (`responseheaders`, which mitmproxy also runs for answers the proxy makes itself),
so streamed answers carry it too.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from mitmproxy import ctx, exceptions, http

from ..formats import errors
from ..formats.exchange import Exchange
from ..runtime.option_help import one_paragraph

ALLOWED_METHODS = "GET, POST, OPTIONS"
# What OpenAI clients send: the key, JSON, a session id, and the openai SDK's own headers.
ALLOWED_HEADERS = (
    "authorization",
    "content-type",
    "x-session-id",
    "x-api-key",
    "openai-organization",
    "openai-project",
)
MAX_AGE = "600"  # seconds a browser may reuse a preflight's answer
ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s?#]+")
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")


class CorsOrigins(NamedTuple):
    any: bool
    origins: frozenset[str]

    def allows(self, origin: str) -> bool:
        return bool(origin) and (self.any or origin.lower().rstrip("/") in self.origins)


def parse_origins(text: str) -> CorsOrigins | None:
    """The translate_cors_origins option: empty is off, `*` any origin, else origins like https://app.example.com
    separated by commas."""
    names = [name.strip().lower().rstrip("/") for name in text.split(",") if name.strip()]
    if not names:
        return None
    if "*" in names:
        return CorsOrigins(True, frozenset())
    for name in names:
        if not ORIGIN.fullmatch(name):
            raise ValueError(f"{name!r} is not an origin (scheme://host[:port], no path), nor `*`.")
    return CorsOrigins(False, frozenset(names))


def preflight_headers(origin: str, requested: str) -> dict[str, str]:
    """A preflight's answer: the usual headers plus those the browser asks for (its origin is trusted)."""
    asked = [name.strip().lower() for name in requested.split(",") if TOKEN.fullmatch(name.strip().lower())]
    headers = list(dict.fromkeys([*ALLOWED_HEADERS, *asked]))
    return {
        **response_headers(origin),
        "access-control-allow-methods": ALLOWED_METHODS,
        "access-control-allow-headers": ", ".join(headers),
        "access-control-max-age": MAX_AGE,
    }


def response_headers(origin: str) -> dict[str, str]:
    return {"access-control-allow-origin": origin, "vary": "Origin"}


def is_preflight(request: http.Request) -> bool:
    return request.method == "OPTIONS" and "access-control-request-method" in request.headers


class Cors:
    def __init__(self) -> None:
        self.allowed: CorsOrigins | None = None

    def load(self, loader) -> None:
        loader.add_option(
            "translate_cors_origins",
            str,
            "",
            one_paragraph("""
            Browser origins that may call the proxy, separated by commas (e.g. https://app.example.com,
            http://localhost:5173), or `*` for any. Their CORS preflights are answered and the proxy's responses
            carry CORS headers for them. Empty (the default): no CORS; a preflight gets a 405.
            """),
        )

    def configure(self, updated: set[str]) -> None:
        if "translate_cors_origins" in updated:
            text = ctx.options.translate_cors_origins
            try:
                self.allowed = parse_origins(text)
            except ValueError as e:
                raise exceptions.OptionsError(f"Cannot parse translate_cors_origins {text}: {e}") from e

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live or not is_preflight(flow.request):
            return
        origin = flow.request.headers.get("origin", "")
        if self.allowed is None:
            return refuse(flow, 405, "This proxy does not answer CORS preflights: set translate_cors_origins.")
        if not self.allowed.allows(origin):
            return refuse(flow, 403, f"The origin {origin[:100]!r} is not in translate_cors_origins.")
        requested = flow.request.headers.get("access-control-request-headers", "")
        flow.response = http.Response.make(204, b"", preflight_headers(origin, requested))

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self.add_headers(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self.add_headers(flow)  # again: a later addon may have replaced the response after its headers hook

    def add_headers(self, flow: http.HTTPFlow) -> None:
        origin = flow.request.headers.get("origin", "")
        if flow.response is None or self.allowed is None or not self.allowed.allows(origin):
            return
        headers = flow.response.headers
        headers["access-control-allow-origin"] = origin
        vary = headers.get("vary", "")
        if "origin" not in vary.lower():
            headers["vary"] = f"{vary}, Origin" if vary else "Origin"


def refuse(flow: http.HTTPFlow, status: int, message: str) -> None:
    code = "cors_disabled" if status == 405 else "origin_not_allowed"
    flow.response = errors.error_response(message, status, code, {"allow": "GET, POST"} if status == 405 else None)
    Exchange.of(flow).error = message
