"""`./mitm_run.sh export` on a saved multi-session file: real traffic recorded by the proxy with -w.

Two conversations go through the proxy (a Gemini 3 tool call and its follow-up; a plain question), plus requests
that are not chat exchanges. The session each flow belongs to is written into the file as the sessions feature
records it (flow.metadata["llm"]["session"]), then the file is exported as a user runs it.
"""

from __future__ import annotations

import json
import subprocess

import openai
import pytest
from mitmproxy import io

from tests.conftest import RUN_SH
from tests.test_replay_e2e import conversation

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def saved(fake_gemini, tmp_path_factory):
    from tests.conftest import start_proxy

    workdir = tmp_path_factory.mktemp("export")
    raw, path = workdir / "raw.mitm", workdir / "sessions.mitm"
    proxy = start_proxy(fake_gemini, workdir, "-w", str(raw))
    try:
        conversation(proxy)  # plain, tool call, follow-up, slow stream
        openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0).models.list()
    finally:
        proxy.stop()
    with raw.open("rb") as f:
        flows = list(io.FlowReader(f).stream())
    chats = [f for f in flows if "client_model" in (f.metadata.get("llm") or {})]
    assert len(chats) == 4
    for n, flow in enumerate(chats):
        sid, tag = ("ses_tools", "reading") if n in (1, 2) else ("ses_chat", "chatting")
        flow.metadata["llm"]["session"] = {"id": sid, "parent_id": None, "tag": tag, "turn": n}
    with path.open("wb") as f:
        writer = io.FlowWriter(f)
        for flow in flows:
            writer.add(flow)
    return path, chats


def export(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(RUN_SH), "export", *args], capture_output=True, text=True, timeout=120)


def lines(done: subprocess.CompletedProcess) -> list[dict]:
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_every_chat_exchange_is_one_line(saved, fake_gemini):
    path, chats = saved
    done = export(str(path))
    exported = lines(done)
    assert [e["id"] for e in exported] == [f.id for f in chats]
    plain, call, follow_up, _ = exported
    assert plain["client_request"]["body"] == {
        "model": "local-model",
        "messages": [{"role": "user", "content": "hello"}],
    }
    assert plain["upstream_request"]["body"]["model"] == "gemini-2.5-flash"
    assert plain["upstream_request"]["url"].endswith("/v1beta/openai/chat/completions")
    assert ["authorization", "Bearer test...90"] in plain["upstream_request"]["headers"]
    assert plain["answer"]["content"].startswith("Hello from fake Gemini") and plain["usage"]["total_tokens"] == 20
    assert plain["status"] == 200 and plain["timings"]["total_ms"] > 0
    assert call["answer"]["tool_calls"][0]["name"] == "read" and call["session"]["tag"] == "reading"
    assert "__thought__" in follow_up["client_request"]["body"]["messages"][1]["tool_calls"][0]["id"]
    assert "restored thought signature for call call_1" in follow_up["repairs"]
    assert fake_gemini.key not in done.stdout
    assert done.stderr.strip().endswith(f"export: 4 exchanges from {path}")


def test_the_client_request_has_the_host_the_client_sent(saved, fake_gemini):
    """The openai SDK names the proxy's address in Host; the upstream got (and the upstream request shows) its own."""
    path, chats = saved
    proxy_port = chats[0].client_conn.sockname[1]
    upstream = fake_gemini.base_url.split("//", 1)[1].split("/", 1)[0]
    for exported in lines(export(str(path))):
        client_hosts = [v for k, v in exported["client_request"]["headers"] if k.lower() == "host"]
        upstream_hosts = [v for k, v in exported["upstream_request"]["headers"] if k.lower() == "host"]
        assert client_hosts == [f"127.0.0.1:{proxy_port}"] and upstream_hosts == [upstream], exported


@pytest.mark.parametrize("wanted", ["ses_tools", "reading"], ids=["id", "tag"])
def test_one_session(saved, wanted):
    path, chats = saved
    assert [e["id"] for e in lines(export(str(path), "--session", wanted))] == [chats[1].id, chats[2].id]


def test_openai_batch_lines(saved):
    path, chats = saved
    batch = lines(export(str(path), "--format", "openai", "--session", "ses_chat"))
    assert [b["custom_id"] for b in batch] == [chats[0].id, chats[3].id]
    assert batch[0] == {
        "custom_id": chats[0].id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "local-model", "messages": [{"role": "user", "content": "hello"}]},
    }


def test_a_foreign_or_broken_file_gets_a_clear_error(saved, tmp_path):
    foreign = tmp_path / "notes.mitm"
    foreign.write_text("these are my notes, not flows\n")
    done = export(str(foreign))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == f"export: cannot read {foreign} as a mitmproxy flow file (-w): Invalid data format."
    broken = tmp_path / "broken.mitm"
    data = saved[0].read_bytes()
    broken.write_bytes(data[: len(data) - 100])  # cut while it was being written
    done = export(str(broken))
    assert done.returncode == 2 and f"export: cannot read {broken} as a mitmproxy flow file (-w): " in done.stderr
    assert len(done.stdout.splitlines()) == 4  # the chats before the cut (the last flow is GET /v1/models)
