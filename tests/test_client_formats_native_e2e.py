"""Responses and Anthropic Messages clients on the native Gemini path: the openai SDK's `responses.create` and the
anthropic SDK's `messages.create` / `messages.stream` -> the real proxy -> the strict native fake Gemini. Plain,
streamed (with Gemini's thoughts as reasoning summary events / thinking blocks), and a Gemini 3 tool round trip
whose thought signature travels in the call id / tool_use id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import ProxyProcess, free_port, start_proxy
from tests.fake_gemini import FakeGemini
from tests.fake_gemini_native import FakeNativeGemini, Reply
from tests.test_client_formats_e2e import ANTHROPIC_TOOLS, RESPONSES_TOOLS
from tests.test_native_e2e import native_config

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def native_proxy(
    fake_gemini: FakeGemini, native: FakeNativeGemini, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    workdir: Path = tmp_path_factory.mktemp("native-formats")
    port = free_port()
    proxy = start_proxy(fake_gemini, workdir, port=port, config=native_config(port, native))
    yield proxy
    proxy.stop()


@pytest.fixture
def oai(native_proxy: ProxyProcess, native: FakeNativeGemini) -> openai.OpenAI:
    native.reset()
    return openai.OpenAI(base_url=native_proxy.base_url, api_key="anything", max_retries=0, timeout=30)


@pytest.fixture
def claude(native_proxy: ProxyProcess, native: FakeNativeGemini) -> anthropic.Anthropic:
    native.reset()
    return anthropic.Anthropic(base_url=native_proxy.root_url, api_key="anything", max_retries=0, timeout=30)


def test_responses_plain_and_streamed_with_reasoning(oai: openai.OpenAI, native: FakeNativeGemini) -> None:
    answer = oai.responses.create(model="native-3", input="hi", reasoning={"effort": "high", "summary": "auto"})
    assert answer.output_text == "Hello from native Gemini." and answer.model == "native-3"
    thinking = native.requests[-1]["body"]["generationConfig"]["thinkingConfig"]
    assert thinking["thinkingLevel"] == "high"
    events = list(oai.responses.create(model="native-3", input="hi", stream=True))
    kinds = [e.type for e in events]
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert summary == "Thinking it over."
    assert "response.reasoning_summary_part.done" in kinds and kinds[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Hello from native Gemini."
    assert events[-1].response.usage.output_tokens_details.reasoning_tokens == 30


@pytest.mark.parametrize("stream", [False, True])
def test_responses_tool_round_trip(oai: openai.OpenAI, native: FakeNativeGemini, stream: bool) -> None:
    native.script(Reply(text="", calls=[("read", {"path": "a.txt"})]), Reply(text="It says A."))
    items: list[Any] = [{"role": "user", "content": "read a.txt"}]
    if stream:
        events = list(oai.responses.create(model="native-3", input=items, tools=RESPONSES_TOOLS, stream=True))
        output = events[-1].response.output
    else:
        output = oai.responses.create(model="native-3", input=items, tools=RESPONSES_TOOLS).output
    call = next(i for i in output if i.type == "function_call")
    assert call.name == "read" and "__thought__" in call.call_id
    items += [
        {"type": "function_call", "call_id": call.call_id, "name": "read", "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "A"},
    ]
    follow = oai.responses.create(model="native-3", input=items, tools=RESPONSES_TOOLS)
    assert follow.output_text == "It says A."
    signature = native.requests[-1]["body"]["contents"][1]["parts"][0]["thoughtSignature"]
    assert signature in native.signatures


def test_anthropic_plain_and_streamed_with_thinking(claude: anthropic.Anthropic) -> None:
    answer = claude.messages.create(model="native-3", max_tokens=300, messages=[{"role": "user", "content": "hi"}])
    assert [b.type for b in answer.content] == ["thinking", "text"]
    assert answer.content[1].text == "Hello from native Gemini."  # type: ignore[union-attr]
    with claude.messages.stream(
        model="native-3",
        max_tokens=300,
        thinking={"type": "enabled", "budget_tokens": 2000},
        messages=[{"role": "user", "content": "hi"}],
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "Thinking it over."  # type: ignore[union-attr]
    assert final.content[1].text == "Hello from native Gemini."  # type: ignore[union-attr]


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_tool_round_trip(claude: anthropic.Anthropic, native: FakeNativeGemini, stream: bool) -> None:
    native.script(Reply(text="", calls=[("read", {"path": "a.txt"})]), Reply(text="It says A."))
    messages: list[Any] = [{"role": "user", "content": "read a.txt"}]
    options: Any = {"model": "native-3", "max_tokens": 300, "tools": ANTHROPIC_TOOLS}
    if stream:
        with claude.messages.stream(messages=messages, **options) as events:
            answer = events.get_final_message()
    else:
        answer = claude.messages.create(messages=messages, **options)
    use = next(b for b in answer.content if b.type == "tool_use")
    assert use.input == {"path": "a.txt"} and "__thought__" in use.id and answer.stop_reason == "tool_use"
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in answer.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": [{"type": "text", "text": "A"}]}],
        },
    ]
    follow = claude.messages.create(messages=messages, **options)
    assert follow.content[-1].text == "It says A."  # type: ignore[union-attr]
    parts = native.requests[-1]["body"]["contents"][1]["parts"]
    assert any(part.get("thoughtSignature") in native.signatures for part in parts)
