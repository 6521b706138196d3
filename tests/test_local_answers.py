"""addon/request/local_answers.py: the proxy's own answers name the proxy, and the proxy key is checked exactly."""

import json

from mitmproxy.test import tflow

from addon.formats.exchange import Exchange
from addon.request.local_answers import answered_here, client_authorized, error_response


def test_an_error_is_openai_shaped_recorded_and_names_the_proxy():
    flow = tflow.tflow()
    flow.client_conn.sockname = ("127.0.0.1", 8000)
    flow.request.url = "https://generativelanguage.googleapis.com/v1/chat/completions"
    error_response(flow, 413, "Too big.", "request_too_large")
    assert flow.response.status_code == 413
    assert json.loads(flow.response.content)["error"] == {
        "message": "Too big.",
        "type": "invalid_request_error",
        "code": "request_too_large",
    }
    assert Exchange.of(flow).error == "Too big."
    assert flow.request.pretty_url == "http://127.0.0.1:8000/v1/chat/completions"


def test_answered_here_leaves_a_flow_without_a_listen_address_alone():
    flow = tflow.tflow()
    flow.client_conn.sockname = ("", 0)
    before = flow.request.pretty_url
    answered_here(flow)
    assert flow.request.pretty_url == before


def test_the_proxy_key_must_match_exactly():
    flow = tflow.tflow()
    flow.request.headers["authorization"] = "Bearer sekrit"
    assert client_authorized(flow, "sekrit")
    assert not client_authorized(flow, "sekrit2") and not client_authorized(flow, "sekri")
    del flow.request.headers["authorization"]
    assert not client_authorized(flow, "sekrit")
