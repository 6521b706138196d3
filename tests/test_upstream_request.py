"""addon/request/upstream_request.py: the client's credentials never go upstream, the key only masked in the flow."""

from mitmproxy.test import tflow

from addon.config import resolution
from addon.request.upstream_request import DROPPED_HEADERS, parsed_url, point_at

KEY = "AIzaSy-the-real-key-1234"


def test_point_at_drops_credentials_adds_the_targets_headers_and_masks_the_key():
    flow = tflow.tflow()
    for name in ("Authorization", "X-Api-Key", "Forwarded", "X-Forwarded-For", "proxy-authorization"):
        flow.request.headers[name] = "client-secret"
    flow.request.headers["x-session-affinity"] = "ses_1"
    point_at(flow, "https://gateway.test/v1beta/openai/", "chat/completions", KEY, {"x-team": "a"})
    assert flow.request.url == "https://gateway.test/v1beta/openai/chat/completions"
    assert "client-secret" not in str(flow.request.headers)
    assert flow.request.headers["x-session-affinity"] == "ses_1"  # client-side headers still go upstream
    assert flow.request.headers["x-team"] == "a"
    assert flow.request.headers["authorization"] == f"Bearer {resolution.mask_key(KEY)}"
    assert KEY.encode() in bytes(flow.request.headers)  # the real key: only in the bytes on the wire


def test_no_key_sends_no_authorization():
    flow = tflow.tflow()
    flow.request.headers["authorization"] = "Bearer client"
    point_at(flow, "http://local.test:8080", "v1/embeddings", None, {})
    assert "authorization" not in flow.request.headers and flow.request.port == 8080


def test_parsed_url_is_cached_per_address_and_the_dropped_names_are_lowercase():
    assert parsed_url("https://a.test/x") is parsed_url("https://a.test/x")
    assert all(name == name.lower() for name in DROPPED_HEADERS)
