"""Sessions end to end: the real opencode CLI and the openai SDK through a real proxy that writes a -w file.

The saved flows are read back with mitmproxy's own reader: each chat flow's metadata names its session and turn,
which must match the session headers opencode really sent (the fake upstream records them, so they also prove the
headers went upstream unchanged). Two `opencode run` processes at once must stay two sessions; a subagent that
opencode's `task` tool starts must name its parent; an openai SDK chat without headers must form one session.
"""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import openai
import pytest
from mitmproxy import io as mitmio

from tests import opencode_cli
from tests.conftest import ROOT, RUN_SH
from tests.test_opencode_cli import MODEL, NOTES, RUN_TIMEOUT, assert_succeeded, new_project, read_marker

pytestmark = pytest.mark.e2e


def saved_chat_flows(proxy, path: Path) -> list:
    proxy.stop()
    with path.open("rb") as f:
        flows = [f for f in mitmio.FlowReader(f).stream() if "client_model" in f.metadata.get("llm", {})]
    return sorted(flows, key=lambda f: f.request.timestamp_start)


def by_session(flows) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in flows:
        session = f.metadata["llm"]["session"]
        out.setdefault(session["id"], []).append(session)
    return out


def test_two_opencode_sessions_in_parallel_stay_apart(opencode_bin, proxy_factory, fake, tmp_path):
    saved = tmp_path / "flows.mitm"
    proxy = proxy_factory("-w", str(saved))
    projects = [new_project(tmp_path / name, proxy) for name in ("a", "b")]
    runs: list = [None, None]

    def run(i: int) -> None:
        # Each answer takes a second, so that one run's three turns outlast the other opencode's start-up (a
        # loaded machine had one finish before the other had sent anything, and the runs were not in parallel).
        prompt = f"Read it twice {read_marker(projects[i] / NOTES)} [steps:2] [slow:1]"
        runs[i] = opencode_cli.run(opencode_bin, projects[i], prompt, MODEL, projects[i].parent / "home", RUN_TIMEOUT)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in runs:
        assert_succeeded(r)
    sent = {r["headers"]["x-session-affinity"] for r in fake.chat_requests()}
    assert len(sent) == 2 and all(r["headers"]["x-session-id"] in sent for r in fake.chat_requests())
    # Both runs were in flight together: each session's first request came before the other's last.
    order = [r["headers"]["x-session-affinity"] for r in fake.chat_requests()]
    spans = [(order.index(s), len(order) - 1 - order[::-1].index(s)) for s in sent]
    assert max(first for first, _ in spans) < min(last for _, last in spans), order
    log = proxy.log_text()
    flows = saved_chat_flows(proxy, saved)
    sessions = by_session(flows)
    assert set(sessions) == sent, order
    for turns in sessions.values():
        assert [t["turn"] for t in turns] == [1, 2, 3] and {t["source"] for t in turns} == {"header"}
        assert [t["diff"]["new_count"] for t in turns] == [2, 2, 2] and not any(
            "rewritten_at" in t["diff"] for t in turns
        )
        tag = turns[0]["tag"]
        assert f"turn 3 of {tag}: +2 messages (assistant with 1 tool call, 1 tool result) since turn 2" in log
    for f in flows:
        session = f.metadata["llm"]["session"]
        assert f.request.headers["x-session-affinity"] == session["id"]
        assert "local-3 -> gemini-3-pro-preview" in f.comment and f.comment.endswith(
            f" | {session['tag']} #{session['turn']}"
        )


def test_a_subagent_names_its_parent(opencode_bin, proxy_factory, fake, tmp_path):
    saved = tmp_path / "flows.mitm"
    proxy = proxy_factory("-w", str(saved))
    project = new_project(tmp_path, proxy)
    task = json.dumps({"description": "look", "prompt": "Say-hello", "subagent_type": "general"}, separators=(",", ":"))
    run = opencode_cli.run(opencode_bin, project, f"Delegate [tool:task {task}]", MODEL, tmp_path / "home", RUN_TIMEOUT)
    assert_succeeded(run)
    parents = {r["headers"].get("x-parent-session-id") for r in fake.chat_requests()}
    sessions = by_session(saved_chat_flows(proxy, saved))
    assert len(sessions) == 2, sessions
    [child] = [turns for turns in sessions.values() if turns[0]["parent_id"]]
    [parent] = [turns for turns in sessions.values() if not turns[0]["parent_id"]]
    assert child[0]["parent_id"] == parent[0]["id"] and parents == {None, parent[0]["id"]}
    assert [t["turn"] for t in parent] == [1, 2] and [t["turn"] for t in child] == [1]


def test_an_openai_sdk_chat_is_one_session_and_survives_a_restart(proxy_factory, fake, tmp_path):
    saved = tmp_path / "flows.mitm"
    proxy = proxy_factory("-w", str(saved))
    client = openai.OpenAI(base_url=proxy.base_url, api_key="anything", max_retries=0, timeout=30)
    messages = [{"role": "system", "content": "Be brief."}]
    for question in ("Hello", "Tell me more", "Thanks"):
        messages.append({"role": "user", "content": question})
        answer = client.chat.completions.create(model="local-model", messages=messages)
        messages.append({"role": "assistant", "content": answer.choices[0].message.content})
    client.chat.completions.create(model="local-model", messages=[{"role": "user", "content": "Another chat"}])
    assert not any("x-session-affinity" in r["headers"] for r in fake.chat_requests())
    sessions = by_session(saved_chat_flows(proxy, saved))
    chat = next(turns for turns in sessions.values() if len(turns) == 3)
    assert len(sessions) == 2 and [t["turn"] for t in chat] == [1, 2, 3] and chat[0]["source"] == "fingerprint"
    assert chat[2]["diff"]["new_count"] == 2 and chat[2]["diff"]["new"][1]["text"] == "Thanks"
    # Read back (-nr): the log tells the same turns from the stored flows.
    read = subprocess.run(
        [str(RUN_SH), "-nr", str(saved)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert f"turn 3 of {chat[0]['tag']}: +2 messages (assistant, user) since turn 2" in read.stdout, read.stdout[-3000:]


def test_opencodes_title_request_is_labelled_and_the_agent_thread_starts_at_turn_1(
    opencode_bin, proxy_factory, fake, tmp_path
):
    """Without --title the real CLI sends its title agent's request (no tools, "You are a title generator…")
    beside the first agent turn. The title request is labelled, takes no turn number, and the agent's first
    request is turn 1 of the session, a first turn (not "a new thread" after the title)."""
    saved = tmp_path / "flows.mitm"
    proxy = proxy_factory("-w", str(saved))
    project = new_project(tmp_path, proxy)
    run = opencode_cli.run(opencode_bin, project, "Say hello please", MODEL, tmp_path / "home", RUN_TIMEOUT, title=None)
    assert_succeeded(run)
    requests = fake.chat_requests()
    titles = [r for r in requests if "title generator" in json.dumps(r["body"]["messages"][:1])]
    assert len(titles) == 1 and not titles[0]["body"].get("tools"), [r["body"]["messages"][:1] for r in requests]
    log = proxy.log_text()
    flows = saved_chat_flows(proxy, saved)
    sessions = [f.metadata["llm"]["session"] for f in flows]
    side = [s for s in sessions if s.get("kind") == "title"]
    turns = [s for s in sessions if s.get("kind") is None]
    assert len(side) == 1 and side[0]["turn"] is None
    assert [t["turn"] for t in turns] == [1] and turns[0]["diff"]["base_turn"] is None
    assert not turns[0]["diff"].get("side") and "new thread" not in log
    title_flow = next(f for f in flows if f.metadata["llm"]["session"].get("kind") == "title")
    assert title_flow.comment.endswith(f" | {side[0]['tag']} title")
    assert f"title request of {side[0]['tag']}" in log
