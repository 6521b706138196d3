"""OpenAI Responses and Anthropic Messages clients end to end: the openai SDK's `responses.create` and the anthropic
SDK's `messages.create` / `messages.stream` -> the real proxy (mitm_run.sh) -> the strict fake Gemini
(OpenAI-compatible): plain, streamed, a Gemini 3 tool round trip (the thought signature travels in the call id),
errors in the client's shape, and a dropped upstream ending each stream with its format's error."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import ProxyProcess
from tests.fake_gemini import FakeGemini

pytestmark = pytest.mark.e2e

RESPONSES_TOOLS: Any = [
    {
        "type": "function",
        "name": "read",
        "description": "Read a file.",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    }
]
ANTHROPIC_TOOLS: Any = [
    {
        "name": "read",
        "description": "Read a file.",
        "input_schema": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"path": {"type": "string", "format": "uri-reference"}},
            "required": ["path"],
            "additionalProperties": False,
        },
    }
]
SCRIPT = '[tool:read {"path": "a.txt"}] read it'


@pytest.fixture
def oai(proxy: ProxyProcess, fake: FakeGemini) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key="anything", max_retries=0, timeout=30)


@pytest.fixture
def claude(proxy: ProxyProcess, fake: FakeGemini) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.root_url, api_key="anything", max_retries=0, timeout=30)


def test_responses_plain(oai: openai.OpenAI, fake: FakeGemini) -> None:
    answer = oai.responses.create(model="local-model", input="hi there", instructions="Be brief.", store=False)
    assert answer.output_text == "Hello from fake Gemini. You said: hi there"
    assert answer.model == "local-model" and answer.status == "completed"
    assert answer.usage is not None and answer.usage.output_tokens > 0
    sent = fake.chat_requests()[-1]["body"]
    assert sent["model"] == "gemini-2.5-flash"
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}


def test_responses_streamed_events_are_complete(oai: openai.OpenAI) -> None:
    events = list(oai.responses.create(model="local-model", input="hi there", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-1] == "response.completed"
    for kind in ("response.content_part.added", "response.output_text.done", "response.content_part.done"):
        assert kind in kinds
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Hello from fake Gemini. You said: hi there"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response
    assert final.output_text == text and final.usage is not None and final.usage.total_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
def test_responses_gemini_3_tool_round_trip(oai: openai.OpenAI, fake: FakeGemini, stream: bool) -> None:
    items: list[Any] = [{"role": "developer", "content": "You read files."}, {"role": "user", "content": SCRIPT}]
    extra = {"store": False, "include": ["reasoning.encrypted_content"], "parallel_tool_calls": False}
    if stream:
        events = list(oai.responses.create(model="local-3", input=items, tools=RESPONSES_TOOLS, stream=True, **extra))
        kinds = [e.type for e in events]
        assert "response.function_call_arguments.delta" in kinds and kinds[-1] == "response.completed"
        calls = [i for i in events[-1].response.output if i.type == "function_call"]
    else:
        answer = oai.responses.create(model="local-3", input=items, tools=RESPONSES_TOOLS, **extra)
        calls = [i for i in answer.output if i.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("read", {"path": "a.txt"})]
    assert "__thought__" in calls[0].call_id  # Gemini 3's signature rides in the call id
    items += [
        {"type": "function_call", "call_id": calls[0].call_id, "name": "read", "arguments": calls[0].arguments},
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "A"},
    ]
    follow = oai.responses.create(model="local-3", input=items, tools=RESPONSES_TOOLS, **extra)
    assert follow.output_text == "Tool said: A"  # the strict fake checked the signature came back


def test_anthropic_plain(claude: anthropic.Anthropic, fake: FakeGemini) -> None:
    answer = claude.messages.create(
        model="local-model",
        max_tokens=200,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "hi there"}],
        metadata={"user_id": json.dumps({"device_id": "x"})},
    )
    assert answer.content[0].type == "text" and answer.content[0].text == "Hello from fake Gemini. You said: hi there"
    assert answer.stop_reason == "end_turn" and answer.model == "local-model" and answer.usage.output_tokens > 0
    sent = fake.chat_requests()[-1]["body"]
    assert sent["messages"][0]["role"] == "system" and "user" not in sent


def test_anthropic_streamed(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model="local-model", max_tokens=200, messages=[{"role": "user", "content": "hi there"}]
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert {"content_block_start", "content_block_delta", "content_block_stop", "message_delta"} <= set(kinds)
    assert final.content[0].text == "Hello from fake Gemini. You said: hi there"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_gemini_3_tool_round_trip(claude: anthropic.Anthropic, stream: bool) -> None:
    messages: list[Any] = [{"role": "user", "content": SCRIPT}]
    options: Any = {"model": "local-3", "max_tokens": 500, "tools": ANTHROPIC_TOOLS, "thinking": {"type": "adaptive"}}
    if stream:
        with claude.messages.stream(messages=messages, **options) as events:
            kinds = [e.type for e in events]
            answer = events.get_final_message()
        assert "content_block_delta" in kinds and kinds[-1] == "message_stop"
    else:
        answer = claude.messages.create(messages=messages, **options)
    uses = [block for block in answer.content if block.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == [("read", {"path": "a.txt"})]
    assert answer.stop_reason == "tool_use" and "__thought__" in uses[0].id
    messages += [
        {"role": "assistant", "content": [u.model_dump(exclude_none=True) for u in uses]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": "A"}]},
    ]
    follow = claude.messages.create(messages=messages, **options)
    assert follow.content[0].text == "Tool said: A"


def test_errors_come_in_the_clients_shape(oai: openai.OpenAI, claude: anthropic.Anthropic, proxy: ProxyProcess) -> None:
    with pytest.raises(openai.BadRequestError, match="previous_response_id"):
        oai.responses.create(model="local-model", input="x", previous_response_id="resp_1")
    with pytest.raises(openai.BadRequestError, match="file_search"):
        oai.responses.create(model="local-model", input="x", tools=[{"type": "file_search", "vector_store_ids": ["v"]}])
    reply = httpx.post(proxy.root_url + "/v1/messages?beta=true", json={"model": "local-model", "max_tokens": 5})
    assert reply.status_code == 400
    assert reply.json()["type"] == "error" and reply.json()["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model="local-model", max_tokens=5, messages=[{"role": "user", "content": "[error:400]"}])
    assert caught.value.body["type"] == "error"  # type: ignore[index]


def test_a_dropped_upstream_ends_each_stream_with_its_error(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    events = list(oai.responses.create(model="local-model", input="[chunks:6:50] [cut] go", stream=True))
    assert [e.type for e in events][-2:] == ["response.failed", "error"]
    assert events[-2].response.status == "failed"
    with pytest.raises(anthropic.APIStatusError, match="upstream|Upstream"):  # noqa: PT012
        with claude.messages.stream(
            model="local-model", max_tokens=50, messages=[{"role": "user", "content": "[chunks:6:50] [cut] go"}]
        ) as stream:
            for _ in stream:
                pass


def test_count_tokens_is_answered_by_the_proxy(claude: anthropic.Anthropic, fake: FakeGemini) -> None:
    before = len(fake.requests)
    counted = claude.messages.count_tokens(model="local-model", messages=[{"role": "user", "content": "hello world"}])
    assert counted.input_tokens > 0 and len(fake.requests) == before


CODEX_TOOLS: Any = [
    {
        "type": "function",
        "name": "shell",
        "description": "Run a command.",
        "strict": False,
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "array", "items": {"type": "string"}}},
            "required": ["command"],
            "additionalProperties": False,
        },
    },
    {
        "type": "custom",
        "name": "apply_patch",
        "description": "Patch files.",
        "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"},
    },
    {"type": "web_search"},
]


def test_a_codex_shaped_request_gets_a_custom_tool_call_back(proxy: ProxyProcess, fake: FakeGemini) -> None:
    body = {
        "model": "local-3",
        "instructions": "You are Codex.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "sandbox: none"}]},
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": '[tool:apply_patch {"input": "*** Begin Patch"}] patch it'}],
            },
        ],
        "tools": CODEX_TOOLS,
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "abc",
    }
    headers = {
        "authorization": "Bearer anything",
        "session-id": "codex-session-1",
        "openai-beta": "responses=experimental",
    }
    reply = httpx.post(proxy.base_url + "/responses", json=body, headers=headers, timeout=30)
    assert reply.status_code == 200, reply.text
    events = [json.loads(line[6:]) for line in reply.text.splitlines() if line.startswith("data: ")]
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "response.completed" and "response.custom_tool_call_input.done" in kinds
    [call] = [i for i in events[-1]["response"]["output"] if i["type"] == "custom_tool_call"]
    assert call["name"] == "apply_patch" and call["input"] == "*** Begin Patch" and "__thought__" in call["call_id"]
    sent = fake.chat_requests()[-1]
    assert {t["function"]["name"] for t in sent["body"]["tools"]} == {"shell", "apply_patch"}
    assert not {"prompt_cache_key", "store", "include", "web_search_options"} & set(sent["body"])
    assert "openai-beta" not in {k.lower() for k in sent["headers"]}


CLAUDE_CODE_TOOLS: Any = [
    {
        "name": "Read",
        "description": "Read a file.",
        "input_schema": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {
                "file_path": {"type": "string", "pattern": "^/", "format": "path"},
                "limit": {"type": "integer", "exclusiveMinimum": 0},
                "mode": {"allOf": [{"type": "string"}, {"enum": ["text", "bytes"]}]},
            },
            "required": ["file_path"],
            "additionalProperties": False,
        },
        "cache_control": {"type": "ephemeral"},
    },
    {"name": "ToolSearch", "description": "Find tools.", "input_schema": {"type": "object", "properties": {}}},
    {"name": "mcp__x__y", "description": "Deferred.", "defer_loading": True, "input_schema": {"type": "object"}},
]


def claude_code_turn(proxy: ProxyProcess, messages: list[Any]) -> list[dict[str, Any]]:
    body = {
        "model": "local-3",
        "max_tokens": 32000,
        "stream": True,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "messages": messages,
        "tools": CLAUDE_CODE_TOOLS,
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "metadata": {"user_id": json.dumps({"device_id": "d", "session_id": "s"})},
    }
    headers = {
        "x-api-key": "anything",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
        "x-claude-code-session-id": "claude-code-session-1",
    }
    reply = httpx.post(proxy.root_url + "/v1/messages?beta=true", json=body, headers=headers, timeout=30)
    assert reply.status_code == 200, reply.text
    return [json.loads(line[6:]) for line in reply.text.splitlines() if line.startswith("data: ")]


def test_a_claude_code_shaped_tool_round_trip(proxy: ProxyProcess, fake: FakeGemini) -> None:
    mark = proxy.log_size()
    prompt = '[tool:Read {"file_path": "/a.txt"}] read it'
    messages: list[Any] = [
        {"role": "user", "content": "Hello."},
        {"role": "assistant", "content": "Hello from fake Gemini."},
        {"role": "system", "content": "A reminder inside messages."},
        {"role": "user", "content": [{"type": "text", "text": prompt, "cache_control": {"type": "ephemeral"}}]},
    ]
    events = claude_code_turn(proxy, messages)
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    start = next(e for e in events if e["type"] == "content_block_start" and e["content_block"]["type"] == "tool_use")
    use = start["content_block"]
    arguments = "".join(
        e["delta"]["partial_json"]
        for e in events
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
    )
    assert use["name"] == "Read" and json.loads(arguments) == {"file_path": "/a.txt"} and "__thought__" in use["id"]
    assert next(e for e in events if e["type"] == "message_delta")["delta"]["stop_reason"] == "tool_use"
    messages += [
        {"role": "assistant", "content": [{**use, "input": json.loads(arguments)}]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use["id"], "content": [{"type": "text", "text": "A"}]}],
        },
    ]
    events = claude_code_turn(proxy, messages)
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    assert text == "Tool said: A" and events[-1]["type"] == "message_stop"
    first, second = fake.chat_requests()[-2:]
    assert first["body"]["reasoning_effort"] == "high" and "context_management" not in first["body"]
    read = next(t["function"] for t in first["body"]["tools"] if t["function"]["name"] == "Read")
    assert "$schema" not in json.dumps(read) and "allOf" not in json.dumps(read)  # the strict fake took the rest
    log = proxy.log_text(mark)
    assert "turn 2 of s:" in log and log.count("first turn") == 1  # one session, from Claude Code's header
