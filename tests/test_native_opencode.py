"""The real opencode CLI (pinned, tests/opencode_cli.py) over the native path: opencode talks OpenAI to the proxy
(the alias provider "local"), the proxy talks generateContent to the strict native fake as Gemini 3.

One opencode.json serves both: opencode loads it with the native provider ("google", `@ai-sdk/google` with
`options.proxy.api`) declared, and the proxy resolves `native-3` through it to `gemini/gemini-3-pro-preview`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import opencode_cli
from tests.conftest import free_port, start_proxy
from tests.fake_gemini_native import FakeNativeGemini, Reply
from tests.test_native_e2e import native_config
from tests.test_opencode_cli import NOTES, NOTES_TEXT

pytestmark = pytest.mark.e2e


def test_opencode_runs_a_multi_step_tool_task_over_the_native_path(
    opencode_bin: Path, native: FakeNativeGemini, fake_gemini, tmp_path: Path
) -> None:
    port = free_port()
    config = native_config(port, native)
    proxy = start_proxy(fake_gemini, tmp_path, port=port, config=config)
    try:
        project = opencode_cli.make_project(tmp_path / "project", config, {NOTES: NOTES_TEXT})
        read = ("read", {"filePath": str(project / NOTES)})
        native.reset().script(
            Reply(text="", thought="I should read the notes.", calls=[read]),
            Reply(text="", thought="Once more, to be sure.", calls=[read]),
            Reply(text="The secret word is PELICAN-7.", thought="Both reads agree."),
        )
        run = opencode_cli.run(
            opencode_bin, project, "Read notes.txt twice", "local/native-3", tmp_path / "home", options=("--thinking",)
        )
    finally:
        proxy.stop()
    assert run.returncode == 0 and not run.errors, run.describe()
    assert [(t["tool"], t["state"]["status"]) for t in run.tool_uses] == [("read", "completed")] * 2
    assert "PELICAN-7" in run.text
    reasoning = "".join(e["part"].get("text", "") for e in run.events if e.get("type") == "reasoning")
    assert "I should read the notes." in reasoning and "Both reads agree." in reasoning, run.describe()
    # opencode counted Gemini's cached and thinking tokens (usageMetadata -> usage details).
    tokens = [e["part"]["tokens"] for e in run.events if e.get("type") == "step_finish"]
    assert tokens and all(t["reasoning"] == 30 and t["cache"]["read"] == 100 for t in tokens)
    requests = native.requests
    assert len(requests) == 3 and all(r["method"] == "streamGenerateContent" for r in requests)
    last = requests[-1]["body"]["contents"]
    results = [p for c in last for p in c["parts"] if "functionResponse" in p or "function_response" in p]
    assert len(results) == 2 and "PELICAN-7" in json.dumps(results)
    calls = [p for c in last for p in c["parts"] if "functionCall" in p or "function_call" in p]
    # Both calls went back with the signatures the model gave them (no bypass value): a list, so none missing.
    assert [p.get("thoughtSignature") in native.signatures for p in calls] == [True, True], calls
