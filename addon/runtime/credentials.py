"""Capture mode's credentials: masked in the flow (mitmweb, `-w` files, the log), real on the wire.

What a client sends to its provider (`Authorization`, `x-api-key`, `api-key`, `x-goog-api-key`, a `key=` query
parameter) is replaced in the flow by a masked form in `requestheaders`, before mitmweb's view first shows the flow
(script addons run before it). The real value goes out all the same: the masked form is registered, and the two
places where mitmproxy turns a request into bytes for the server (HTTP/1's `assemble_request_head`, HTTP/2's
`format_h2_request_headers`) put the real one back. Both are looked up at call time, so `install()` swaps them;
mitmproxy converts an HTTP/2 client's request into a fresh HTTP/1 copy before assembling it, so the swap works on
the bytes, not on the request object. Written for mitmproxy 12.2 (`install()` checks both still exist). HTTP/3
upstreams are not covered: their requests would go out masked (and fail), never leak.

A masked form names the credential's first four and last two characters; when two different credentials would
mask alike while both are in flight, the second gets a suffix, so the swap is never ambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote

from mitmproxy import http
from mitmproxy.net.http import http1
from mitmproxy.proxy.layers.http import _http2

HEADERS = ("authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key")
QUERY_KEY = re.compile(rb"(?<=[?&]key=)[^&#]+")
SCHEMES = ("Bearer ", "Basic ", "Token ")

swaps: dict[bytes, bytes] = {}  # masked form (as on the wire) -> real value, while their flow is in flight
_originals: dict[str, Callable] = {}


def mask(secret: str) -> str:
    """'sk-p…yz': the first four and last two characters ('…' alone for a short secret)."""
    for scheme in SCHEMES:
        if secret.startswith(scheme):
            return scheme + mask(secret[len(scheme) :])
    return "…" if len(secret) < 12 else f"{secret[:4]}…{secret[-2:]}"


def _register(masked: bytes, real: bytes) -> bytes:
    candidate, n = masked, 1
    while swaps.get(candidate, real) != real:
        n += 1
        candidate = masked + b"~%d" % n
    swaps[candidate] = real
    return candidate


def hide(request: http.Request) -> list[bytes]:
    """Mask the request's credentials in place; the masked forms registered (to `release` when it is done)."""
    registered = []
    for name in HEADERS:
        values = request.headers.get_all(name)
        if not values:
            continue
        masked = [_register(mask(v).encode(), v.encode()).decode() for v in values]
        request.headers.set_all(name, masked)
        registered += [m.encode() for m in masked]
    path = request.data.path
    if b"key=" in path:
        found = QUERY_KEY.search(path)
        if found:
            real = found[0]
            masked_form = _register(quote(mask(real.decode("latin-1"))).encode(), real)
            request.data.path = path[: found.start()] + masked_form + path[found.end() :]
            registered.append(masked_form)
    return registered


def release(registered: list[bytes]) -> None:
    for masked in registered:
        swaps.pop(masked, None)


def reveal(data: bytes) -> bytes:
    """The request head with every registered masked form replaced by its real value."""
    for masked, real in sorted(swaps.items(), key=lambda item: -len(item[0])):  # "sk-a…45~2" before "sk-a…45"
        if masked in data:
            data = data.replace(masked, real)
    return data


def _assemble_request_head(request: http.Request) -> bytes:
    head = _originals["assemble_request_head"](request)
    return reveal(head) if swaps else head


def _format_h2_request_headers(context, event):  # a generator, like mitmproxy's
    headers = yield from _originals["format_h2_request_headers"](context, event)
    if swaps:
        headers = [(name, reveal(value)) for name, value in headers]
    return headers


def install() -> None:
    if _originals:
        return
    for module, name in ((http1, "assemble_request_head"), (_http2, "format_h2_request_headers")):
        if not callable(getattr(module, name, None)):
            raise RuntimeError(f"mitmproxy has no {module.__name__}.{name}: credentials could not be kept off flows.")
        _originals[name] = getattr(module, name)
    http1.assemble_request_head = _assemble_request_head
    _http2.format_h2_request_headers = _format_h2_request_headers


def uninstall() -> None:
    if _originals:
        http1.assemble_request_head = _originals.pop("assemble_request_head")
        _http2.format_h2_request_headers = _originals.pop("format_h2_request_headers")


class CredentialMask:
    """The addon: masks every flow's credentials as its headers arrive; forgets the real ones when it ends."""

    def __init__(self) -> None:
        self._pending: dict[str, list[bytes]] = {}  # flow id -> its registered masked forms

    def running(self) -> None:
        install()

    def done(self) -> None:
        uninstall()
        swaps.clear()

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.live and not flow.response:
            if registered := hide(flow.request):
                self._pending[flow.id] = registered

    def response(self, flow: http.HTTPFlow) -> None:
        release(self._pending.pop(flow.id, []))

    def error(self, flow: http.HTTPFlow) -> None:
        release(self._pending.pop(flow.id, []))
