"""TLS and HTTP/2 clients get what plain HTTP/1.1 clients get: in reverse mode mitmproxy also accepts TLS clients
(and offers them HTTP/2), and every byte the proxy adds (a stream's last error event, a retried empty answer, an
error page) goes out through mitmproxy's layers, so TLS and HTTP/2 framing apply to it.

The real proxy (mitm_run.sh) in front of the fake Gemini; clients are httpx over https://127.0.0.1:PORT with
verification off (mitmproxy makes the certificate), HTTP/1.1 and HTTP/2. A `-s` script reports whether the data
path's functions are mitmproxy's and asyncio's own after start-up.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import SPEED_ENV, ProxyProcess, start_proxy

pytestmark = pytest.mark.e2e

IDLE = 2


@pytest.fixture(scope="module")
def tls_proxy(fake_gemini, tmp_path_factory) -> Iterator[ProxyProcess]:
    proxy = start_proxy(
        fake_gemini,
        tmp_path_factory.mktemp("tls"),
        "--set",
        f"translate_idle_timeout={IDLE}",
        "--set",
        "translate_retry_empty_answer=true",
    )
    yield proxy
    proxy.stop()


class OffersH2Only(ssl.SSLContext):
    """httpcore offers ["http/1.1", "h2"] and mitmproxy takes the client's first choice: an HTTP/2 client offers h2."""

    def set_alpn_protocols(self, alpn_protocols) -> None:
        super().set_alpn_protocols(["h2"])


def tls_context(http2: bool) -> ssl.SSLContext:
    context = OffersH2Only(ssl.PROTOCOL_TLS_CLIENT) if http2 else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # mitmproxy makes the certificate
    return context


def chat(proxy: ProxyProcess, text: str, http2: bool = False) -> tuple[httpx.Response, bytes]:
    """A streamed chat request over TLS; the response and the whole body as the client read it."""
    with httpx.Client(verify=tls_context(http2), http2=http2, timeout=30, trust_env=False) as client:
        body = {"model": "local-model", "stream": True, "messages": [{"role": "user", "content": text}]}
        with client.stream("POST", f"https://127.0.0.1:{proxy.port}/v1/chat/completions", json=body) as response:
            return response, response.read()


def events(raw: bytes) -> list[dict | str]:
    found: list[dict | str] = []
    for line in raw.split(b"\n"):
        if line.startswith(b"data: "):
            data = line[6:].decode()
            found.append(data if data == "[DONE]" else json.loads(data))
    return found


def text_of(found: list[dict | str]) -> str:
    return "".join(
        (e["choices"][0]["delta"].get("content") or "") for e in found if isinstance(e, dict) and e.get("choices")
    )


@pytest.mark.parametrize("http2", [False, True], ids=["tls-http1.1", "tls-http2"])
def test_a_whole_stream_arrives_over_tls(tls_proxy, fake, http2):
    response, raw = chat(tls_proxy, "count [chunks:5:10]", http2)
    assert response.status_code == 200 and response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    found = events(raw)
    assert text_of(found) == "".join(f"chunk {i} " for i in range(5)) and found[-1] == "[DONE]"


@pytest.mark.parametrize("http2", [False, True], ids=["tls-http1.1", "tls-http2"])
def test_an_upstream_that_drops_mid_stream_ends_the_tls_clients_stream_with_the_error_event(tls_proxy, fake, http2):
    response, raw = chat(tls_proxy, "cut me [cut]", http2)
    found = events(raw)
    assert response.status_code == 200 and "Hello from fake" in text_of(found)
    error = found[-1]["error"]
    assert error["code"] == "upstream_unreachable" and error["type"] == "api_error" and "[DONE]" not in found


@pytest.mark.parametrize("http2", [False, True], ids=["tls-http1.1", "tls-http2"])
def test_a_stalled_stream_ends_the_tls_clients_stream_with_the_timeout_event(tls_proxy, fake, http2):
    response, raw = chat(tls_proxy, "tell me [stall:10]", http2)
    found = events(raw)
    assert response.status_code == 200 and "Hello from fake" in text_of(found)
    error = found[-1]["error"]
    assert error["code"] == "upstream_timeout" and "translate_idle_timeout" in error["message"]
    fake.wait_event("disconnect", timeout=5)  # the upstream was closed, not left generating


@pytest.mark.parametrize("http2", [False, True], ids=["tls-http1.1", "tls-http2"])
def test_an_empty_answer_asked_again_reaches_the_tls_client_whole(tls_proxy, fake, http2):
    response, raw = chat(tls_proxy, f"[empty:1] again {http2}", http2)
    found = events(raw)
    assert response.status_code == 200 and found[-1] == "[DONE]"
    assert text_of(found) == f"Hello from fake Gemini. You said: [empty:1] again {http2}"
    assert len(fake.chat_requests()) == 2  # the empty answer, then the one the client got


DATA_PATH = """
import asyncio

from mitmproxy.proxy import server
from mitmproxy.proxy.layers.http import _http1

OWN = {
    "Http1Client._handle_event": lambda: "_handle_event" not in vars(_http1.Http1Client),
    "ConnectionHandler.handle_connection": lambda h=server.ConnectionHandler.handle_connection: (
        server.ConnectionHandler.handle_connection is h
    ),
    "StreamReaderProtocol.data_received": lambda f=asyncio.StreamReaderProtocol.data_received: (
        asyncio.StreamReaderProtocol.data_received is f
    ),
}


class DataPathCheck:
    def response(self, flow):
        replaced = sorted(name for name, own in OWN.items() if not own())
        print("data path replaced: " + (", ".join(replaced) or "nothing"), flush=True)


addons = [DataPathCheck()]
"""


@pytest.mark.parametrize("speed", [False, True], ids=["default", "speed-patches"])
def test_the_data_path_is_mitmproxys_and_asyncios_own_unless_the_speed_patches_are_on(fake, tmp_path, speed):
    if os.environ.get(SPEED_ENV) == "1":
        pytest.skip("this test sets both modes itself: it runs in the default pass")
    script = tmp_path / "data_path.py"
    script.write_text(DATA_PATH)
    proxy = start_proxy(fake, tmp_path, "--set", f"translate_speed_patches={str(speed).lower()}", "-s", str(script))
    try:
        response, raw = chat(proxy, "count [chunks:3:5]")
        assert response.status_code == 200 and events(raw)[-1] == "[DONE]"
    finally:
        proxy.stop()
    lines = [line for line in proxy.log_text().splitlines() if line.startswith("data path replaced: ")]
    assert lines, proxy.log_text()[-3000:]
    if speed:
        assert lines[-1] == ("data path replaced: ConnectionHandler.handle_connection, Http1Client._handle_event"), (
            proxy.log_text()[-3000:]
        )
    else:
        assert lines[-1] == "data path replaced: nothing", proxy.log_text()[-3000:]
