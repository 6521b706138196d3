"""End to end: a mitmproxy whose internals differ from the ones the proxy was written for, simulated by a script
loaded with -s that changes one before the proxy's start-up check runs (in `running`, after every script loaded).

A changed error-page builder: the proxy says so at start and serves on, with mitmproxy's own error page where no
addon answers. A changed
request-head writer (the key-on-the-wire headers rely on it): the proxy refuses to start.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port, opencode_config, start_proxy
from tests.fake_gemini import FakeGemini
from tests.support import direct, extra_provider

pytestmark = pytest.mark.e2e

CHANGED_ERROR_PAGE = """
from mitmproxy.proxy.layers.http import _http1

original = _http1.make_error_response


def make_error_response(status_code, message="", note=""):
    return original(status_code, message)


_http1.make_error_response = make_error_response
"""

CHANGED_REQUEST_HEAD = """
from mitmproxy.net.http import http1

original = http1.assemble_request_head


def assemble_request_head(request, proxy_form=False):
    return original(request)


http1.assemble_request_head = assemble_request_head
"""


def post(url: str, body: dict) -> tuple[int, str, bytes]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"content-type": "application/json"}, method="POST"
    )
    status, headers, data = direct(request)
    return status, headers.get("content-type", ""), data


def test_a_changed_internal_is_named_at_start_and_the_proxy_serves_with_mitmproxys_behaviour(
    fake: FakeGemini, tmp_path: Path
):
    changer = tmp_path / "changed_error_page.py"
    changer.write_text(CHANGED_ERROR_PAGE)
    port = free_port()
    config = opencode_config(port)
    extra_provider(
        config, "dead", "dead: no answer", f"http://127.0.0.1:{free_port()}/v1", {"dead-model": "gemini-2.5-pro"}
    )
    proxy = start_proxy(fake, tmp_path, "-s", str(changer), port=port, config=config)
    try:
        log = proxy.log_text()
        assert (
            "mitmproxy internal mitmproxy.proxy.layers.http._http1.make_error_response takes (status_code, message, "
            "note), expected (status_code, message): the proxy's error page patch was written for mitmproxy 12.3.1"
        ) in log
        assert "falling back to mitmproxy's own behaviour" in log
        status, kind, body = post(
            f"{proxy.base_url}/chat/completions",
            {"model": "dead-model", "messages": [{"role": "user", "content": "x"}]},
        )
        # A routed exchange is answered by the proxy's error hook (the stream endings patch), in OpenAI's shape ...
        assert status == 502 and kind.startswith("application/json") and json.loads(body)["error"]["code"]
        # ... a request mitmproxy cannot parse gets mitmproxy's own page: the fallback of the error page patch.
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: many\r\n\r\n")
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
        assert raw.startswith(b"HTTP/1.1 400") and b"content-type: text/html" in raw.lower()
        status, kind, body = post(
            f"{proxy.base_url}/chat/completions",
            {"model": "local-model", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert status == 200 and "Hello from fake Gemini" in json.loads(body)["choices"][0]["message"]["content"]
        assert proxy.alive()
    finally:
        proxy.stop()


def test_without_a_safe_fallback_the_proxy_refuses_to_start(fake: FakeGemini, tmp_path: Path):
    changer = tmp_path / "changed_request_head.py"
    changer.write_text(CHANGED_REQUEST_HEAD)
    with pytest.raises(RuntimeError, match="exited with code 1") as refused:
        start_proxy(fake, tmp_path, "-s", str(changer), timeout=60)
    assert (
        "mitmproxy internal mitmproxy.net.http.http1.assemble_request_head takes (request, proxy_form), expected "
        "(request): the proxy's key on the wire only patch was written for mitmproxy 12.3.1"
    ) in str(refused.value)
    assert "the proxy refuses to start" in str(refused.value)
