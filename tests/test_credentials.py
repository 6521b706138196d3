"""Capture mode's credentials: masked in the flow from its first hook on, the real ones on the wire (HTTP/1's
request head and HTTP/2's header list, the two places mitmproxy turns a request into bytes), installed by
MitmproxyPatches with capture mode's patches; the masks in the same ASCII form as the reverse proxy's keys."""

from __future__ import annotations

import pytest
from mitmproxy import http
from mitmproxy.net.http import http1
from mitmproxy.proxy.layers.http import _events, _http2
from mitmproxy.test import taddons, tflow

from addon.capture import credentials
from addon.runtime.patches import MitmproxyPatches

GOOGLE, OPENAI, ANTHROPIC = "AIzaSyREALGOOGLEKEY0123456", "sk-proj-REALOPENAIKEY0123456", "sk-ant-REALANTHROPIC012345"


@pytest.fixture
def mask():
    addon, patches = credentials.CredentialMask(), MitmproxyPatches(credentials.PATCHES)
    with taddons.context(addon, patches):
        patches.running()
        yield addon
        patches.done()
        addon.done()


def secret_flow() -> http.HTTPFlow:
    flow = tflow.tflow(resp=False)
    flow.request.url = f"https://generativelanguage.googleapis.com/v1beta/models/m:generateContent?key={GOOGLE}&alt=sse"
    flow.request.headers.update({"authorization": f"Bearer {OPENAI}", "x-api-key": ANTHROPIC, "x-goog-api-key": GOOGLE})
    return flow


def test_masked_in_the_flow_real_on_the_wire(mask):
    flow = secret_flow()
    mask.requestheaders(flow)
    state = repr(flow.get_state())
    assert not any(secret in state for secret in (GOOGLE, OPENAI, ANTHROPIC))
    assert (
        flow.request.headers["authorization"] == "Bearer sk-p...56" and flow.request.headers["x-api-key"] == "sk-a...45"
    )
    assert flow.request.query["key"] == "AIza...56"
    head = http1.assemble_request_head(flow.request)
    assert f"key={GOOGLE}&alt=sse".encode() in head
    assert f"authorization: Bearer {OPENAI}\r\n".encode() in head and f"x-goog-api-key: {GOOGLE}".encode() in head
    # An HTTP/2 client's request is copied before it is assembled: the swap works on the copy too.
    assert f"x-api-key: {ANTHROPIC}".encode() in http1.assemble_request_head(flow.request.copy())
    flow.request.http_version = "HTTP/2.0"
    context = type("Context", (), {"options": type("Options", (), {"normalize_outbound_headers": False})()})()
    generator = _http2.format_h2_request_headers(context, _events.RequestHeaders(1, flow.request, True))
    with pytest.raises(StopIteration) as done:
        next(generator)
    h2 = dict(done.value.value)
    assert h2[b":path"].endswith(f"key={GOOGLE}&alt=sse".encode()) and h2[b"x-api-key"] == ANTHROPIC.encode()
    flow.response = http.Response.make(200)
    mask.response(flow)
    assert credentials.swaps == {}  # forgotten once the provider has them
    assert ANTHROPIC.encode() not in http1.assemble_request_head(flow.request)


def test_two_credentials_that_mask_alike_stay_apart(mask):
    first, second = secret_flow(), secret_flow()
    second.request.headers["x-api-key"] = "sk-aOTHERKEY999999999945"
    mask.requestheaders(first)
    mask.requestheaders(second)
    assert second.request.headers["x-api-key"] == "sk-a...45~2"
    assert b"sk-aOTHERKEY999999999945" in http1.assemble_request_head(second.request)
    assert ANTHROPIC.encode() in http1.assemble_request_head(first.request)


def test_a_key_two_flows_send_at_once_stays_real_until_both_are_done(mask):
    first, second = secret_flow(), secret_flow()
    mask.requestheaders(first)
    mask.requestheaders(second)
    first.response = http.Response.make(200)
    mask.response(first)
    assert ANTHROPIC.encode() in http1.assemble_request_head(second.request)  # still on its way out
    mask.error(second)
    assert credentials.swaps == {}


def test_installed_in_running_and_uninstalled_in_done():
    originals = http1.assemble_request_head, _http2.format_h2_request_headers
    patches = MitmproxyPatches(credentials.PATCHES)
    with taddons.context(patches):
        assert (http1.assemble_request_head, _http2.format_h2_request_headers) == originals  # not at load
        patches.running()
        assert http1.assemble_request_head is credentials._assemble_request_head
        assert _http2.format_h2_request_headers is credentials._format_h2_request_headers
        patches.done()
    assert (http1.assemble_request_head, _http2.format_h2_request_headers) == originals


def test_only_a_credential_that_is_exactly_a_masked_form_is_swapped(mask):
    """A short credential masks as '...': dots elsewhere in requests stay dots, and another request whose own
    credential is a literal '...' gets its own registered form (every request passes the mask), never this one."""
    flow = secret_flow()
    flow.request.headers["api-key"] = "short"
    mask.requestheaders(flow)
    assert flow.request.headers["api-key"] == "..."
    other = tflow.tflow(resp=False)
    other.request = http.Request.make("GET", "https://github.com/a/compare/v1...v2?key=...&q=...", b"", {"x-n": "..."})
    other.request.headers["x-api-key"] = "..."
    mask.requestheaders(other)
    assert other.request.headers["x-api-key"] == other.request.query["key"] == "...~2"
    head = http1.assemble_request_head(other.request)
    assert b"short" not in head and b"/a/compare/v1...v2?key=...&q=... HTTP/1.1\r\n" in head
    assert b"\r\nx-n: ...\r\n" in head and b"\r\nx-api-key: ...\r\n" in head
    assert b"\r\napi-key: short\r\n" in http1.assemble_request_head(flow.request)
    unmasked = http.Request.make("GET", "https://example.com/x...y", b"", {"x-note": "..."})  # no credential
    assert b"short" not in http1.assemble_request_head(unmasked)


@pytest.mark.parametrize(
    "secret, shown",
    [
        ("Bearer sk-proj-abcdefgh12345", "Bearer sk-p...45"),
        ("short", "..."),
        ("AIzaSy0123456789", "AIza...89"),
        ("AIzaSy012345678", "..."),  # under 16 characters: nothing of it shown, as keys.mask_key does
    ],
)
def test_mask(secret, shown):
    assert credentials.mask(secret) == shown and shown.isascii()
