"""Status lines the proxy sends, end to end with PROXY_API_KEY set: a native answer turned into an error is a
`502 Bad Gateway` (not `502 OK`), and a browser's own /favicon.ico request is a 204 that nothing calls a failure.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import io

from tests.conftest import ProxyProcess, free_port, start_proxy
from tests.fake_gemini import FakeGemini
from tests.fake_gemini_native import FakeNativeGemini, Reply

pytestmark = pytest.mark.e2e

PROXY_KEY = "proxy-key-status-lines-123"


@pytest.fixture(scope="module")
def keyed(fake_gemini: FakeGemini, native: FakeNativeGemini, tmp_path_factory) -> Iterator[tuple[ProxyProcess, Path]]:
    workdir = tmp_path_factory.mktemp("status-lines")
    port, saved = free_port(), workdir / "flows.mitm"
    config = {
        "provider": {
            "local": {
                "options": {
                    "baseURL": f"http://127.0.0.1:{port}/v1",
                    "proxy": {"models": {"native-25": "gemini/gemini-2.5-flash"}},
                },
                "models": {"native-25": {}},
            },
            "google": {
                "options": {"baseURL": native.gemini_base, "apiKey": native.key, "proxy": {"api": "gemini"}},
                "models": {},
            },
        }
    }
    proxy = start_proxy(
        fake_gemini, workdir, "-w", str(saved), port=port, config=config, env={"PROXY_API_KEY": PROXY_KEY}
    )
    yield proxy, saved
    proxy.stop()


def send(proxy: ProxyProcess, method: str, path: str, body: dict | None = None, **headers: str):
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
    payload = json.dumps(body).encode() if body is not None else None
    connection.request(method, path, payload, {"content-type": "application/json", **headers})
    response = connection.getresponse()
    return response, response.read()


def test_a_native_malformed_function_call_is_502_bad_gateway(keyed, native):
    proxy, _ = keyed
    native.script(Reply(text="", thought=None, finish="MALFORMED_FUNCTION_CALL"))
    body = {"model": "native-25", "messages": [{"role": "user", "content": "x"}]}
    response, content = send(proxy, "POST", "/v1/chat/completions", body, authorization=f"Bearer {PROXY_KEY}")
    assert (response.status, response.reason) == (502, "Bad Gateway"), content
    assert "MALFORMED_FUNCTION_CALL" in json.loads(content)["error"]["message"]


def test_the_proxys_own_answers_have_their_phrases(keyed):
    proxy, _ = keyed
    response, _ = send(proxy, "POST", "/v1/chat/completions", {"model": "native-25", "messages": []})
    assert (response.status, response.reason) == (401, "Unauthorized")
    response, _ = send(proxy, "GET", "/_proxy/nothing-here", authorization=f"Bearer {PROXY_KEY}")
    assert (response.status, response.reason) == (404, "Not Found")


def test_the_browsers_favicon_request_is_no_failure(keyed):
    """Opening the session page: the browser asks for /favicon.ico with neither key nor cookie."""
    proxy, saved = keyed
    mark = proxy.log_size()
    response, content = send(proxy, "GET", "/favicon.ico", accept="image/avif,image/webp,*/*")
    assert (response.status, response.reason, content) == (204, "No Content", b"")
    send(proxy, "GET", "/health")  # a flow after it: the favicon's log lines are out by its end
    log = proxy.log_text(mark)
    assert "/favicon.ico" in log and "refused" not in log and "401" not in log, log
    proxy.stop()
    with saved.open("rb") as f:
        favicons = [flow for flow in io.FlowReader(f).stream() if flow.request.path == "/favicon.ico"]
    assert [(flow.response.status_code, flow.marked, flow.comment) for flow in favicons] == [(204, "", "")]
