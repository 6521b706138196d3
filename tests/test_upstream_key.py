"""The real key goes only into the bytes written upstream; every other view of the flow sees the masked one."""

from mitmproxy import http
from mitmproxy.io import tnetstring
from mitmproxy.net.http import http1
from mitmproxy.test import tflow

from addon.runtime import upstream_key
from addon.runtime.upstream_key import KeyedHeaders, attach_key, detach_key

KEY = "AIzaSyREALKEY-0123456789abcdef"


def test_wire_bytes_carry_the_real_key_and_views_the_masked_one():
    flow = tflow.tflow()
    attach_key(flow.request, KEY, "AIza…ef")
    flow.request.headers["accept-encoding"] = "identity"  # later edits keep working
    wire = http1.assemble_request_head(flow.request)
    assert b"authorization: Bearer " + KEY.encode() in wire and b"accept-encoding: identity" in wire
    assert flow.request.headers["authorization"] == "Bearer AIza…ef"
    assert KEY.encode() not in tnetstring.dumps(flow.get_state())
    assert KEY not in repr(flow.request.headers) and KEY not in str(dict(flow.request.headers.items(True)))


def test_detach_leaves_plain_masked_headers():
    flow = tflow.tflow()
    attach_key(flow.request, KEY, "AIza…ef")
    detach_key(flow.request)
    assert type(flow.request.headers) is http.Headers
    assert KEY.encode() not in http1.assemble_request_head(flow.request)


def test_copies_of_the_flow_never_hold_the_key():
    flow = tflow.tflow()
    attach_key(flow.request, KEY, "AIza…ef")
    assert KEY.encode() not in http1.assemble_request_head(flow.copy().request)
    assert isinstance(flow.request.headers, KeyedHeaders)


def test_the_start_up_probe_finds_a_mitmproxy_that_would_store_the_wire_bytes(monkeypatch):
    get_state = next(i for i in upstream_key.PATCH.internals if i.attr == "get_state")
    assert get_state.problem(None) is None
    monkeypatch.setattr(http.Request, "get_state", lambda self: {"head": http1.assemble_request_head(self)})
    assert get_state.problem(None) == "keeps the real key in the flow's state (saved flows, mitmweb)"
