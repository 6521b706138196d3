"""CORS: the origins option, preflights answered or refused, and the headers added to responses."""

from __future__ import annotations

import json

import pytest
from mitmproxy import exceptions, http
from mitmproxy.test import taddons, tflow

from addon.request.cors import Cors, parse_origins

APP = "https://app.example.com"


def preflight(origin: str = APP, requested: str = "authorization, content-type, x-stainless-os"):
    flow = tflow.tflow()
    flow.request.method = "OPTIONS"
    flow.request.path = "/v1/chat/completions"
    flow.request.headers.update(
        {"origin": origin, "access-control-request-method": "POST", "access-control-request-headers": requested}
    )
    return flow


def test_parse_origins():
    assert parse_origins("") is None and parse_origins(" , ") is None
    allowed = parse_origins("https://App.example.com/, http://localhost:5173")
    assert allowed.allows(APP) and allowed.allows("http://localhost:5173")
    assert not allowed.allows("https://evil.example.com") and not allowed.allows("")
    assert parse_origins("*").allows("https://anything.test")


@pytest.mark.parametrize("text", ["app.example.com", "https://app.example.com/path", "https://", "http://a b"])
def test_bad_origins_are_refused_by_name(text):
    with pytest.raises(ValueError, match="not an origin"):
        parse_origins(text)
    addon = Cors()
    with taddons.context(addon) as tctx, pytest.raises(exceptions.OptionsError, match="translate_cors_origins"):
        tctx.configure(addon, translate_cors_origins=text)


def test_an_allowed_preflight_gets_204_with_what_the_browser_needs():
    addon = Cors()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, translate_cors_origins=APP)
        flow = preflight()
        addon.request(flow)
    headers = flow.response.headers
    assert flow.response.status_code == 204
    assert headers["access-control-allow-origin"] == APP and headers["vary"] == "Origin"
    assert set(headers["access-control-allow-methods"].split(", ")) >= {"GET", "POST"}
    allowed = headers["access-control-allow-headers"].split(", ")
    assert {"authorization", "content-type", "x-session-id", "x-stainless-os"} <= set(allowed)


def test_a_preflight_from_another_origin_gets_403():
    addon = Cors()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, translate_cors_origins=APP)
        flow = preflight(origin="https://evil.example.com")
        addon.request(flow)
    assert flow.response.status_code == 403 and "access-control-allow-origin" not in flow.response.headers
    assert json.loads(flow.response.content)["error"]["code"] == "origin_not_allowed"


def test_off_by_default_a_preflight_gets_a_clear_405():
    addon = Cors()
    with taddons.context(addon):
        flow = preflight()
        addon.request(flow)
    assert flow.response.status_code == 405 and "access-control-allow-origin" not in flow.response.headers
    assert "translate_cors_origins" in json.loads(flow.response.content)["error"]["message"]


def test_plain_options_and_other_methods_are_left_to_routing():
    addon = Cors()
    with taddons.context(addon):
        flow = preflight()
        del flow.request.headers["access-control-request-method"]
        addon.request(flow)
        assert flow.response is None


def test_responses_to_an_allowed_origin_carry_cors_headers():
    addon = Cors()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, translate_cors_origins="*")
        flow = tflow.tflow(resp=True)
        flow.request.headers["origin"] = APP
        flow.response.headers["vary"] = "Accept-Encoding"
        addon.responseheaders(flow)
        addon.response(flow)
        assert flow.response.headers["access-control-allow-origin"] == APP
        assert flow.response.headers["vary"] == "Accept-Encoding, Origin"
        no_origin = tflow.tflow(resp=True)
        addon.responseheaders(no_origin)
        assert "access-control-allow-origin" not in no_origin.response.headers
        tctx.configure(addon, translate_cors_origins="")
        flow.response = http.Response.make(200)
        addon.responseheaders(flow)
        assert "access-control-allow-origin" not in flow.response.headers
