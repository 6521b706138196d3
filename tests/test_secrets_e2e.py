"""End to end: the upstream key reaches the upstream and nothing else. The log at every verbosity, a saved flow
file (-w), and mitmweb's flow API (also while a request is in flight) show it masked at most. mitmweb keeps its
access token; the proxy key (PROXY_API_KEY) is checked and never forwarded or stored.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

from tests.conftest import ROOT, ProxyProcess, start_proxy
from tests.support import direct

pytestmark = pytest.mark.e2e

PROXY_KEY = "proxy-key-that-must-stay-secret-31337"
TOOL = {
    "type": "function",
    "function": {"name": "read", "parameters": {"type": "object", "properties": {"filePath": {"type": "string"}}}},
}


def exercise(proxy: ProxyProcess, api_key: str = "anything") -> None:
    """Every kind of exchange: plain, streamed, tool calls (gemini-3, signatures), upstream errors, cuts, passthrough."""
    client = openai.OpenAI(base_url=proxy.base_url, api_key=api_key, max_retries=0, timeout=30)
    say = lambda text: [{"role": "user", "content": text}]  # noqa: E731
    client.chat.completions.create(model="local-model", messages=say("hi"))
    list(client.chat.completions.create(model="local-3", messages=say("hi"), stream=True))
    client.chat.completions.create(model="local-3", tools=[TOOL], messages=say('[tool:read {"filePath": "a"}]'))
    list(
        client.chat.completions.create(
            model="local-3", tools=[TOOL], stream=True, messages=say('[tool:read {"filePath": "a"}]')
        )
    )
    for text in ("[error:429]", "[error:500]", "[cut]"):
        try:
            list(client.chat.completions.create(model="local-model", messages=say(text), stream=True))
        except openai.APIError:
            pass
    client.embeddings.create(model="gemini-embedding-001", input="hello")


def assert_no_key(text: bytes | str, key: str, where: str) -> None:
    data = text.encode() if isinstance(text, str) else text
    assert key.encode() not in data, f"the key appears in {where}"


@dataclass
class Dumped:
    """A proxy run at the highest verbosity with -w, every kind of exchange made, then stopped (file and log flushed)."""

    proxy: ProxyProcess
    flows: Path
    upstream: list[dict]  # what the fake upstream received


@pytest.fixture(scope="module")
def dumped(fake_gemini, tmp_path_factory) -> Iterator[Dumped]:
    workdir = tmp_path_factory.mktemp("secrets-dump")
    flows = workdir / "flows.mitm"
    proxy = start_proxy(
        fake_gemini,
        workdir,
        "-w",
        str(flows),
        "--set",
        "translate_verbosity=chunks",
        "--set",
        "termlog_verbosity=debug",
        "--set",
        "flow_detail=4",
        env={"PROXY_API_KEY": PROXY_KEY},
    )
    try:
        fake_gemini.reset()
        exercise(proxy, PROXY_KEY)
        upstream = list(fake_gemini.requests)
    finally:
        proxy.stop()  # flush the flow file and the log
    yield Dumped(proxy, flows, upstream)


def test_key_not_in_log_or_saved_flows_at_highest_verbosity(dumped, fake_gemini):
    # Every request reached the upstream with the real key (a set: an empty one fails).
    assert {r["headers"].get("Authorization") for r in dumped.upstream} == {f"Bearer {fake_gemini.key}"}
    for key in (fake_gemini.key, PROXY_KEY):
        assert_no_key(dumped.proxy.log_text(), key, "the mitmdump log (flow_detail=4, chunks, debug)")
        assert_no_key(dumped.flows.read_bytes(), key, "the saved flow file")
    assert b"Bearer test" in dumped.flows.read_bytes()  # the masked key is there: the header was kept, not dropped
    assert len(dumped.flows.read_bytes()) > 1000


def test_saved_flows_read_back_show_no_key(dumped, fake_gemini):
    shown = subprocess.run(
        [str(ROOT / ".venv/bin/mitmdump"), "-nr", str(dumped.flows), "--set", "flow_detail=4"],
        capture_output=True,
        timeout=120,
    )
    assert shown.returncode == 0 and b"chat/completions" in shown.stdout
    assert_no_key(shown.stdout + shown.stderr, fake_gemini.key, "mitmdump -nr of the saved flows")


@pytest.fixture(scope="module")
def web(fake_gemini, tmp_path_factory) -> Iterator[ProxyProcess]:
    workdir = tmp_path_factory.mktemp("secrets-web")
    proxy = start_proxy(fake_gemini, workdir, "-w", str(workdir / "web.mitm"), web=True)
    yield proxy
    proxy.stop()


def web_get(proxy: ProxyProcess, path: str, token: str | None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{proxy.web_port}{path}", headers=headers)
    status, _, data = direct(request)
    return status, data


def test_mitmweb_keeps_its_access_token(web):
    token = web.web_token()
    assert token, "mitmweb printed no token in its start-up line"
    assert web_get(web, "/flows", None)[0] == 403
    assert web_get(web, "/flows", "wrong-token")[0] == 403
    assert web_get(web, "/flows", token)[0] == 200


def test_key_not_in_mitmweb_flow_api_even_in_flight(web, fake_gemini):
    token = web.web_token()
    fake_gemini.reset()
    client = openai.OpenAI(base_url=web.base_url, api_key="anything", max_retries=0, timeout=30)
    slow = threading.Thread(
        target=lambda: client.chat.completions.create(
            model="local-model", messages=[{"role": "user", "content": "think [slow:2]"}]
        )
    )
    slow.start()
    seen_in_flight = False
    while slow.is_alive():
        status, body = web_get(web, "/flows", token)
        assert status == 200
        assert_no_key(body, fake_gemini.key, "mitmweb's /flows while the request was in flight")
        seen_in_flight |= any(
            f["request"]["path"].endswith("chat/completions") and not f.get("response") for f in json.loads(body)
        )
        time.sleep(0.1)
    slow.join()
    assert seen_in_flight
    exercise(web)
    status, body = web_get(web, "/flows", token)
    flows = json.loads(body)
    assert len(flows) >= 8
    assert_no_key(body, fake_gemini.key, "mitmweb's /flows")
    assert_no_key(web_get(web, "/flows/dump", token)[1], fake_gemini.key, "mitmweb's /flows/dump")
    for flow in flows:
        for part in ("request", "response"):
            content = web_get(web, f"/flows/{flow['id']}/{part}/content.data", token)[1]
            assert_no_key(content, fake_gemini.key, f"a flow's {part} content")
    assert_no_key(web.log_text(), fake_gemini.key, "mitmweb's log")
    assert fake_gemini.requests[-1]["headers"]["Authorization"] == f"Bearer {fake_gemini.key}"
