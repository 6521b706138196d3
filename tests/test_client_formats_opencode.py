"""The real opencode CLI (npm opencode-ai, pinned) with its `@ai-sdk/openai` provider (OpenAI Responses) and its
`@ai-sdk/anthropic` provider (Anthropic Messages), through the proxy to the strict fake Gemini 3, running a tool
task: the request goes in translated, the tool call comes back in the client's format with Gemini's thought
signature in its id, and the second turn reaches the fake signed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import opencode_cli
from tests.conftest import ProxyProcess, free_port, opencode_config, start_proxy
from tests.fake_gemini import FakeGemini
from tests.fake_gemini_native import FakeNativeGemini, Reply
from tests.test_native_e2e import native_config
from tests.test_opencode_cli import NOTES, NOTES_TEXT, assert_succeeded, read_marker

pytestmark = pytest.mark.e2e

PROVIDERS = {"openai": "@ai-sdk/openai", "anthropic": "@ai-sdk/anthropic"}


def project_for(tmp_path: Path, proxy: ProxyProcess, provider: str) -> Path:
    config: dict[str, Any] = opencode_config(proxy.port)
    config["provider"][provider] = {
        "npm": PROVIDERS[provider],
        "options": {"baseURL": f"http://127.0.0.1:{proxy.port}/v1", "apiKey": "anything"},
        "models": {"local-3": {"name": "local-3"}},
    }
    config["model"] = f"{provider}/local-3"
    return opencode_cli.make_project(tmp_path / "project", config, {NOTES: NOTES_TEXT})


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_tool_task(opencode_bin: Path, proxy: ProxyProcess, fake: FakeGemini, tmp_path: Path, provider: str) -> None:
    project = project_for(tmp_path, proxy, provider)
    mark = proxy.log_size()
    prompt = f"Read the file {read_marker(project / NOTES)}"
    run = opencode_cli.run(opencode_bin, project, prompt, f"{provider}/local-3", tmp_path / "home", timeout=150)
    assert_succeeded(run)
    assert [(t["tool"], t["state"]["status"]) for t in run.tool_uses] == [("read", "completed")]
    assert run.text.startswith("Tool said:") and "PELICAN-7" in run.text
    chats = [r for r in fake.chat_requests() if r["body"].get("tools")]
    assert len(chats) == 2, json.dumps([r["body"].get("messages") for r in fake.chat_requests()])[:3000]
    calls = [m for m in chats[1]["body"]["messages"] if m.get("role") == "assistant" and m.get("tool_calls")]
    signature = calls[0]["tool_calls"][0]["extra_content"]["google"]["thought_signature"]
    assert signature and signature != "skip_thought_signature_validator"
    path = {"openai": "/v1/responses", "anthropic": "/v1/messages"}[provider]
    assert f"request {path} translated to a chat request" in proxy.log_text(mark)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_tool_task_over_the_native_path(
    opencode_bin: Path, native: FakeNativeGemini, fake_gemini: FakeGemini, tmp_path: Path, provider: str
) -> None:
    """The same providers to Gemini's native API (the strict native fake as Gemini 3): translated twice, from the
    client's format to chat and from chat to generateContent, and the signature back in the tool call's id."""
    port = free_port()
    config = native_config(port, native)
    config["provider"][provider] = {
        "npm": PROVIDERS[provider],
        "options": {"baseURL": f"http://127.0.0.1:{port}/v1", "apiKey": "anything"},
        "models": {"native-3": {"name": "native-3"}},
    }
    config["model"] = f"{provider}/native-3"
    proxy = start_proxy(fake_gemini, tmp_path, port=port, config=config)
    try:
        project = opencode_cli.make_project(tmp_path / "project", config, {NOTES: NOTES_TEXT})
        read = ("read", {"filePath": str(project / NOTES)})
        native.reset().script(
            Reply(text="", thought="I should read the notes.", calls=[read]),
            Reply(text="Tool said: the secret word is PELICAN-7.", thought="The notes say it."),
        )
        run = opencode_cli.run(
            opencode_bin, project, "Read notes.txt", f"{provider}/native-3", tmp_path / "home", timeout=150
        )
        log = proxy.log_text()
    finally:
        proxy.stop()
    assert_succeeded(run)
    assert [(t["tool"], t["state"]["status"]) for t in run.tool_uses] == [("read", "completed")]
    assert "PELICAN-7" in run.text
    requests = [r for r in native.requests if r["body"].get("tools")]
    assert len(requests) == 2, json.dumps([r["body"] for r in native.requests])[:3000]
    calls = [
        p for c in requests[1]["body"]["contents"] for p in c["parts"] if "functionCall" in p or "function_call" in p
    ]
    # The call went back with the signature the model gave it: a list, so a missing call fails too.
    assert [p.get("thoughtSignature") in native.signatures for p in calls] == [True], calls
    path = {"openai": "/v1/responses", "anthropic": "/v1/messages"}[provider]
    assert f"request {path} translated to a chat request" in log
