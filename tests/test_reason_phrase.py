"""addon/runtime/reason_phrase.py: a status the proxy changed gets its own reason phrase."""

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow

from addon.runtime.reason_phrase import ReasonPhrase


@pytest.mark.parametrize(
    "status, reason, sent",
    [
        (502, "OK", "Bad Gateway"),  # a native answer turned into an error after the upstream's 200 OK
        (400, "OK", "Bad Request"),
        (503, "", "Service Unavailable"),  # none at all (an HTTP/2 upstream has none)
        (200, "Bad Gateway", "OK"),
        (429, "Too Many Requests", "Too Many Requests"),  # right already
        (200, "Success", "Success"),  # the upstream's own wording, for the status it sent
        (599, "OK", "OK"),  # a status with no standard phrase: nothing better to say
    ],
)
@pytest.mark.parametrize("hook", ["responseheaders", "response"])
def test_the_status_gets_its_own_phrase(status, reason, sent, hook):
    addon = ReasonPhrase()
    with taddons.context(addon):
        flow = tflow.tflow(resp=True)
        flow.response.status_code, flow.response.reason = status, reason
        getattr(addon, hook)(flow)
    assert flow.response.reason == sent


def test_a_flow_read_from_a_file_is_left_as_it_was_saved():
    flow = tflow.tflow(resp=True)
    flow.live = False
    flow.response = http.Response.make(200)
    flow.response.status_code = 502
    ReasonPhrase().response(flow)
    assert flow.response.reason == "OK"
