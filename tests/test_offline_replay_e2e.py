"""Record once, play back offline: `./mitm_run.sh -w FILE`, then `./mitm_run.sh --server-replay FILE` with the
upstream gone and no key.

The recording runs against a fake Gemini of its own, which is stopped before the playback: any request that reached
the network would fail. The real opencode CLI runs the same multi-step tool-using task twice (fresh HOME each time)
and must make the same tool calls and give the same final answer; a request that was not recorded gets an
OpenAI-shaped error naming why, at once.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import openai
import pytest

from tests import opencode_cli
from tests.conftest import opencode_config, start_proxy
from tests.fake_gemini import FakeGemini
from tests.test_opencode_cli import NOTES, NOTES_TEXT, TODO, TODO_TEXT, read_marker
from tests.test_replay_e2e import ASK, READ_TOOL, conversation

pytestmark = pytest.mark.e2e

MODEL = "local/local-3"


def keyless_config(port: int) -> dict:
    """The alias config with no apiKey: the playback has no key from anywhere."""
    config = opencode_config(port)
    del config["provider"]["local"]["options"]["apiKey"]
    return config


def playback(fake: FakeGemini, workdir: Path, recording: Path, port: int):
    return start_proxy(
        fake,
        workdir,
        "--server-replay",
        str(recording),
        port=port,
        config=keyless_config(port),
        env={"GEMINI_API_KEY": ""},
    )


def test_the_openai_sdk_gets_the_recorded_answers_and_a_clear_error_otherwise(tmp_path):
    recording = tmp_path / "session.mitm"
    with FakeGemini() as fake:
        recorder = start_proxy(fake, tmp_path, "-w", str(recording))
        conversation(recorder)  # a plain answer, a Gemini 3 tool call and its follow-up, a slow stream
        recorder.stop()
    player = playback(fake, tmp_path, recording, recorder.port)
    try:
        conversation(player)  # every step answered from the recording, the thought signature carried as before
        client = openai.OpenAI(base_url=player.base_url, api_key="anything", max_retries=0, timeout=10)
        # Another run's tool-call id, without the signature, and a session's user id: the same request.
        follow_up = [
            {"role": "user", "content": ASK},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_other", "type": "function", "function": {"name": "read", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_other", "content": "file text"},
        ]
        chunks = client.chat.completions.create(
            model="local-3", messages=follow_up, tools=[READ_TOOL], stream=True, user="session-42"
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Tool said: file text"
        started = time.monotonic()
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(model="local-model", messages=[{"role": "user", "content": "other words"}])
        assert time.monotonic() - started < 5
        error = caught.value.body
        assert error["code"] == "no_recorded_answer" and str(recording) in error["message"]
        assert 'messages[0] is now {"role":"user","content":"other words"}' in error["message"]
        with pytest.raises(openai.NotFoundError, match="no request for model 'gemini-2.5-pro'"):
            client.chat.completions.create(model="gemini-2.5-pro", messages=[{"role": "user", "content": "hello"}])
        log = player.log_text()
        assert log.count("recorded answer | ") == 5 and "server connect" not in log
    finally:
        player.stop()


def test_opencode_runs_a_recorded_task_offline(opencode_bin, tmp_path):
    recording = tmp_path / "session.mitm"
    with FakeGemini() as fake:
        recorder = start_proxy(fake, tmp_path, "-w", str(recording))
        prompt_port = recorder.port
        project = opencode_cli.make_project(
            tmp_path / "project", opencode_config(prompt_port), {NOTES: NOTES_TEXT, TODO: TODO_TEXT}
        )
        prompt = f"Read the notes three times {read_marker(project / NOTES)} [steps:3]"
        first = opencode_cli.run(opencode_bin, project, prompt, MODEL, tmp_path / "home-1", timeout=120)
        recorder.stop()
        assert first.returncode == 0 and not first.errors and len(fake.chat_requests()) == 4, first.describe()
    # The same port: the project's opencode.json (committed) names it.
    player = playback(fake, tmp_path, recording, prompt_port)
    try:
        again = opencode_cli.run(opencode_bin, project, prompt, MODEL, tmp_path / "home-2", timeout=120)
        assert again.returncode == 0 and not again.errors, again.describe() + player.log_text()[-3000:]
        calls = [(t["tool"], t["state"]["input"], t["state"]["status"]) for t in again.tool_uses]
        assert calls == [(t["tool"], t["state"]["input"], t["state"]["status"]) for t in first.tool_uses]
        assert len(calls) == 3 and again.text == first.text and again.text.count("PELICAN-7") == 3
        recorded = re.findall(r"recorded answer \| [^\n]*local-3 -> gemini-3-pro-preview", player.log_text())
        assert len(recorded) == 4, player.log_text()[-3000:]  # the comment: tool calls first, then the models
        other = opencode_cli.run(
            opencode_bin, project, "Something never recorded", MODEL, tmp_path / "home-3", timeout=120
        )
        assert other.returncode != 0 and len(other.errors) == 1, other.describe()
        assert other.errors[0].startswith(f"No recorded answer in {recording} matches this request")
    finally:
        player.stop()
