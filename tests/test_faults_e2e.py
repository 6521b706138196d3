"""End to end: an upstream that misbehaves (slow, stalled, cut, refusing) and a client that leaves.

One proxy for the module, with short timeouts so each fault shows within seconds. Each test drives the real
mitmdump process over HTTP and reads the fake's record of what happened on its side.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import time
from collections.abc import Iterator

import pytest

from tests.conftest import ProxyProcess, free_port, opencode_config, start_proxy
from tests.support import extra_provider

pytestmark = pytest.mark.e2e

CONNECT, READ, IDLE = 2, 3, 2


@pytest.fixture(scope="module")
def black_hole() -> Iterator[int]:
    """A loopback port that never completes a TCP handshake: its accept queue is full and never drained."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        sock = socket.socket()
        sock.setblocking(False)
        try:
            sock.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(sock)
    connected = select.select([], fillers, [], 5)[1]  # one handshake done fills the queue; the rest never finish
    assert connected, "no filler connection completed: the black hole is not full"
    yield port
    for sock in fillers + [server]:
        sock.close()


@pytest.fixture(scope="module")
def faulty_proxy(fake_gemini, black_hole, tmp_path_factory) -> Iterator[ProxyProcess]:
    workdir = tmp_path_factory.mktemp("faults")
    port = free_port()
    config = opencode_config(port)
    extra_provider(
        config, "hole", "Never answers", f"http://127.0.0.1:{black_hole}/v1", {"hole-model": "gemini-2.5-flash"}
    )
    proxy = start_proxy(
        fake_gemini,
        workdir,
        "--set",
        f"translate_connect_timeout={CONNECT}",
        "--set",
        f"translate_read_timeout={READ}",
        "--set",
        f"translate_idle_timeout={IDLE}",
        port=port,
        config=config,
    )
    yield proxy
    proxy.stop()


def chat_body(text: str, stream: bool = False, model: str = "local-model") -> bytes:
    return json.dumps({"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}).encode()


def post(proxy: ProxyProcess, body: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes, float]:
    """POST a chat request; status, headers, the whole body, and the seconds it took."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)
    try:
        conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        return response.status, dict(response.headers), data, time.monotonic() - started
    finally:
        conn.close()


def wait_log(proxy: ProxyProcess, since: int, text: str, timeout: float = 5.0) -> None:
    """The proxy logs a finished flow right after the client got its last byte: give it a moment."""
    deadline = time.monotonic() + timeout
    while text not in proxy.log_text(since):
        assert time.monotonic() < deadline, f"{text!r} not in the log: {proxy.log_text(since)[-3000:]}"
        time.sleep(0.05)


def sse_data(raw: bytes) -> list[bytes]:
    return [line[6:] for line in raw.split(b"\n") if line.startswith(b"data: ")]


def last_error_event(raw: bytes) -> dict:
    events = sse_data(raw)
    assert events, f"no SSE events in {raw[:500]!r}"
    return json.loads(events[-1])["error"]


def test_connect_timeout_gives_504(faulty_proxy):
    status, _, raw, took = post(faulty_proxy, chat_body("hi", model="hole/hole-model"))
    error = json.loads(raw)["error"]
    assert status == 504 and error["code"] == "upstream_timeout" and error["type"] == "timeout_error"
    assert "translate_connect_timeout" in error["message"]
    assert CONNECT <= took < CONNECT + 5


@pytest.mark.parametrize("stream", [False, True])
def test_read_timeout_gives_504(faulty_proxy, fake, stream):
    mark = faulty_proxy.log_size()
    status, _, raw, took = post(faulty_proxy, chat_body("[slow:8]", stream=stream))
    error = json.loads(raw)["error"]
    assert status == 504 and error["code"] == "upstream_timeout" and "translate_read_timeout" in error["message"]
    assert READ <= took < READ + 4
    wait_log(faulty_proxy, mark, "translate_read_timeout")
    fake.wait_event("disconnect", timeout=5)  # the upstream request was abandoned, not left running


def test_stalled_stream_ends_with_error_event(faulty_proxy, fake):
    mark = faulty_proxy.log_size()
    status, headers, raw, took = post(faulty_proxy, chat_body("tell me [stall:10]", stream=True))
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    assert b"Hello from fake" in raw  # what came before the stall was delivered
    error = last_error_event(raw)
    assert error["code"] == "upstream_timeout" and "translate_idle_timeout" in error["message"]
    assert IDLE <= took < IDLE + 4
    wait_log(faulty_proxy, mark, "stalled")
    fake.wait_event("disconnect", timeout=5)


def test_cut_stream_ends_at_once_with_error_event(faulty_proxy, fake):
    mark = faulty_proxy.log_size()
    status, _, raw, took = post(faulty_proxy, chat_body("cut me [cut]", stream=True))
    assert status == 200 and took < 3
    assert b"Hello from fake" in raw and b"[DONE]" not in raw
    error = last_error_event(raw)
    assert error["code"] == "upstream_unreachable" and error["type"] == "api_error"
    wait_log(faulty_proxy, mark, "local-model: HTTP/1 protocol error: peer closed connection")


def test_client_leaving_mid_stream_closes_upstream_promptly(faulty_proxy, fake):
    sock = socket.create_connection(("127.0.0.1", faulty_proxy.port))
    body = chat_body("long [chunks:60:200]", stream=True)
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    received = b""
    while received.count(b"data: ") < 3:
        received += sock.recv(65536)
    sock.close()
    left = time.time()
    event = fake.wait_event("disconnect", timeout=5)
    assert event["time"] - left < 1.5, event
    assert event["chunks_sent"] < 20  # the fake stopped long before its 60 chunks
    assert not [e for e in fake.events if e["type"] == "done"]


@pytest.mark.parametrize("code", [429, 500, 503])
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_error_status_and_headers_reach_client(faulty_proxy, fake, code, stream):
    status, headers, raw, _ = post(faulty_proxy, chat_body(f"[error:{code}]", stream=stream))
    assert status == code
    error = json.loads(raw)["error"]
    assert error["message"] and error["type"] in ("rate_limit_error", "api_error")
    if code == 429:
        assert headers.get("Retry-After") == "7"


def health(proxy: ProxyProcess) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    conn.request("GET", "/health")
    return json.loads(conn.getresponse().read())


@pytest.mark.parametrize("damage", ["delete", "truncate", "invalid"])
def test_broken_config_keeps_the_last_good_one(faulty_proxy, fake, damage):
    path = faulty_proxy.config_path
    good = path.read_text()
    mark = faulty_proxy.log_size()
    try:
        if damage == "delete":
            path.unlink()
        elif damage == "truncate":
            path.write_text(good[: len(good) // 2])
        else:
            path.write_text('{"provider": 5}')
        status, _, raw, _ = post(faulty_proxy, chat_body("still there?"))
        assert status == 200 and b"still there?" in raw
        wait_log(faulty_proxy, mark, "Keeping the last good config")
        assert health(faulty_proxy)["config_error"]
    finally:
        path.write_text(good)
    assert post(faulty_proxy, chat_body("back"))[0] == 200
    assert health(faulty_proxy)["config_error"] is None


def test_openai_sdk_reports_the_error_event(faulty_proxy):
    import openai

    client = openai.OpenAI(base_url=faulty_proxy.base_url, api_key="x", max_retries=0, timeout=30)
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(
            model="local-model", stream=True, messages=[{"role": "user", "content": "[cut]"}]
        ):
            received.append(chunk)
    assert received and "failed" in str(caught.value)
