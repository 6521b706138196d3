"""`./mitm_run.sh capture --map-remote "|https://generativelanguage.googleapis.com|http://127.0.0.1:PORT"`, and no
other option: a client using the capture proxy as its HTTPS proxy reaches the stand-in the rule names (capture mode
connects lazily by itself), and the exchange is read as Gemini's, with its tool call and its arguments in the log.

A host that takes the connection and never answers (a gateway's real host behind a firewall, here a local socket
that accepts and stays silent) is mapped too: an eager proxy would dial it on CONNECT and the client would wait.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ProxyProcess, start_capture
from tests.fake_gemini_native import KEY, Reply

pytestmark = pytest.mark.e2e

GOOGLE = "https://generativelanguage.googleapis.com"


@pytest.fixture(scope="module")
def silent_host() -> Iterator[str]:
    """https://127.0.0.1:PORT, where a socket accepts connections and never says a word."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as server:
        yield f"https://127.0.0.1:{server.getsockname()[1]}"


@pytest.fixture(scope="module")
def capture(native, silent_host, tmp_path_factory) -> Iterator[tuple[ProxyProcess, Path]]:
    work = tmp_path_factory.mktemp("capture-map-remote")
    confdir = work / "confdir"
    args = ["--set", f"confdir={confdir}", "--map-remote", f"|{GOOGLE}|{native.root_url}"]
    args += ["--map-remote", f"|{silent_host}|{native.root_url}"]
    proxy = start_capture(work, args)
    try:
        yield proxy, confdir / "mitmproxy-ca-cert.pem"
    finally:
        proxy.stop()


def ask(proxy: ProxyProcess, ca: Path, host: str) -> httpx.Response:
    body = {"contents": [{"role": "user", "parts": [{"text": "Read /tmp/notes.txt"}]}]}
    context = ssl.create_default_context(cafile=ca)
    with httpx.Client(proxy=f"http://127.0.0.1:{proxy.port}", verify=context, timeout=20, trust_env=False) as client:
        return client.post(
            f"{host}/v1beta/models/gemini-2.5-flash:generateContent", json=body, headers={"x-goog-api-key": KEY}
        )


def test_a_host_that_never_answers_is_not_dialled(capture, native, silent_host):
    proxy, ca = capture
    native.reset().script(Reply(text="Mapped.", thought=None))
    answer = ask(proxy, ca, silent_host)
    assert answer.status_code == 200, answer.text
    assert "".join(part["text"] for part in answer.json()["candidates"][0]["content"]["parts"]) == "Mapped."


def test_a_client_reaches_the_stand_in_through_map_remote_alone(capture, native):
    proxy, ca = capture
    native.reset().script(Reply(text="", thought=None, calls=[("read", {"filePath": "/tmp/notes.txt"})]))
    mark = proxy.log_size()
    answer = ask(proxy, ca, GOOGLE)
    assert answer.status_code == 200, answer.text
    call = answer.json()["candidates"][0]["content"]["parts"][0]["functionCall"]
    assert call == {"name": "read", "args": {"filePath": "/tmp/notes.txt"}}
    assert [r["model"] for r in native.requests] == ["gemini-2.5-flash"]
    deadline = time.monotonic() + 10
    while "tool call read (" not in proxy.log_text(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    log = proxy.log_text(mark)
    assert "turn 1 of s:" in log and "generateContent" in log, log
    line = next(line for line in log.splitlines() if "tool call read (" in line)
    assert json.loads(line.split("): ", 1)[1]) == {"filePath": "/tmp/notes.txt"}
    assert "Cannot connect" not in log
