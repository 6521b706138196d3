"""A flow file read back later (issue 26, items 1 and 3), with the real mitmdump as `./mitm_run.sh` starts it.

A session is recorded through a proxy whose GEMINI_API_BASE points at a gateway (a fake Gemini on its own port).
Read back with `./mitm_run.sh -nr FILE` and the shipped opencode.json, no environment: every flow keeps the host,
port and route it was recorded with (mitmproxy's reverse mode would point them all at Google), and the log shows no
route table and no missing key, since nothing is sent. Replayed with `-r FILE -C FILE` against today's upstream
(another port): each chat is sent once, the log says the route differs from the recorded one, and a replay of
turn 1 is neither a new turn nor a history rewrite.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import openai
import pytest
from mitmproxy import io

from tests.conftest import CONTRACT_ENV, ROOT, RUN_SH, start_proxy
from tests.fake_gemini import FakeGemini

pytestmark = pytest.mark.e2e

HELLO = [{"role": "user", "content": "hello"}]


def read_flows(path: Path) -> list:
    with path.open("rb") as f:
        return list(io.FlowReader(f).stream())


def chats(flows: list) -> list:
    return [f for f in flows if f.request.path.endswith("chat/completions")]


def run_sh(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`./mitm_run.sh ARGS` to its end, from the project (the shipped opencode.json), with only `env` set."""
    clean = {k: v for k, v in os.environ.items() if k not in CONTRACT_ENV}
    return subprocess.run(
        [str(RUN_SH), *args], env={**clean, **(env or {})}, capture_output=True, text=True, timeout=180, cwd=ROOT
    )


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> tuple[Path, FakeGemini, int]:
    """flows.mitm: two turns of one conversation (and the start-up's /health checks), recorded via the gateway."""
    workdir = tmp_path_factory.mktemp("recorded")
    path = workdir / "flows.mitm"
    with FakeGemini() as gateway:
        proxy = start_proxy(gateway, workdir, "-w", str(path))
        try:
            client = openai.OpenAI(base_url=proxy.base_url, api_key="anything", max_retries=0, timeout=30)
            first = client.chat.completions.create(model="local-model", messages=HELLO)
            more = [*HELLO, {"role": "assistant", "content": first.choices[0].message.content or ""}]
            client.chat.completions.create(model="local-model", messages=[*more, {"role": "user", "content": "more"}])
        finally:
            proxy.stop()
        yield path, gateway, proxy.port


def test_a_file_read_back_with_the_shipped_config_keeps_hosts_ports_and_routes(recording, tmp_path):
    path, gateway, proxy_port = recording
    out = tmp_path / "read.mitm"
    done = run_sh("-nr", str(path), "-w", str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log = done.stdout + done.stderr
    flows = read_flows(out)
    recorded = read_flows(path)
    assert len(flows) == len(recorded) and len(chats(flows)) == 2
    for flow in chats(flows):
        assert (flow.request.scheme, flow.request.host, flow.request.port) == ("http", "127.0.0.1", gateway.port)
        assert flow.request.pretty_url == f"{gateway.base_url.rstrip('/')}/chat/completions"
        assert flow.request.headers["host"] == f"127.0.0.1:{gateway.port}"
        meta = flow.metadata["llm"]
        assert meta["api_base"].startswith(gateway.base_url) and meta["upstream_model"] == "gemini-2.5-flash"
    health = [f for f in flows if f.request.path == "/health"]
    assert health, [f.request.pretty_url for f in flows]
    for flow in health:  # the proxy's own answers: at the proxy's address, as recorded
        assert flow.request.pretty_url == f"http://127.0.0.1:{proxy_port}/health"
    assert "no key for" not in log and "Routes from" not in log
    assert "nothing is sent" in log
    assert str(gateway.port) in log  # mitmdump's own lines name the flows' recorded address


def test_a_replay_with_r_and_c_is_sent_once_on_todays_route_and_is_no_new_turn(recording, tmp_path):
    path, gateway, _ = recording
    out = tmp_path / "replayed.mitm"
    with FakeGemini() as today:
        done = run_sh(
            "-n",
            "-r",
            str(path),
            "-C",
            str(path),
            "-w",
            str(out),
            env={"GEMINI_API_BASE": today.base_url, "GEMINI_API_KEY": today.key},
        )
        sent = today.chat_requests()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log = done.stdout + done.stderr
    assert len(sent) == 2 and [r["body"]["model"] for r in sent] == ["gemini-2.5-flash"] * 2
    assert f"routed to gemini-2.5-flash @ 127.0.0.1:{today.port} today; it was recorded to " in log
    assert f"gemini-2.5-flash @ 127.0.0.1:{gateway.port}" in log
    assert "REWRITTEN" not in log
    flows = chats(read_flows(out))
    replays = [f for f in flows if f.is_replay == "request"]
    loaded = [f for f in flows if f.is_replay != "request"]
    assert len(replays) == 2 and len(loaded) == 2
    for flow in loaded:  # read with -r: as recorded
        assert flow.request.port == gateway.port
    for flow in replays:
        meta = flow.metadata["llm"]
        assert flow.request.port == today.port and meta["replay"]["route"].endswith(f"127.0.0.1:{today.port}")
        session = meta["session"]
        assert session["kind"] == "replay" and session["turn"] == session["replay_of"] in (1, 2)
        assert "history rewritten" not in flow.comment and flow.comment.endswith(
            f" | {session['tag']} #{session['turn']}"
        )
    assert sorted(f.metadata["llm"]["session"]["replay_of"] for f in replays) == [1, 2]
