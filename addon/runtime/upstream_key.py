"""The upstream key on the wire only: every view of the flow (mitmweb, saved flows, the log) sees it masked.

mitmproxy has no hook between "the request hook is done" and "the request bytes are written", and mitmweb can
serialize a flow at any moment while the upstream is still thinking (its flow API, a view update). So the
Authorization header in the flow always holds the masked key, and the real one lives in a Headers subclass
that substitutes it only when the headers are turned into bytes for the upstream: mitmproxy's HTTP/1 client
writes `bytes(request.headers)`. So the upstream must be spoken to in HTTP/1.1: a request of an HTTP/2 client (a
TLS client that chose h2) is turned into HTTP/1.1 when the key is attached, as mitmproxy's HTTP/1 client would
turn it (its copy would drop the key), and `UpstreamHttp1` offers an upstream only HTTP/1.1 in TLS's ALPN
(mitmproxy would otherwise offer the client's h2, and HTTP/2 writes headers field by field).

Nothing of mitmproxy's is replaced, so there is nothing to install; but the start-up check (internals.py)
probes what this relies on, as mitmproxy 12.3.1 has it. There is no safe fallback (the masked key would go
upstream, or the real one into every view), so without it the proxy refuses to start.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mitmproxy import http
from mitmproxy.proxy import server_hooks

from . import internals


class KeyedHeaders(http.Headers):
    """Headers whose Authorization value on the wire is the real key; everywhere else, the masked one."""

    wire_authorization: bytes | None = None
    wire_header: bytes = b"authorization"  # x-goog-api-key for Gemini's native API

    def __bytes__(self) -> bytes:
        if self.wire_authorization is None:
            return super().__bytes__()
        fields = tuple(
            (name, self.wire_authorization) if name.lower() == self.wire_header else (name, value)
            for name, value in self.fields
        )
        return bytes(http.Headers(fields))


def attach_key(
    request: http.Request, key: str, masked: str, header: str = "authorization", scheme: str = "Bearer "
) -> None:
    """Send `Bearer key` upstream while the flow shows `Bearer masked` (or `header: key`, scheme "")."""
    if request.is_http2 or request.is_http3:
        as_http1(request)
    request.headers[header] = f"{scheme}{masked}"
    headers = KeyedHeaders(request.headers.fields)
    headers.wire_authorization = f"{scheme}{key}".encode()
    headers.wire_header = header.lower().encode()
    request.headers = headers


def as_http1(request: http.Request) -> None:
    """An HTTP/2 or HTTP/3 request as HTTP/1.1, as mitmproxy's HTTP/1 client converts one (Http1Client.send)."""
    request.http_version = "HTTP/1.1"
    if "Host" not in request.headers and request.authority:
        request.headers.insert(0, "Host", request.authority)
    request.authority = ""
    cookies = request.headers.get_all("Cookie")
    if len(cookies) > 1:
        request.headers["Cookie"] = "; ".join(cookies)


class UpstreamHttp1:
    """Offers every upstream only HTTP/1.1 (TLS's ALPN), where the key is written from bytes(headers)."""

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        if not data.server.alpn_offers:
            data.server.alpn_offers = (b"http/1.1",)


def detach_key(request: http.Request) -> None:
    """Forget the real key once the upstream has it (plain headers again, still masked)."""
    if isinstance(request.headers, KeyedHeaders):
        request.headers = http.Headers(request.headers.fields)


PROBE_KEY = "probe-key-0123456789"


def probe_request() -> http.Request:
    request = http.Request.make("POST", "http://probe.invalid/v1/chat/completions")
    attach_key(request, PROBE_KEY, "probe…89")
    return request


def probed(check: Callable[[Any, http.Request], str | None]) -> internals.Shape:
    """A shape that runs `check(value, request)` on a fresh request carrying the probe key."""

    def shape(value: Any) -> str | None:
        try:
            return check(value, probe_request())
        except Exception as e:  # a changed mitmproxy may fail in any way: that is what the check reports
            return f"fails on a probe request ({type(e).__name__}: {e})"

    return shape


def _on_the_wire(assemble_request_head: Any, request: http.Request) -> str | None:
    if f"Bearer {PROBE_KEY}".encode() in assemble_request_head(request):
        return None
    return "no longer writes the headers through bytes(headers): the upstream would get the masked key"


def _not_in_the_flow(get_state: Any, request: http.Request) -> str | None:
    if PROBE_KEY not in repr(get_state(request)):
        return None
    return "keeps the real key in the flow's state (saved flows, mitmweb)"


PATCH = internals.Patch(
    name="key on the wire only",
    written_for="12.3.1",
    internals=(
        internals.at(
            "mitmproxy.net.http.http1.assemble_request_head",
            internals.signature("request"),
            probed(_on_the_wire),
        ),
        internals.at(
            "mitmproxy.proxy.layers.http._http1.Http1Client.send", internals.looks_up("http1", "assemble_request_head")
        ),
        internals.at("mitmproxy.http.Request.get_state", internals.signature("self"), probed(_not_in_the_flow)),
    ),
    install=lambda master: None,
    uninstall=lambda: None,
    without="the upstream key would either not reach the upstream or show in the flows, mitmweb and saved files",
    required=True,
)
