"""Capture mode's credentials: masked in the flow (mitmweb, `-w` files, the log), real on the wire.

What a client sends to its provider (`Authorization`, `x-api-key`, `api-key`, `x-goog-api-key`, a `key=` query
parameter) is replaced in the flow by a masked form in `requestheaders`, before mitmweb's view first shows the flow
(script addons run before it). The masked form is the one the reverse proxy logs keys with (config/keys.py,
ASCII: `AIza...x9`, a scheme such as `Bearer ` kept). The real value goes out all the same: the masked form is
registered, and the two places where mitmproxy turns a request into bytes for the server (HTTP/1's
`assemble_request_head`, HTTP/2's `format_h2_request_headers`) put the real one back. mitmproxy converts an
HTTP/2 client's request into a fresh HTTP/1 copy before assembling it, so the swap works on the bytes, not on the
request object; it touches only the credential headers' values and the `key=` parameter, and only a value that is
exactly a registered masked form, so no other text of any request (a path with `...` in it) is ever replaced.

Those two functions are mitmproxy internals: `PATCH` names them and what they must look like (runtime/internals.py),
and runtime/patches.py swaps them in `running` and back in `done` (capture_mode.py loads it with `PATCHES`). HTTP/3
upstreams are not covered: their requests would go out masked (and fail), never leak.

Without the patch there is no safe way to both show and send: the masking stays on whatever happens, since a masked
key sent to the provider only fails that request (it answers 401) while a real key in the flows would be kept in
every `-w` file and shown in mitmweb. So the patch is required: with a changed internal, capture mode refuses to
start (ERROR) instead of running with requests that cannot authenticate.

When two different credentials would mask alike while both are in flight, the second gets a suffix (`~2`), so
the swap is never ambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

from mitmproxy import http

from ..config.keys import mask_key
from ..runtime import internals

HEADERS = ("authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key")
_HEADER_NAMES = frozenset(name.encode() for name in HEADERS)
QUERY_KEY = re.compile(rb"(?<=[?&]key=)[^&#\s]+")
SCHEMES = ("Bearer ", "Basic ", "Token ")

HTTP1 = "mitmproxy.net.http.http1"
HTTP2 = "mitmproxy.proxy.layers.http._http2"

swaps: dict[bytes, bytes] = {}  # masked form (as on the wire) -> real value, while a flow using it is in flight
_users: dict[bytes, int] = {}  # masked form -> how many registrations (flows send the same key at once)
_originals: dict[str, Callable] = {}


def mask(secret: str) -> str:
    """'Bearer sk-p...yz': the scheme kept, the rest as keys.mask_key shows a key (first four, last two)."""
    for scheme in SCHEMES:
        if secret.startswith(scheme):
            return scheme + mask(secret[len(scheme) :])
    return mask_key(secret)


def _register(masked: bytes, real: bytes) -> bytes:
    candidate, n = masked, 1
    while swaps.get(candidate, real) != real:
        n += 1
        candidate = masked + b"~%d" % n
    swaps[candidate] = real
    _users[candidate] = _users.get(candidate, 0) + 1
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
        if _users.get(masked, 0) > 1:
            _users[masked] -= 1
        else:
            swaps.pop(masked, None)
            _users.pop(masked, None)


def reveal_path(path: bytes, table: Mapping[bytes, bytes]) -> bytes:
    """A path (or request line) whose `key=` value is a registered masked form, with the real value."""
    return QUERY_KEY.sub(lambda found: table.get(found[0], found[0]), path) if b"key=" in path else path


def reveal_value(name: bytes, value: bytes, table: Mapping[bytes, bytes]) -> bytes:
    """A credential header's value that is a registered masked form: the real one. Any other value as it is."""
    return table.get(value, value) if name.strip().lower() in _HEADER_NAMES else value


def reveal_head(head: bytes, table: Mapping[bytes, bytes]) -> bytes:
    """An HTTP/1 request head (request line, `name: value` lines) with the real credentials."""
    lines = head.split(b"\r\n")
    lines[0] = reveal_path(lines[0], table)
    for i, line in enumerate(lines[1:], 1):
        name, colon, value = line.partition(b":")
        if colon:
            stripped = value.strip()
            if (real := reveal_value(name, stripped, table)) is not stripped:
                lines[i] = name + b": " + real
    return b"\r\n".join(lines)


def reveal_h2(headers: list[tuple[bytes, bytes]], table: Mapping[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    """An HTTP/2 header list (`:path` included) with the real credentials."""
    return [
        (name, reveal_path(value, table) if name == b":path" else reveal_value(name, value, table))
        for name, value in headers
    ]


def _assemble_request_head(request: http.Request) -> bytes:
    head = _originals["assemble_request_head"](request)
    return reveal_head(head, swaps) if swaps else head


def _format_h2_request_headers(context, event):  # a generator, like mitmproxy's
    headers = yield from _originals["format_h2_request_headers"](context, event)
    return reveal_h2(headers, swaps) if swaps else headers


def install(master: Any = None) -> None:
    if _originals:
        return
    for module, name, ours in (
        (HTTP1, "assemble_request_head", _assemble_request_head),
        (HTTP2, "format_h2_request_headers", _format_h2_request_headers),
    ):
        owner = internals.resolve(module)
        _originals[name] = getattr(owner, name)
        setattr(owner, name, ours)


def uninstall() -> None:
    for module, name in ((HTTP1, "assemble_request_head"), (HTTP2, "format_h2_request_headers")):
        if name in _originals:
            setattr(internals.resolve(module), name, _originals.pop(name))
    forget()


def forget() -> None:
    swaps.clear()
    _users.clear()


# The start-up check's probe: a request carrying masked credentials, and the table that reveals them.
PROBE_REAL, PROBE_MASKED = b"probe-credential-0123456789", b"prob...89"
PROBE_TABLE = {PROBE_MASKED: PROBE_REAL}


def probe_request() -> http.Request:
    request = http.Request.make("POST", f"https://probe.invalid/v1/m:generate?key={PROBE_MASKED.decode()}&alt=sse")
    request.headers["x-api-key"] = PROBE_MASKED.decode()
    return request


def _head_reads(assemble_request_head: Any) -> str | None:
    try:
        head = reveal_head(assemble_request_head(probe_request()), PROBE_TABLE)
    except Exception as e:  # a changed mitmproxy may fail in any way: that is what the check reports
        return f"fails on a probe request ({type(e).__name__}: {e})"
    if b"key=" + PROBE_REAL + b"&" in head.split(b"\r\n")[0] and b"\r\nx-api-key: " + PROBE_REAL + b"\r\n" in head:
        return None
    return "no longer writes `name: value` lines after the request line: the credentials would go out masked"


def _h2_headers_read(format_h2_request_headers: Any) -> str | None:
    try:
        event = internals.resolve("mitmproxy.proxy.layers.http._events.RequestHeaders")(1, probe_request(), True)
        context = SimpleNamespace(options=SimpleNamespace(normalize_outbound_headers=False))
        generator = format_h2_request_headers(context, event)
        while True:
            next(generator)
    except StopIteration as done:
        headers = done.value
    except Exception as e:  # a changed mitmproxy may fail in any way: that is what the check reports
        return f"fails on a probe request ({type(e).__name__}: {e})"
    try:
        revealed = dict(reveal_h2(list(headers), PROBE_TABLE))
    except (TypeError, ValueError, AttributeError):
        return f"returns {type(headers).__name__}, expected a list of (name, value) bytes pairs"
    if revealed.get(b"x-api-key") == PROBE_REAL and b"key=" + PROBE_REAL in revealed.get(b":path", b""):
        return None
    return (
        "no longer returns the request's headers and :path as (name, value) pairs: the credentials would go out masked"
    )


PATCH = internals.Patch(
    name="credentials on the wire only",
    written_for="12.3.1",
    internals=(
        internals.at(f"{HTTP1}.assemble_request_head", internals.signature("request"), _head_reads),
        internals.at(
            "mitmproxy.proxy.layers.http._http1.Http1Client.send", internals.looks_up("http1", "assemble_request_head")
        ),
        internals.at(f"{HTTP2}.format_h2_request_headers", internals.signature("context", "event"), _h2_headers_read),
        internals.at(f"{HTTP2}.Http2Client._handle_event2", internals.looks_up("format_h2_request_headers")),
    ),
    install=install,
    uninstall=uninstall,
    without="the client's credentials would either reach the provider masked (every request refused) or show in "
    "the flows, mitmweb and -w files",
    required=True,
)
# Capture mode's one change to mitmproxy: a passive forward proxy changes nothing of it but where credentials are
# written. Owned here, not in runtime/patches.py: the runtime layer imports nothing of capture mode.
PATCHES: tuple[internals.Patch, ...] = (PATCH,)


class CredentialMask:
    """The addon: masks every flow's credentials as its headers arrive; forgets the real ones when it ends.

    It masks whether or not `PATCH` is installed: without it a request fails at the provider, but no credential
    is ever kept in a flow.
    """

    def __init__(self) -> None:
        self._pending: dict[str, list[bytes]] = {}  # flow id -> its registered masked forms

    def done(self) -> None:
        forget()
        self._pending.clear()

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.live and not flow.response:
            if registered := hide(flow.request):
                self._pending[flow.id] = registered

    def response(self, flow: http.HTTPFlow) -> None:
        release(self._pending.pop(flow.id, []))

    def error(self, flow: http.HTTPFlow) -> None:
        release(self._pending.pop(flow.id, []))
