"""End to end: SIGTERM to the real mitmdump (-w FILE) while answers are in flight.

Streams that finish within translate_shutdown_grace finish whole; the others end with an SSE error event; a request
that arrives meanwhile gets a 503; the -w file is complete and reads back with mitmproxy's FlowReader.
"""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from mitmproxy import io

from tests.conftest import ProxyProcess

pytestmark = pytest.mark.e2e


def chat_body(text: str, stream: bool = True) -> bytes:
    return json.dumps(
        {"model": "local-model", "stream": stream, "messages": [{"role": "user", "content": text}]}
    ).encode()


class Call(threading.Thread):
    """One chat request in its own thread: status, body, and when the last byte came (or the error).

    `started` is set once the headers came, `first_line` once the first line of the body did (a stream's first
    event is on its way to the client)."""

    def __init__(self, proxy: ProxyProcess, text: str, stream: bool = True) -> None:
        super().__init__(daemon=True)
        self.proxy, self.body = proxy, chat_body(text, stream)
        self.status: int | None = None
        self.data = b""
        self.error: Exception | None = None
        self.started = threading.Event()
        self.first_line = threading.Event()
        self.start()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.proxy.port, timeout=30)
        try:
            conn.request("POST", "/v1/chat/completions", self.body, {"content-type": "application/json"})
            response = conn.getresponse()
            self.status = response.status
            self.started.set()
            self.data = response.readline()
            self.first_line.set()
            self.data += response.read()
        except Exception as e:  # the test asserts on it
            self.error = e
        finally:
            self.started.set()
            self.first_line.set()
            conn.close()

    def events(self) -> list[bytes]:
        return [line[6:] for line in self.data.split(b"\n") if line.startswith(b"data: ")]


def wait_until(condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    """Poll `condition` until it holds; fail naming `what` when it does not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.02)


def waiting_logged(proxy: ProxyProcess) -> bool:
    """The proxy has begun its grace: requests from now on get a 503, a second signal stops the wait."""
    return "SIGTERM or Ctrl-C again stops at once" in proxy.log_text()


def terminate(proxy: ProxyProcess) -> float:
    """SIGTERM; the seconds until the process exited (it must exit with 0)."""
    sent = time.monotonic()
    proxy.process.send_signal(signal.SIGTERM)
    assert proxy.process.wait(30) == 0, proxy.log_text()[-3000:]
    return time.monotonic() - sent


def read_chats(path: Path) -> dict:
    """The chat flows in a -w file, by their user message."""
    with path.open("rb") as f:
        flows = [f for f in io.FlowReader(f).stream() if f.request.path.endswith("/chat/completions")]
    return {json.loads(f.request.content)["messages"][0]["content"]: f for f in flows}


def test_streams_finish_within_the_grace_and_the_rest_end_with_an_error_event(proxy_factory, tmp_path):
    saved = tmp_path / "flows.mitm"
    proxy = proxy_factory("-w", str(saved), "--set", "translate_shutdown_grace=2")
    quick = Call(proxy, "quick [chunks:5:200]")  # done after ~1 s: within the grace
    slow = Call(proxy, "slow [chunks:40:250]")  # would need 10 s
    assert quick.first_line.wait(10) and slow.first_line.wait(10)  # both streams are under way
    took = terminate(proxy)
    quick.join(10), slow.join(10)

    assert quick.error is None and quick.events()[-1] == b"[DONE]"
    assert slow.error is None and slow.status == 200, slow.error
    events = slow.events()
    assert b"[DONE]" not in events and len(events) >= 3  # it got part of the answer, then the error
    error = json.loads(events[-1])["error"]
    assert "stopped while this answer was in flight" in error["message"]
    assert 2 <= took < 8

    flows = read_chats(saved)
    assert set(flows) == {"quick [chunks:5:200]", "slow [chunks:40:250]"}
    assert flows["quick [chunks:5:200]"].response.content.rstrip().endswith(b"data: [DONE]")
    cut = flows["slow [chunks:40:250]"]
    assert cut.error is not None and cut.metadata["llm"]["shutdown"] is True
    assert cut.response.content.endswith(events[-1] + b"\n\n")  # the stored body is what the client got
    assert cut.metadata["llm"]["answer"]["content"].startswith("chunk 0 chunk 1 ")


def test_a_request_waiting_for_its_answer_gets_an_error_and_new_requests_a_503(proxy_factory, fake, tmp_path):
    saved = tmp_path / "flows.mitm"
    proxy = proxy_factory("-w", str(saved), "--set", "translate_shutdown_grace=2")
    waiting = Call(proxy, "think [slow:20]", stream=False)
    wait_until(lambda: fake.chat_requests(), "the request reaching the upstream")
    proxy.process.send_signal(signal.SIGTERM)
    wait_until(lambda: waiting_logged(proxy), "the proxy's 'waiting up to 2 s' line")
    late = Call(proxy, "too late", stream=False)
    late.join(10)
    assert late.status == 503 and json.loads(late.data)["error"]["code"] == "proxy_shutting_down"
    assert proxy.process.wait(30) == 0
    waiting.join(10)
    assert waiting.status == 503 and json.loads(waiting.data)["error"]["code"] == "proxy_shutting_down"
    assert "stopped while this answer was in flight" in json.loads(waiting.data)["error"]["message"]
    flows = read_chats(saved)
    assert set(flows) == {"think [slow:20]", "too late"}
    assert flows["think [slow:20]"].error is not None and flows["too late"].response.status_code == 503


def test_an_idle_proxy_stops_at_once(proxy_factory):
    proxy = proxy_factory("--set", "translate_shutdown_grace=30")
    assert terminate(proxy) < 10  # not the 30 s of grace (the interpreter's own exit takes 1-3 s)


def test_a_second_signal_stops_the_wait(proxy_factory):
    proxy = proxy_factory("--set", "translate_shutdown_grace=30")
    slow = Call(proxy, "slow [chunks:100:200]")
    assert slow.first_line.wait(10)
    sent = time.monotonic()
    proxy.process.send_signal(signal.SIGTERM)
    wait_until(lambda: waiting_logged(proxy), "the proxy's 'waiting up to 30 s' line")
    proxy.process.send_signal(signal.SIGINT)
    assert proxy.process.wait(30) == 0
    assert time.monotonic() - sent < 10
    slow.join(10)
    assert json.loads(slow.events()[-1])["error"]


def test_mitmweb_stops_the_same_way(proxy_factory, tmp_path):
    saved = tmp_path / "flows.mitm"
    proxy = proxy_factory("-w", str(saved), "--set", "translate_shutdown_grace=1", web=True)
    slow = Call(proxy, "slow [chunks:40:250]")
    assert slow.first_line.wait(10)
    assert terminate(proxy) < 10
    slow.join(10)
    assert "stopped while this answer was in flight" in json.loads(slow.events()[-1])["error"]["message"]
    assert read_chats(saved)["slow [chunks:40:250]"].metadata["llm"]["shutdown"] is True
