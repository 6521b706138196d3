"""End to end: two proxy processes behind nginx, configured with docs/load-balancing.md's own nginx block. Clients without
session headers (the openai SDK) are spread round robin: their multi-turn tool-call conversations with Gemini 3
thought signatures land on both replicas and still work, since the signatures travel inside the tool-call ids the
client sends back. An opencode-like client (x-session-affinity) has all the turns of a session on ONE replica, whose
/_proxy/sessions.json holds the whole session and names itself as its replica.

Both replicas read ONE opencode.json, the one docs/configuration.md shows, whose alias provider names the balancer's address
(shared_config); they still recognise it as themselves (its options.proxy.models mapping) and send nothing round.

nginx is Debian's package (nginx-light), started by the test on loopback with its own config in a temp dir.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.bench import balancer as bench_balancer
from tests.conftest import ROOT, ProxyProcess, _listening, free_port, start_proxy
from tests.support import direct_json

pytestmark = pytest.mark.e2e

TOOL = {
    "type": "function",
    "function": {
        "name": "read",
        "description": "Read a file",
        "parameters": {"type": "object", "properties": {"filePath": {"type": "string"}}, "required": ["filePath"]},
    },
}


def readme_nginx(port: int, a: int, b: int) -> str:
    """docs/load-balancing.md's nginx block on these ports (the benchmark runs the same one)."""
    block = bench_balancer.readme_block(port, a, b)
    assert "hash $http_x_session_affinity consistent;" in block, "the documented block routes by session"
    return block


def nginx_binary() -> str:
    found = bench_balancer.nginx_binary()
    if not found:
        pytest.fail("nginx is not installed: `apt-get install nginx-light` (.ci/run installs it).")
    return found


def readme_config(balancer_port: int) -> dict:
    """The opencode.json docs/configuration.md shows ("Pointing opencode at it"), its proxy on the balancer's port,
    with the Gemini 3 alias these conversations use added to its mapping."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    block = text[text.index("## Pointing opencode at it") :]
    config = json.loads(block[block.index("```json") + len("```json") : block.index("```", block.index("```json") + 7)])
    local = config["provider"]["local"]
    assert local["options"]["baseURL"] == "http://127.0.0.1:8000/v1", "the documented alias names the proxy's address"
    local["options"]["baseURL"] = f"http://127.0.0.1:{balancer_port}/v1"
    local["options"]["proxy"]["models"]["local-3"] = "gemini-3-pro-preview"
    local["models"]["local-3"] = {"name": "Local Gemini 3"}
    return config


def start_replicas(fake, workdir: Path, config: dict, count: int = 2) -> list[ProxyProcess]:
    """`count` replicas on ports of their own, all reading the one opencode.json written here."""
    shared = workdir / "opencode.json"
    shared.write_text(json.dumps(config, indent=2))
    started: list[ProxyProcess] = []
    try:
        for _ in range(count):
            started.append(start_proxy(fake, workdir, config=config, env={"OPENCODE_CONFIG": str(shared)}))
    except BaseException:
        for proxy in started:
            proxy.stop()
        raise
    return started


@pytest.fixture(scope="module")
def balancer_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def replicas(fake_gemini, tmp_path_factory, balancer_port) -> Iterator[list[ProxyProcess]]:
    started = start_replicas(fake_gemini, tmp_path_factory.mktemp("replicas"), readme_config(balancer_port))
    try:
        yield started
    finally:
        for proxy in started:
            proxy.stop()


@pytest.fixture(scope="module")
def balancer(replicas, tmp_path_factory, balancer_port) -> Iterator[tuple[str, Path]]:
    binary = nginx_binary()
    workdir = tmp_path_factory.mktemp("nginx")
    port = balancer_port
    config = workdir / "nginx.conf"
    readme = readme_nginx(port, replicas[0].port, replicas[1].port)
    # The benchmark's frame (files in a temp dir) with a log line per request, around the documented block.
    access = f"log_format replica '$upstream_addr|$status|$request_uri|$http_x_session_affinity';\n    access_log {workdir}/access.log replica;"
    frame = bench_balancer.FRAME.format(
        user="user root;" if os.geteuid() == 0 else "",
        dir=workdir,
        files=4096,
        connections=1024,
        access=access,
        readme=readme,
    )
    config.write_text(frame)
    log = (workdir / "nginx.out").open("wb")
    process = subprocess.Popen(
        [binary, "-c", str(config), "-p", str(workdir), "-g", "daemon off;"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 15
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"nginx did not start: {(workdir / 'nginx.out').read_text()}"
                    f"{(workdir / 'error.log').read_text() if (workdir / 'error.log').exists() else ''}"
                )
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1", workdir / "access.log"
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def replicas_used(access_log: Path, since: int, session: str = "-") -> list[str]:
    """The replica that answered each chat request of `session` ("-": none sent), the last of $upstream_addr
    when nginx moved on."""
    lines = [line.split("|") for line in access_log.read_text().splitlines()[since:]]
    assert all(status == "200" for _, status, _, _ in lines), lines
    return [
        addrs.split(",")[-1].strip() for addrs, _, uri, sent in lines if "chat/completions" in uri and sent == session
    ]


def collect_stream(stream) -> dict:
    """The assistant message assembled from a stream, as a client would send it back."""
    content, calls = "", {}
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        content += delta.content or ""
        for call in delta.tool_calls or []:
            entry = calls.setdefault(
                call.index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            )
            entry["id"] = call.id or entry["id"]
            entry["function"]["name"] += call.function.name or ""
            entry["function"]["arguments"] += call.function.arguments or ""
    message = {"role": "assistant", "content": content or None}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return message


def converse(client: openai.OpenAI, stream: bool, steps: int, tag: str) -> str:
    messages = [{"role": "user", "content": f'{tag} [steps:{steps}] [tool:read {{"filePath": "f"}}]'}]
    for step in range(steps + 1):
        if stream:
            message = collect_stream(
                client.chat.completions.create(model="local-3", messages=messages, tools=[TOOL], stream=True)
            )
        else:
            message = (
                client.chat.completions.create(model="local-3", messages=messages, tools=[TOOL])
                .choices[0]
                .message.model_dump(exclude_none=True)
            )
        messages.append(message)
        if not message.get("tool_calls"):
            return message["content"]
        for call in message["tool_calls"]:
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": f"{tag}-result-{step}"})
    raise AssertionError(f"the conversation did not end after {steps} tool steps: {messages}")


@pytest.mark.parametrize("stream", [True, False])
def test_tool_conversations_across_replicas(balancer, replicas, fake_gemini, stream):
    base_url, access_log = balancer
    since = len(access_log.read_text().splitlines()) if access_log.exists() else 0
    marks = [p.log_size() for p in replicas]
    client = openai.OpenAI(base_url=base_url, api_key="anything", max_retries=0, timeout=60)
    for n in range(3):
        answer = converse(client, stream, steps=3, tag=f"conv{n}-{stream}")
        assert answer.startswith("Tool said:") and f"conv{n}-{stream}-result-2" in answer, answer
    deadline = time.monotonic() + 5
    while len(used := replicas_used(access_log, since)) < 12 and time.monotonic() < deadline:
        time.sleep(0.05)  # nginx logs a request just after the client has its last byte
    assert len(used) == 12 and len(set(used)) == 2, (used, access_log.read_text()[-2000:])
    # Round robin: consecutive turns of one conversation went to different replicas.
    assert any(a != b for a, b in zip(used, used[1:]))
    for proxy, mark in zip(replicas, marks):
        assert proxy.alive()
        assert "local-3 -> " in proxy.log_text(mark)
        assert "Thought signature is not valid" not in proxy.log_text(mark)
    fake_requests = [r for r in fake_gemini.chat_requests() if "conv" in json.dumps(r["body"])]
    assert fake_requests and all(r["body"]["model"] == "gemini-3-pro-preview" for r in fake_requests)
    mine = [r for r in fake_requests if f"conv0-{stream}" in json.dumps(r["body"])]
    assert len(mine) == 4  # each of a conversation's 4 turns reached the upstream once: nothing went round


def session_json(proxy: ProxyProcess) -> dict[str, dict]:
    data = direct_json(proxy.root_url + "/_proxy/sessions.json")
    return {s["id"]: s for s in data["sessions"]}


def test_a_session_stays_on_one_replica(balancer, replicas):
    base_url, access_log = balancer
    since = len(access_log.read_text().splitlines()) if access_log.exists() else 0
    homes: dict[str, str] = {}
    for n in range(12):  # until both replicas hold a session (each new id lands on either, by its hash)
        session = f"ses_affinity_{n}"
        headers = {"x-session-affinity": session, "X-Session-Id": session}
        client = openai.OpenAI(
            base_url=base_url, api_key="anything", max_retries=0, timeout=60, default_headers=headers
        )
        assert converse(client, stream=True, steps=2, tag=session).startswith("Tool said:")
        deadline = time.monotonic() + 5
        while len(used := replicas_used(access_log, since, session)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(used) == 3 and len(set(used)) == 1, (session, used)  # its 3 turns: one replica
        homes[session] = used[0]
        if len(set(homes.values())) == 2 and n >= 3:
            break
    assert set(homes.values()) == {f"127.0.0.1:{p.port}" for p in replicas}, homes
    indexes = {f"127.0.0.1:{p.port}": session_json(p) for p in replicas}
    for session, home in homes.items():
        kept = {replica: index[session] for replica, index in indexes.items() if session in index}
        assert list(kept) == [home], (session, home, list(kept))  # the whole session, on its replica only
        assert kept[home]["turns"] == 3 and kept[home]["replica"] == home
    # Without the header, the same balancer still spreads requests over both replicas.
    mark = len(access_log.read_text().splitlines())
    plain = openai.OpenAI(base_url=base_url, api_key="anything", max_retries=0, timeout=60)
    converse(plain, stream=False, steps=3, tag="plain")
    deadline = time.monotonic() + 5
    while len(used := replicas_used(access_log, mark)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(used) == 4 and all(a != b for a, b in zip(used, used[1:])), used  # round robin
