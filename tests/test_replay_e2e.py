"""Client replay end to end: mitmweb's Replay through its HTTP API, and `./mitm_run.sh -nC FILE` in the same process.

A real proxy records a plain answer and a Gemini 3 tool-call conversation (the second turn's thought signature is
restored from the tool-call id) against the fake Gemini; then the flows are replayed. Each replay must reach the
fake once, at the upstream path (not prefixed twice), with the key of now and the same body the original sent; the
answer is renamed and annotated as a live one; the key is in no flow file; with no key now, nothing is sent.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import openai
import pytest
from mitmproxy import io

from tests.conftest import CONTRACT_ENV, RUN_SH, Mitmweb, ProxyProcess, opencode_config
from tests.fake_gemini import FakeGemini

pytestmark = pytest.mark.e2e

UPSTREAM_PATH = "/v1beta/openai/chat/completions"
READ_TOOL = {
    "type": "function",
    "function": {
        "name": "read",
        "parameters": {"type": "object", "properties": {"filePath": {"type": "string"}}, "required": ["filePath"]},
    },
}
ASK = 'Read it [tool:read {"filePath": "/tmp/x.txt"}]'

SESSION = r"(s:[0-9a-f]{4,8} #\d+ \| )?"  # a replay is a turn of its session (inspection/sessions/addon.py)


def conversation(proxy: ProxyProcess) -> None:
    """A plain answer, then a streamed Gemini 3 tool call and its follow-up with the tool's result."""
    client = openai.OpenAI(base_url=proxy.base_url, api_key="anything", max_retries=0, timeout=30)
    client.chat.completions.create(model="local-model", messages=[{"role": "user", "content": "hello"}])
    ask = [{"role": "user", "content": ASK}]
    chunks = list(client.chat.completions.create(model="local-3", messages=ask, tools=[READ_TOOL], stream=True))
    call = next(c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls)
    assert "__thought__" in call.id
    follow_up = [
        *ask,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call.id, "type": "function", "function": {"name": "read", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "file text"},
    ]
    list(client.chat.completions.create(model="local-3", messages=follow_up, tools=[READ_TOOL], stream=True))
    # A stream that lasts longer than the upstream watch's look (0.5 s): a replay has no client that could leave.
    slow = [{"role": "user", "content": "Take your time [chunks:8:200]"}]
    list(client.chat.completions.create(model="local-model", messages=slow, stream=True))


def chat_bodies(fake: FakeGemini) -> list[dict]:
    requests = fake.chat_requests()
    assert all(r["path"] == UPSTREAM_PATH for r in requests), [r["path"] for r in requests]
    return [r["body"] for r in requests]


def chat_flows(path: Path) -> list:
    with path.open("rb") as f:
        return [f for f in io.FlowReader(f).stream() if f.request.path.endswith("chat/completions")]


def run_dump(fake: FakeGemini, workdir: Path, *args: str, key: str | None, config: dict) -> subprocess.CompletedProcess:
    """`./mitm_run.sh ARGS` to its end, as a user runs it: the environment of now, not the recording's."""
    config_path = workdir / "opencode-replay.json"
    config_path.write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if k not in CONTRACT_ENV}
    env.update(GEMINI_API_BASE=fake.base_url, OPENCODE_CONFIG=str(config_path), PROXY_PORT="1")
    if key:
        env["GEMINI_API_KEY"] = key
    return subprocess.run([str(RUN_SH), *args], env=env, capture_output=True, text=True, timeout=120, cwd=workdir)


@pytest.fixture(scope="module")
def recording(fake_gemini, tmp_path_factory) -> tuple[Path, list[dict]]:
    """A -w file of the conversation, and the bodies the fake received."""
    from tests.conftest import start_proxy

    workdir = tmp_path_factory.mktemp("recording")
    path = workdir / "flows.mitm"
    fake_gemini.reset()
    proxy = start_proxy(fake_gemini, workdir, "-w", str(path))
    try:
        conversation(proxy)
    finally:
        proxy.stop()
    sent = chat_bodies(fake_gemini)
    assert len(sent) == 4
    return path, sent


def test_mitmdump_client_replay_translates_once_with_the_key_of_now(fake, recording, tmp_path):
    path, sent = recording
    out = tmp_path / "replayed.mitm"
    # No apiKey in the config: the key can only come from GEMINI_API_KEY.
    config = opencode_config(1)
    del config["provider"]["local"]["options"]["apiKey"]
    done = run_dump(fake, tmp_path, "-nC", str(path), "-w", str(out), key=fake.key, config=config)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert chat_bodies(fake) == sent  # same model and body, signatures restored once, at the upstream path once
    assert all(r["headers"]["Authorization"] == f"Bearer {fake.key}" for r in fake.chat_requests())
    flows = chat_flows(out)
    assert len(flows) == 4
    for flow in flows:
        meta = flow.metadata["llm"]
        assert flow.is_replay == "request" and meta["replay"]["n"] == 1 and flow.response.status_code == 200
        calls = r"(\d+ tool calls?(: [^|]*)? \| )?"  # what the answer called comes before the model
        assert re.match(rf"{SESSION}replay 1 \| {calls}{re.escape(meta['client_model'])} -> ", flow.comment), (
            flow.comment
        )
        assert flow.request.path == UPSTREAM_PATH
    plain, call, follow_up, slow = flows
    assert slow.metadata["llm"]["answer"]["content"].count("chunk ") == 8 and not slow.metadata["llm"].get("error")
    assert json.loads(plain.response.content)["model"] == "local-model"
    assert (
        b'"model":"local-3"' in call.response.content
        and "__thought__" in call.metadata["llm"]["answer"]["tool_calls"][0]["id"]
    )
    assert call.marked == ":wrench:" and "1 tool call" in call.comment
    assert "restored thought signature for call call_1" in follow_up.metadata["llm"]["repairs"]
    assert "Tool said: file text" in follow_up.metadata["llm"]["answer"]["content"]
    assert "replay 1 | local-3 -> gemini-3-pro-preview" in done.stdout
    for saved in (path, out):
        assert fake.key.encode() not in saved.read_bytes()


def test_mitmdump_client_replay_without_a_key_sends_nothing(fake, recording, tmp_path):
    path, _ = recording
    out = tmp_path / "replayed.mitm"
    config = opencode_config(1)
    del config["provider"]["local"]["options"]["apiKey"]
    done = run_dump(fake, tmp_path, "-nC", str(path), "-w", str(out), key=None, config=config)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert fake.chat_requests() == []
    flows = chat_flows(out)
    assert len(flows) == 4
    for flow in flows:
        error = json.loads(flow.response.content)["error"]
        assert flow.response.status_code == 401 and error["code"] == "upstream_key_missing"
        assert "GEMINI_API_KEY" in error["message"] and flow.marked == ":x:"
        assert "authorization" not in flow.request.headers


def wait_for(check, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_mitmweb_replay_through_its_http_api(fake, proxy_factory, tmp_path):
    saved = tmp_path / "web.mitm"
    proxy = proxy_factory("-w", str(saved), web=True)
    conversation(proxy)
    sent = chat_bodies(fake)
    web = Mitmweb(proxy)
    chats = wait_for(
        lambda: [f for f in web.flows() if f["request"]["path"] == UPSTREAM_PATH and f.get("response")], "flows"
    )
    assert len(chats) == 4
    fake.reset()
    for flow in chats:
        assert web.post(f"/flows/{flow['id']}/replay").status_code == 200

    def replayed() -> list[dict]:
        now = [f for f in web.flows() if f["id"] in {c["id"] for c in chats}]
        return now if all(re.match(rf"{SESSION}replay 1 \|", f["comment"]) and f.get("response") for f in now) else []

    flows = wait_for(replayed, "the replayed flows")
    assert chat_bodies(fake) == sent
    by_id = {f["id"]: f for f in flows}
    assert [by_id[c["id"]]["request"]["path"] for c in chats] == [UPSTREAM_PATH] * 4
    assert [by_id[c["id"]]["marked"] for c in chats] == ["", "🔧", "", ""]  # mitmweb shows the emoji
    stream = web.http.get(f"/flows/{chats[2]['id']}/response/content.data").text
    assert '"model":"local-3"' in stream and "gemini-3" not in stream and stream.endswith("data: [DONE]\n\n")
    proxy.stop()
    assert len(chat_flows(saved)) == 8  # the originals and the replays, the key in none
    assert fake.key.encode() not in saved.read_bytes()


def test_edit_the_client_request_and_resend_from_mitmweb(fake, proxy_factory):
    """llm.client.copy makes a flow of the client's request; edited in mitmweb and replayed, it is translated in
    full as a new exchange (client model name -> upstream model, the upstream path, the key)."""
    proxy = proxy_factory(web=True)
    client = openai.OpenAI(base_url=proxy.base_url, api_key="anything", max_retries=0, timeout=30)
    client.chat.completions.create(model="local-model", messages=[{"role": "user", "content": "first words"}])
    web = Mitmweb(proxy)
    wait_for(lambda: [f for f in web.flows() if f["request"]["path"] == UPSTREAM_PATH], "the chat flow")
    made = web.post("/commands/llm.client.copy", json={"arguments": ["~bq first"]}).json()
    assert "error" not in made, made
    [new] = wait_for(lambda: [f for f in web.flows() if f["comment"].startswith("client request of")], "the new flow")
    assert new["request"]["path"] == "/v1/chat/completions" and not new.get("response")
    body = json.loads(web.http.get(f"/flows/{new['id']}/request/content.data").content)
    assert body["model"] == "local-model"
    body["messages"][0]["content"] = "edited words"
    body |= {"model": "local-3", "temperature": 0.2}
    edit = web.put(f"/flows/{new['id']}", {"request": {"content": json.dumps(body)}})
    assert edit.status_code == 200, edit.text
    fake.reset()
    assert web.post(f"/flows/{new['id']}/replay").status_code == 200
    done = wait_for(
        lambda: [f for f in web.flows() if f["id"] == new["id"] and f.get("response") and "replay 1" in f["comment"]],
        "the resent flow",
    )
    [request] = fake.chat_requests()
    assert request["body"]["model"] == "gemini-3-pro-preview" and request["body"]["temperature"] == 0.2
    assert request["body"]["messages"][0]["content"] == "edited words"
    assert request["headers"]["Authorization"] == f"Bearer {fake.key}"
    assert done[0]["request"]["path"] == UPSTREAM_PATH and "local-3 -> gemini-3-pro-preview" in done[0]["comment"]
    # llm.resend: the same in one step, a new flow each time.
    fake.reset()
    assert "error" not in web.post("/commands/llm.resend", json={"arguments": ["~bq first & !~comment client"]}).json()
    wait_for(lambda: len(fake.chat_requests()) == 1, "the resent request")
    assert fake.chat_requests()[0]["body"]["messages"][0]["content"] == "first words"
