"""The real opencode CLI (npm opencode-ai, pinned) through the proxy to the fake Gemini 3: the repairs, proven.

Each test writes a git project whose opencode.json is conftest.opencode_config(port) (the alias provider "local",
with the proxy's own `options.proxy` key) and runs `opencode run --format json -m local/local-3` in it with a
fresh HOME. local-3 is gemini-3-pro-preview upstream, and the fake behaves like Gemini 3: it signs tool calls and
rejects a history without the signatures, streams tool calls without index and with finish_reason "stop", refuses
unknown schema keywords and request fields, and wraps its errors in a list. Tests with repairs on share the session
proxy; tests that turn repairs off share one proxy per set of repairs turned off.

opencode 1.18.33, as seen from here: it offers the tools bash, edit, glob, grep, read, skill, task, todowrite,
webfetch and write (read takes `filePath`); reading a file inside the project needs no permission in `run` mode (one
outside it is auto-rejected as external_directory); it sends model, messages, tools, tool_choice, stream,
stream_options and max_tokens, plus whatever the model's `options` in opencode.json name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import fake_scripts, opencode_cli
from tests.conftest import ProxyProcess, opencode_config, proxies_by_repairs, reloaded
from tests.opencode_cli import OpencodeRun

pytestmark = pytest.mark.e2e

MODEL = "local/local-3"
RUN_TIMEOUT = 120.0
NOTES, NOTES_TEXT = "notes.txt", "The secret word is PELICAN-7.\n"
TODO, TODO_TEXT = "todo.txt", "Buy more OSPREY-3 feathers.\n"
ALL_REPAIRS = ("signatures", "stream_tools", "schemas", "fields", "errors")
OPENCODE_FIELDS = {"model", "messages", "tools", "tool_choice", "stream", "stream_options", "max_tokens"}


@pytest.fixture(scope="module")
def proxy_without(fake_gemini, tmp_path_factory) -> Iterator[Callable[..., ProxyProcess]]:
    """proxy_without(*names): a proxy with those repairs off, shared by the module."""
    yield from proxies_by_repairs(fake_gemini, tmp_path_factory)


def read_marker(path: Path) -> str:
    """The fake's script marker for a call of opencode's read tool (compact JSON: one prompt word)."""
    return f"[tool:read {json.dumps({'filePath': str(path)}, separators=(',', ':'))}]"


def new_project(tmp_path: Path, proxy: ProxyProcess, model_options: dict[str, Any] | None = None) -> Path:
    config = opencode_config(proxy.port)
    if model_options:
        config["provider"]["local"]["models"]["local-3"]["options"] = model_options
    return opencode_cli.make_project(tmp_path / "project", config, {NOTES: NOTES_TEXT, TODO: TODO_TEXT})


def run_opencode(binary: Path, project: Path, prompt: str) -> OpencodeRun:
    return opencode_cli.run(binary, project, prompt, MODEL, project.parent / "home", timeout=RUN_TIMEOUT)


def assert_succeeded(run: OpencodeRun) -> None:
    assert run.returncode == 0 and not run.errors and run.text, run.describe()


def assert_failed_with(run: OpencodeRun, *fragments: str) -> str:
    """The one error opencode printed, which must contain every fragment."""
    assert run.returncode not in (0, None) and len(run.errors) == 1, run.describe()
    message = run.errors[0]
    assert all(f in message for f in fragments), f"{fragments} not all in {message!r}\n{run.describe()}"
    return message


def assert_options_held(proxy: ProxyProcess) -> None:
    assert not reloaded(proxy), (
        "The proxy reloaded its addon during the test (a file under addon/ changed), "
        "which resets --set options; run the test again."
    )


def signature_of(call: dict[str, Any]) -> str | None:
    return ((call.get("extra_content") or {}).get("google") or {}).get("thought_signature")


def tool_call_turns(request: dict[str, Any]) -> list[list[dict[str, Any]]]:
    messages = request["body"]["messages"]
    return [m["tool_calls"] for m in messages if m.get("role") == "assistant" and m.get("tool_calls")]


# Repairs on: opencode works.


def test_single_tool_call(opencode_bin, proxy, fake, tmp_path):
    project = new_project(tmp_path, proxy)
    mark = proxy.log_size()
    run = run_opencode(opencode_bin, project, f"Read the file {read_marker(project / NOTES)}")
    assert_succeeded(run)
    assert [(t["tool"], t["state"]["status"]) for t in run.tool_uses] == [("read", "completed")]
    assert run.text.startswith("Tool said:") and "PELICAN-7" in run.text
    first, second = fake.chat_requests()
    # opencode took the alias config, options.proxy included, and sent none of it on.
    log = run.log_tail(1_000_000)
    assert "level=WARN" not in log and "level=ERROR" not in log and not run.stderr.strip(), run.describe()
    for request in (first, second):
        body, headers = json.dumps(request["body"]), json.dumps(request["headers"])
        assert request["body"]["model"] == "gemini-3-pro-preview" and set(request["body"]) <= OPENCODE_FIELDS
        assert '"proxy"' not in body + headers and "local-model" not in body
        assert "anything" not in headers  # opencode's apiKey for the proxy; the fake got the Gemini key instead
    names = {t["function"]["name"] for t in first["body"]["tools"]}
    assert {"read", "bash", "edit", "write", "glob", "grep"} <= names
    read_tool = next(t["function"] for t in first["body"]["tools"] if t["function"]["name"] == "read")
    assert "filePath" in read_tool["parameters"]["properties"]
    [[call]] = tool_call_turns(second)
    # The signature came back although opencode drops extra_content: the proxy carried it in the id.
    assert call["id"] == "call_1" and signature_of(call) not in (None, fake_scripts.BYPASS_SIGNATURE)
    log = proxy.log_text(mark)
    for repair in (
        "removed $schema",
        "finish_reason stop -> tool_calls",
        "packed thought signature",
        "restored thought signature for call call_1",
    ):
        assert repair in log, f"no 'repaired: ... {repair}' in the proxy log:\n{log}"


def test_two_parallel_tool_calls(opencode_bin, proxy, fake, tmp_path):
    project = new_project(tmp_path, proxy)
    run = run_opencode(
        opencode_bin, project, f"Read both files {read_marker(project / NOTES)} {read_marker(project / TODO)}"
    )
    assert_succeeded(run)
    assert sorted(t["state"]["input"]["filePath"] for t in run.tool_uses) == [str(project / NOTES), str(project / TODO)]
    assert all(t["state"]["status"] == "completed" for t in run.tool_uses)
    assert "PELICAN-7" in run.text and "OSPREY-3" in run.text
    [calls] = tool_call_turns(fake.chat_requests()[-1])
    assert len({c["id"] for c in calls}) == 2 and signature_of(calls[0]) not in (None, fake_scripts.BYPASS_SIGNATURE)


def test_three_step_tool_conversation(opencode_bin, proxy, fake, tmp_path):
    project = new_project(tmp_path, proxy)
    run = run_opencode(opencode_bin, project, f"Read it three times {read_marker(project / NOTES)} [steps:3]")
    assert_succeeded(run)
    assert [t["tool"] for t in run.tool_uses] == ["read"] * 3
    assert run.text.count("PELICAN-7") == 3
    requests = fake.chat_requests()
    assert len(requests) == 4
    turns = tool_call_turns(requests[-1])
    assert [c[0]["id"] for c in turns] == ["call_1", "call_2", "call_3"]
    assert len({signature_of(c[0]) for c in turns}) == 3  # each step's own signature, none lost or bypassed


# Repairs off: opencode fails the way users report.


def test_every_repair_off_fails_as_users_report(opencode_bin, proxy_without, fake, tmp_path):
    proxy = proxy_without(*ALL_REPAIRS)
    project = new_project(tmp_path, proxy)
    run = run_opencode(opencode_bin, project, f"Read the file {read_marker(project / NOTES)}")
    assert_options_held(proxy)
    # Gemini's list-wrapped body reaches opencode as it is, and the first thing it refuses is zod's $schema.
    assert_failed_with(run, 'Bad Request: [{"error"', 'Unknown name \\"$schema\\"')
    assert not run.tool_uses
    [request] = fake.chat_requests()
    assert set(request["body"]) == OPENCODE_FIELDS  # what opencode itself sends, untouched


def test_signatures_off_fails_after_the_tool_ran(opencode_bin, proxy_without, fake, tmp_path):
    proxy = proxy_without("signatures")
    project = new_project(tmp_path, proxy)
    run = run_opencode(opencode_bin, project, f"Read the file {read_marker(project / NOTES)}")
    assert_options_held(proxy)
    assert_failed_with(run, "Function call is missing a thought_signature", "default_api:read")
    assert [t["state"]["status"] for t in run.tool_uses] == ["completed"]
    [[call]] = tool_call_turns(fake.chat_requests()[-1])
    assert signature_of(call) is None  # opencode dropped it (it keeps it only as provider metadata)


def test_schemas_off_fails_at_the_first_request(opencode_bin, proxy_without, fake, tmp_path):
    proxy = proxy_without("schemas")
    project = new_project(tmp_path, proxy)
    run = run_opencode(opencode_bin, project, f"Read the file {read_marker(project / NOTES)}")
    assert_options_held(proxy)
    message = assert_failed_with(run, 'Unknown name "$schema"', "function_declarations[0].parameters")
    assert not message.startswith("Bad Request: [")  # the error repair still gives it OpenAI's shape
    assert not run.tool_uses and len(fake.chat_requests()) == 1


@pytest.mark.parametrize("repaired", [True, False], ids=["on", "off"])
def test_refused_fields_from_model_options(opencode_bin, proxy, proxy_without, fake, tmp_path, repaired):
    """opencode sends a model's `options` as request fields: prompt_cache_key and OpenRouter-style reasoning."""
    proxy = proxy if repaired else proxy_without("fields")
    project = new_project(tmp_path, proxy, {"prompt_cache_key": "opencode-session", "reasoning": {"effort": "low"}})
    mark = proxy.log_size()
    run = run_opencode(opencode_bin, project, f"Read the file {read_marker(project / NOTES)}")
    if not repaired:
        assert_options_held(proxy)
        assert_failed_with(run, 'Unknown name "prompt_cache_key"')
        return
    assert_succeeded(run)
    assert "PELICAN-7" in run.text
    for request in fake.chat_requests():
        assert request["body"]["reasoning_effort"] == "low"
        assert "prompt_cache_key" not in request["body"] and "reasoning" not in request["body"]
    log = proxy.log_text(mark)
    # One repair line per exchange (issue 26): each repair is one of its `; `-separated parts.
    repaired = [line.split("repaired: ", 1)[1].split("; ") for line in log.splitlines() if "repaired: " in line]
    assert repaired and all("dropped field prompt_cache_key" in parts for parts in repaired), log[-3000:]
    assert all("translated reasoning.effort -> reasoning_effort" in parts for parts in repaired), log[-3000:]


@pytest.mark.parametrize("repaired", [True, False], ids=["on", "off"])
def test_upstream_error_as_opencode_shows_it(opencode_bin, proxy, proxy_without, fake, tmp_path, repaired):
    proxy = proxy if repaired else proxy_without("errors")
    project = new_project(tmp_path, proxy)
    run = run_opencode(opencode_bin, project, "Fail please [error:400]")
    if repaired:
        assert assert_failed_with(run) == "Scripted error 400."
    else:
        assert_options_held(proxy)
        assert_failed_with(run, 'Bad Request: [{"error":{"code":400,"message":"Scripted error 400."')


def test_stream_repair_off_is_tolerated_by_opencode(opencode_bin, proxy_without, fake, tmp_path):
    """opencode 1.18.33's AI SDK copes with Gemini's stream on its own: it numbers calls that have no index,
    accepts empty ids and runs the calls although finish_reason says "stop". The stream repair is proven with the
    openai SDK (test_gemini_repairs_sdk.py); this test says when an opencode upgrade changes that."""
    proxy = proxy_without("stream_tools")
    project = new_project(tmp_path, proxy)
    run = run_opencode(
        opencode_bin,
        project,
        f"Read both files {read_marker(project / NOTES)} {read_marker(project / TODO)} [empty-ids]",
    )
    assert_options_held(proxy)
    assert_succeeded(run)
    assert "PELICAN-7" in run.text and "OSPREY-3" in run.text
    assert run.step_reasons[0] == "stop"  # opencode saw Gemini's finish_reason, and went on anyway
