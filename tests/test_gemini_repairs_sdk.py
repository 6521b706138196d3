"""The Gemini repairs with the openai SDK: each scenario works with its repair on and fails as users report with it
off, and the proxy's log (translate_verbosity=full) says what it repaired.

The client is the SDK as an agent loop is usually written on it: stream, collect tool-call deltas by index, run the
tools while finish_reason is "tool_calls", and send the calls back as id, name and arguments (extra_content is not
part of that, so Gemini 3's thought signatures are dropped). Upstream is the fake Gemini 3 (local-3 is
gemini-3-pro-preview). One proxy per set of repairs turned off, shared by the module.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest

from tests import fake_scripts
from tests.conftest import ProxyProcess, proxies_by_repairs, reloaded

pytestmark = pytest.mark.e2e

MODEL, UPSTREAM = "local-3", "gemini-3-pro-preview"
FILES = {"a.txt": "ALPHA-1", "b.txt": "BRAVO-2"}
# A read tool as zod (through opencode or the AI SDK) describes it, with the keywords Gemini refuses.
ZOD_READ = {
    "type": "function",
    "function": {
        "name": "read",
        "description": "Read a file",
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {
                "filePath": {"type": "string", "description": "The path"},
                "offset": {"type": "integer", "exclusiveMinimum": 0, "maximum": 9007199254740991},
                "encoding": {"anyOf": [{"type": "string", "const": "utf-8"}, {"type": "null"}]},
                "tags": {
                    "type": "object",
                    "propertyNames": {"pattern": "^[a-z]+$"},
                    "additionalProperties": {"type": "string"},
                },
            },
            "required": ["filePath"],
            "additionalProperties": False,
        },
    },
}
PLAIN_READ = {
    "type": "function",
    "function": {
        "name": "read",
        "description": "Read a file",
        "parameters": {"type": "object", "properties": {"filePath": {"type": "string"}}, "required": ["filePath"]},
    },
}


def read_marker(name: str) -> str:
    return f"[tool:read {json.dumps({'filePath': name})}]"


@pytest.fixture(scope="module")
def proxies(fake_gemini, tmp_path_factory) -> Iterator[Callable[..., ProxyProcess]]:
    """proxies(*names): a proxy with those repairs off (none: all on) and translate_verbosity=full."""
    yield from proxies_by_repairs(fake_gemini, tmp_path_factory, "--set", "translate_verbosity=full")


@dataclass
class Session:
    """One proxy, its client, and the log written since the session began."""

    proxy: ProxyProcess
    client: openai.OpenAI = field(init=False)
    mark: int = field(init=False)

    def __post_init__(self) -> None:
        self.client = openai.OpenAI(base_url=self.proxy.base_url, api_key="anything", max_retries=0, timeout=30)
        self.mark = self.proxy.log_size()

    def log(self, waiting_for: str | None = None, timeout: float = 5.0) -> str:
        """The log since the start, once it contains `waiting_for`, or else once every chat request in it has
        logged its closing summary line ("local-3 -> gemini-3-pro-preview | ..."): the response side logs last."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.proxy.log_text(self.mark)
            ended = text.count("──── POST") <= text.count(f" -> {UPSTREAM} |")
            done = waiting_for in text if waiting_for else ended
            if done or time.monotonic() > deadline:
                return text
            time.sleep(0.05)

    def repaired(self, *what: str) -> None:
        for repair in what:
            log = self.log(f"repaired: {repair}")
            assert f"repaired: {repair}" in log, f"no 'repaired: {repair}' in the proxy log:\n{log}"

    def options_held(self) -> None:
        assert not reloaded(self.proxy), (
            "The proxy reloaded its addon during the test (a file under addon/ "
            "changed), which resets --set options; run the test again."
        )


@pytest.fixture
def on(proxies, fake) -> Session:
    return Session(proxies())


@pytest.fixture
def off(proxies, fake) -> Callable[..., Session]:
    return lambda *names: Session(proxies(*names))


@dataclass
class Step:
    text: str
    calls: list[dict[str, Any]]  # {"index", "id", "name", "arguments"} as collected from the deltas
    finish: str | None


@dataclass
class Transcript:
    steps: list[Step]
    ran: list[dict[str, Any]]  # the tool calls executed, with their parsed arguments

    @property
    def answer(self) -> str:
        return self.steps[-1].text


def collect(stream: Any) -> Step:
    """Join a stream's deltas the usual way: tool calls by index, id and name from the first delta that has them."""
    text, calls, finish = "", {}, None
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"index": delta.index, "id": "", "name": "", "arguments": ""})
                call["id"] = call["id"] or delta.id or ""
                call["name"] = call["name"] or (delta.function.name if delta.function else "") or ""
                call["arguments"] += (delta.function.arguments if delta.function else "") or ""
            finish = choice.finish_reason or finish
    return Step(text, list(calls.values()), finish)


def agent(
    client: openai.OpenAI,
    prompt: str,
    tools: list[dict[str, Any]],
    max_steps: int = 6,
    messages: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> Transcript:
    """Stream, run the tools while finish_reason is "tool_calls", answer with their results; stop otherwise."""
    messages = [*(messages or []), {"role": "user", "content": prompt}]
    transcript = Transcript([], [])
    for _ in range(max_steps):
        step = collect(
            client.chat.completions.create(model=MODEL, messages=messages, tools=tools, stream=True, **fields)
        )
        transcript.steps.append(step)
        if step.finish != "tool_calls":
            return transcript
        messages.append(
            {
                "role": "assistant",
                "content": step.text or None,
                "tool_calls": [
                    {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                    for c in step.calls
                ],
            }
        )
        for call in step.calls:
            arguments = json.loads(call["arguments"])
            transcript.ran.append({"name": call["name"], **arguments})
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": FILES[arguments["filePath"]]})
    raise AssertionError(f"no answer after {max_steps} steps: {transcript}")


def signature_of(call: dict[str, Any]) -> str | None:
    return ((call.get("extra_content") or {}).get("google") or {}).get("thought_signature")


def tool_call_turns(request: dict[str, Any]) -> list[list[dict[str, Any]]]:
    messages = request["body"]["messages"]
    return [m["tool_calls"] for m in messages if m.get("role") == "assistant" and m.get("tool_calls")]


# Streamed tool calls (index, ids, finish_reason).


def test_single_tool_call(on, fake):
    transcript = agent(on.client, f"Read a {read_marker('a.txt')}", [PLAIN_READ])
    assert transcript.ran == [{"name": "read", "filePath": "a.txt"}]
    assert transcript.answer == "Tool said: ALPHA-1"
    on.repaired(
        "tool call 0: index 0 assigned",
        "finish_reason stop -> tool_calls",
        "packed thought signature into id of call call_1",
        "restored thought signature for call call_1",
    )


def test_single_tool_call_stops_without_the_stream_repair(off, fake):
    session = off("stream_tools")
    transcript = agent(session.client, f"Read a {read_marker('a.txt')}", [PLAIN_READ])
    session.options_held()
    # Gemini says "stop" although it called a tool: the loop ends there, the tool never runs, no answer.
    [step] = transcript.steps
    assert step.finish == "stop" and step.calls and step.calls[0]["index"] is None
    assert transcript.ran == [] and transcript.answer == ""
    assert "repaired: tool call" not in session.log() and "repaired: finish_reason" not in session.log()


def test_two_parallel_tool_calls(on, fake):
    transcript = agent(on.client, f"Read both {read_marker('a.txt')} {read_marker('b.txt')} [empty-ids]", [PLAIN_READ])
    assert [r["filePath"] for r in transcript.ran] == ["a.txt", "b.txt"]
    assert transcript.answer == "Tool said: ALPHA-1 | BRAVO-2"
    ids = [c["id"] for c in transcript.steps[0].calls]
    assert all(ids) and len(set(ids)) == 2
    on.repaired("tool call 1: index 1 assigned", "tool call 0: id generated", "tool call 1: id generated")


def test_two_parallel_tool_calls_merge_without_the_stream_repair(off, fake):
    session = off("stream_tools")
    step = collect(
        session.client.chat.completions.create(
            model=MODEL,
            stream=True,
            tools=[PLAIN_READ],
            messages=[{"role": "user", "content": f"Read both {read_marker('a.txt')} {read_marker('b.txt')}"}],
        )
    )
    session.options_held()
    # Without an index both calls land in one slot: one call, two argument objects glued together.
    [call] = step.calls
    assert step.finish == "stop" and call["arguments"] == '{"filePath": "a.txt"}{"filePath": "b.txt"}'
    with pytest.raises(json.JSONDecodeError):
        json.loads(call["arguments"])


# Gemini 3 thought signatures.


def test_three_step_tool_conversation(on, fake):
    transcript = agent(on.client, f"Read a three times {read_marker('a.txt')} [steps:3]", [PLAIN_READ])
    assert len(transcript.ran) == 3 and transcript.answer == "Tool said: ALPHA-1 | ALPHA-1 | ALPHA-1"
    turns = tool_call_turns(fake.chat_requests()[-1])
    assert [t[0]["id"] for t in turns] == ["call_1", "call_2", "call_3"]
    assert all(signature_of(t[0]) not in (None, fake_scripts.BYPASS_SIGNATURE) for t in turns)
    on.repaired(*(f"restored thought signature for call call_{n}" for n in (1, 2, 3)))


def test_three_step_conversation_fails_at_step_two_without_signatures(off, fake):
    session = off("signatures")
    with pytest.raises(openai.BadRequestError) as caught:
        agent(session.client, f"Read a three times {read_marker('a.txt')} [steps:3]", [PLAIN_READ])
    session.options_held()
    assert "Function call is missing a thought_signature" in caught.value.message
    assert "default_api:read" in caught.value.message and len(fake.chat_requests()) == 2
    assert "thought signature" not in session.log()


@pytest.mark.parametrize("repaired", [True, False], ids=["on", "off"])
def test_history_without_signatures_gets_the_bypass(on, off, fake, repaired):
    """A conversation begun with another model has tool calls Gemini 3 never signed: nothing to restore."""
    session = on if repaired else off("signatures")
    call = {"id": "toolu_01", "type": "function", "function": {"name": "read", "arguments": '{"filePath": "a.txt"}'}}
    history = [
        {"role": "user", "content": "What is in a.txt?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "toolu_01", "content": "ALPHA-1"},
    ]
    if not repaired:
        with pytest.raises(openai.BadRequestError) as caught:
            agent(session.client, "Thanks, now say hi", [PLAIN_READ], messages=history)
        session.options_held()
        assert "Function call is missing a thought_signature" in caught.value.message
        return
    transcript = agent(session.client, "Thanks, now say hi", [PLAIN_READ], messages=history)
    assert transcript.answer.startswith("Hello from fake Gemini")
    [[call]] = tool_call_turns(fake.chat_requests()[-1])
    assert signature_of(call) == fake_scripts.BYPASS_SIGNATURE
    session.repaired("bypass signature for call toolu_01")


# Tool schemas.


@pytest.mark.parametrize("repaired", [True, False], ids=["on", "off"])
def test_zod_schema(on, off, fake, repaired):
    session = on if repaired else off("schemas")
    prompt = f"Read a {read_marker('a.txt')}"
    if not repaired:
        with pytest.raises(openai.BadRequestError) as caught:
            agent(session.client, prompt, [ZOD_READ])
        session.options_held()
        assert 'Unknown name "$schema"' in caught.value.message
        assert "function_declarations[0].parameters" in caught.value.message
        return
    assert agent(session.client, prompt, [ZOD_READ]).answer == "Tool said: ALPHA-1"
    sent = fake.chat_requests()[0]["body"]["tools"][0]["function"]["parameters"]
    assert {"$schema", "additionalProperties"}.isdisjoint(sent)
    assert set(sent["properties"]) == {"filePath", "offset", "encoding", "tags"}
    session.repaired("tools[0] read: removed $schema")
    note = next(line for line in session.log().splitlines() if "repaired: tools[0] read:" in line)
    assert all(word in note for word in ("additionalProperties", "exclusiveMinimum", "propertyNames", "const")), note


# Request fields Gemini refuses.


@pytest.mark.parametrize("repaired", [True, False], ids=["on", "off"])
def test_refused_fields(on, off, fake, repaired):
    session = on if repaired else off("fields")
    fields = {"prompt_cache_key": "session-42", "extra_body": {"reasoning": {"effort": "low"}}}
    prompt = f"Read a {read_marker('a.txt')}"
    if not repaired:
        with pytest.raises(openai.BadRequestError) as caught:
            agent(session.client, prompt, [PLAIN_READ], **fields)
        session.options_held()
        assert 'Unknown name "prompt_cache_key"' in caught.value.message
        return
    assert agent(session.client, prompt, [PLAIN_READ], **fields).answer == "Tool said: ALPHA-1"
    for request in fake.chat_requests():
        body = request["body"]
        assert body["reasoning_effort"] == "low" and {"prompt_cache_key", "reasoning"}.isdisjoint(body)
    session.repaired("dropped field prompt_cache_key", "translated reasoning.effort -> reasoning_effort")


# Errors.


@pytest.mark.parametrize("repaired", [True, False], ids=["on", "off"])
@pytest.mark.parametrize(
    "code, error", [(429, openai.RateLimitError), (400, openai.BadRequestError), (503, openai.InternalServerError)]
)
def test_list_wrapped_errors(on, off, fake, repaired, code, error):
    session = on if repaired else off("errors")
    with pytest.raises(error) as caught:
        session.client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"[error:{code}]"}])
    expected = fake_scripts.ERROR_MESSAGES.get(code, f"Scripted error {code}.")
    if repaired:
        # OpenAI's shape: the SDK finds message, type and code where it looks for them.
        assert caught.value.body["message"] == expected and caught.value.type and caught.value.code is not None
        session.repaired("error reshaped to OpenAI's shape")
    else:
        session.options_held()
        # Gemini's list reaches the client as it is: no type, no code, and `body["error"]` is a TypeError.
        assert isinstance(caught.value.body, list) and caught.value.body[0]["error"]["message"] == expected
        assert caught.value.type is None and caught.value.code is None
        assert "error reshaped" not in session.log()
    if code == 429:
        assert caught.value.response.headers.get("retry-after") == "7"
