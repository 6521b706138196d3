"""Capture mode's credentials: masked in the flow from its first hook on, the real ones on the wire (HTTP/1's
request head and HTTP/2's header list, the two places mitmproxy turns a request into bytes)."""

from __future__ import annotations

import pytest
from mitmproxy import http
from mitmproxy.net.http import http1
from mitmproxy.proxy.layers.http import _events, _http2
from mitmproxy.test import taddons, tflow

from addon.runtime import credentials

GOOGLE, OPENAI, ANTHROPIC = "AIzaSyREALGOOGLEKEY0123456", "sk-proj-REALOPENAIKEY0123456", "sk-ant-REALANTHROPIC012345"


@pytest.fixture
def mask():
    addon = credentials.CredentialMask()
    with taddons.context(addon):
        addon.running()
        yield addon
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
    assert flow.request.headers["authorization"] == "Bearer sk-p…56" and flow.request.headers["x-api-key"] == "sk-a…45"
    assert flow.request.query["key"] == "AIza…56"
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
    assert second.request.headers["x-api-key"] == "sk-a…45~2"
    assert b"sk-aOTHERKEY999999999945" in http1.assemble_request_head(second.request)
    assert ANTHROPIC.encode() in http1.assemble_request_head(first.request)


def test_uninstalled_after_done():
    original = http1.assemble_request_head
    addon = credentials.CredentialMask()
    addon.running()
    assert http1.assemble_request_head is not original
    addon.done()
    assert http1.assemble_request_head is original


@pytest.mark.parametrize(
    "secret, shown",
    [("Bearer sk-proj-abcdefgh12345", "Bearer sk-p…45"), ("short", "…"), ("AIzaSy0123456789", "AIza…89")],
)
def test_mask(secret, shown):
    assert credentials.mask(secret) == shown
