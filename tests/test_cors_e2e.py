"""End to end: a browser's CORS preflight and requests, with translate_cors_origins set and with it off."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ProxyProcess

pytestmark = pytest.mark.e2e

APP = "https://app.example.com"
PREFLIGHT = {
    "origin": APP,
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization, content-type, x-session-id",
}
CHAT = {"model": "local-model", "messages": [{"role": "user", "content": "hi"}]}


def test_a_browser_origin_is_served_when_allowed(proxy_factory, fake):
    proxy: ProxyProcess = proxy_factory("--set", f"translate_cors_origins={APP}", env={"PROXY_API_KEY": "sekrit"})
    url = f"{proxy.base_url}/chat/completions"
    preflight = httpx.options(url, headers=PREFLIGHT)  # no key: browsers send none with a preflight
    assert preflight.status_code == 204, preflight.text
    assert preflight.headers["access-control-allow-origin"] == APP
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    assert "x-session-id" in preflight.headers["access-control-allow-headers"]
    auth = {"origin": APP, "authorization": "Bearer sekrit"}
    answer = httpx.post(url, json=CHAT, headers=auth, timeout=30)
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == APP
    with httpx.stream("POST", url, json={**CHAT, "stream": True}, headers=auth, timeout=30) as streamed:
        assert streamed.headers["access-control-allow-origin"] == APP
        assert "[DONE]" in streamed.read().decode()
    refused = httpx.post(url, json=CHAT, headers={"origin": APP}, timeout=30)  # the proxy's own 401 too
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == APP
    other = httpx.options(url, headers={**PREFLIGHT, "origin": "https://evil.example.com"})
    assert other.status_code == 403 and "access-control-allow-origin" not in other.headers


def test_without_the_option_a_preflight_gets_405_everywhere(proxy, fake):
    for path in ("/chat/completions", "/models"):
        response = httpx.options(proxy.base_url + path, headers=PREFLIGHT)
        assert response.status_code == 405, (path, response.text)
        assert "translate_cors_origins" in response.json()["error"]["message"]
        assert "access-control-allow-origin" not in response.headers
    assert fake.requests == []
