"""mitmproxy's own error responses (upstream unreachable, timed out, cut) in OpenAI's JSON shape.

When the upstream cannot be reached mitmproxy answers the client itself with an HTML page (502) built by
`make_error_response` in its HTTP/1 server layer. An OpenAI client cannot read HTML, so this module swaps that one
function for one that writes an OpenAI-shaped JSON error. It is the page for failures no addon answers (a request
mitmproxy cannot parse, a flow the proxy did not route); for the exchanges it routed, the proxy's `error` hook
(responses.py) sets the answer itself, which stream_end.py sends through mitmproxy's layers (HTTP/2 and TLS
clients included) instead of this page.

The swap is the `PATCH` below, installed in `running` and undone in `done` by patches.py after the start-up check
(internals.py) found `make_error_response` as mitmproxy 12.3.1 has it: a module global of `_http1` that its
HTTP/1 server looks up each time it builds a page. Without the swap the pages are mitmproxy's own HTML.
"""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.net.http import http1
from mitmproxy.version import MITMPROXY

from ..formats import errors
from . import internals

_saved: list = []  # mitmproxy's own make_error_response while ours is installed


def make_error_response(status_code: int, message: str = "") -> bytes:
    code = "upstream_unreachable" if status_code == 502 else "proxy_error"
    message = f"The proxy could not complete the request: {message or 'no detail'}."
    return assemble_whole(page(status_code, message, code))


def page(status: int, message: str, code: str) -> http.Response:
    """An error page of the proxy's own, in OpenAI's shape."""
    return errors.error_response(message, status, code, {"Server": MITMPROXY})


def whole_response(response: http.Response) -> http.Response:
    """A copy of `response` to send in one piece: its length instead of chunks (a streamed flow stored what it
    sent)."""
    whole = response.copy()
    whole.headers.pop("transfer-encoding", None)
    whole.headers["content-length"] = str(len(whole.raw_content or b""))
    return whole


def assemble_whole(response: http.Response) -> bytes:
    """A response as one piece of bytes with its length, for a connection mitmproxy closes right after."""
    response = whole_response(response)
    response.headers["connection"] = "close"
    return http1.assemble_response(response)


HTTP1_LAYER = "mitmproxy.proxy.layers.http._http1"  # private: reached only once the start-up check found it


def install(master: object = None) -> None:
    if not _saved:
        layer = internals.resolve(HTTP1_LAYER)
        _saved.append(layer.make_error_response)
        layer.make_error_response = make_error_response


def uninstall() -> None:
    if _saved:
        internals.resolve(HTTP1_LAYER).make_error_response = _saved.pop()


PATCH = internals.Patch(
    name="error page",
    written_for="12.3.1",
    internals=(
        internals.at(f"{HTTP1_LAYER}.make_error_response", internals.signature("status_code", "message")),
        internals.at(f"{HTTP1_LAYER}.Http1Server.send", internals.looks_up("make_error_response")),
        internals.at("mitmproxy.net.http.http1.assemble_response", internals.signature("response")),
    ),
    install=install,
    uninstall=uninstall,
    without="the error pages of failures no addon answers are mitmproxy's HTML, not OpenAI-shaped JSON",
)
