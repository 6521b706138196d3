"""The fake Gemini behaves like Gemini's OpenAI-compatible endpoint, so end-to-end tests can trust it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import ROOT, free_port
from tests.fake_gemini import FakeGemini
from tests.fake_scripts import BYPASS_SIGNATURE, parse_script

READ_TOOL = {
    "type": "function",
    "function": {
        "name": "read",
        "description": "Read a file.",
        "parameters": {
            "type": "object",
            "properties": {"path": {"type": "string"}, "default": {"type": "integer"}},
            "required": ["path"],
        },
    },
}
TOOLS_TEXT = 'read two [tool:read {"path": "a.txt"}] [tool:read {"path": "b.txt"}]'


def post(
    fake: FakeGemini, body: dict[str, Any], key: str | None = "", path: str = "chat/completions"
) -> httpx.Response:
    headers = {} if key is None else {"Authorization": f"Bearer {key or fake.key}"}
    return httpx.post(fake.base_url + path, json=body, headers=headers, timeout=30)


def chat(text: str, model: str = "gemini-2.5-flash", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], "tools": [READ_TOOL], **extra}


def sse_events(response: httpx.Response) -> list[Any]:
    lines = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]
    return [line if line == "[DONE]" else json.loads(line) for line in lines]


def error_of(response: httpx.Response, code: int) -> dict[str, Any]:
    assert response.status_code == code, response.text
    body = response.json()
    assert isinstance(body, list) and len(body) == 1, body  # Gemini wraps its errors in a list
    return body[0]["error"]


@pytest.fixture
def client(fake: FakeGemini) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key=fake.key, max_retries=0, timeout=30)


def test_text_answer_streams_like_gemini(fake: FakeGemini) -> None:
    events = sse_events(post(fake, chat("hello there", stream=True, stream_options={"include_usage": True})))
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert {c["model"] for c in chunks} == {"gemini-2.5-flash"}
    assert (
        "".join(c["choices"][0]["delta"]["content"] for c in chunks) == "Hello from fake Gemini. You said: hello there"
    )
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert set(chunks[-1]["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert all("usage" not in c for c in chunks[:-1])


def test_usage_only_when_asked(fake: FakeGemini) -> None:
    assert all("usage" not in e for e in sse_events(post(fake, chat("hi", stream=True)))[:-1])


def test_streamed_tool_calls_have_no_index_and_finish_with_stop(fake: FakeGemini) -> None:
    chunks = sse_events(post(fake, chat(TOOLS_TEXT, "gemini-3-pro-preview", stream=True)))[:-1]
    calls = [c["choices"][0]["delta"]["tool_calls"] for c in chunks]
    assert [len(each) for each in calls] == [1, 1]  # parallel calls in separate chunks
    assert all("index" not in each[0] for each in calls)
    assert [json.loads(each[0]["function"]["arguments"]) for each in calls] == [{"path": "a.txt"}, {"path": "b.txt"}]
    assert [each[0]["id"] for each in calls] == ["call_1", "call_2"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"  # Gemini's bug, kept on purpose
    assert calls[0][0]["extra_content"]["google"]["thought_signature"]
    assert "extra_content" not in calls[1][0]  # only the first call of a parallel set is signed


def test_gemini_2_5_does_not_sign(fake: FakeGemini) -> None:
    chunks = sse_events(post(fake, chat(TOOLS_TEXT, stream=True)))[:-1]
    assert len(chunks) == 2  # the two calls, so the check below looks at something
    assert all("extra_content" not in c["choices"][0]["delta"]["tool_calls"][0] for c in chunks)


def test_no_tool_calls_when_no_tools_are_offered(fake: FakeGemini) -> None:
    message = post(fake, {**chat(TOOLS_TEXT), "tools": []}).json()["choices"][0]["message"]
    assert "tool_calls" not in message and message["content"].startswith("Hello from fake Gemini.")


def test_empty_ids(fake: FakeGemini) -> None:
    chunks = sse_events(post(fake, chat("[empty-ids] [tool:glob {}]", stream=True)))[:-1]
    assert chunks[0]["choices"][0]["delta"]["tool_calls"][0]["id"] == ""


def test_unstreamed_tool_calls_with_openai_sdk(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(
        model="gemini-3-pro-preview",
        tools=[READ_TOOL],  # type: ignore
        messages=[{"role": "user", "content": TOOLS_TEXT}],
    )
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [c.function.name for c in choice.message.tool_calls or []] == ["read", "read"]
    assert result.usage and result.usage.total_tokens > 0


def conversation(fake: FakeGemini, model: str, signature: str | None = "issued") -> list[dict[str, Any]]:
    """A first turn that called a tool, its signature replaced unless "issued", and the tool's result."""
    first = post(fake, chat('[tool:read {"path": "a.txt"}]', model)).json()["choices"][0]["message"]
    call = first["tool_calls"][0]
    if signature != "issued":
        call.pop("extra_content", None)
    if signature not in ("issued", None):
        call["extra_content"] = {"google": {"thought_signature": signature}}
    return [
        {"role": "user", "content": '[tool:read {"path": "a.txt"}]'},
        first,
        {"role": "tool", "tool_call_id": call["id"], "content": "FILE CONTENTS 42"},
    ]


def test_missing_signature_is_refused(fake: FakeGemini) -> None:
    messages = conversation(fake, "gemini-3-pro-preview", None)
    error = error_of(post(fake, {**chat("", "gemini-3-pro-preview"), "messages": messages}), 400)
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"].startswith("Function call is missing a thought_signature in functionCall parts.")
    assert "`default_api:read`" in error["message"]


@pytest.mark.parametrize("signature", ["issued", BYPASS_SIGNATURE])
def test_signature_or_bypass_is_accepted(fake: FakeGemini, signature: str) -> None:
    messages = conversation(fake, "gemini-3-pro-preview", signature)
    response = post(fake, {**chat("", "gemini-3-pro-preview"), "messages": messages})
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Tool said: FILE CONTENTS 42"


def test_forged_signature_is_refused(fake: FakeGemini) -> None:
    messages = conversation(fake, "gemini-3-pro-preview", "Zm9yZ2Vk")
    assert (
        "Thought signature is not valid"
        in error_of(post(fake, {"model": "gemini-3-pro-preview", "messages": messages}), 400)["message"]
    )


def test_gemini_2_5_needs_no_signature(fake: FakeGemini) -> None:
    messages = conversation(fake, "gemini-2.5-flash", None)
    assert post(fake, {**chat(""), "messages": messages}).status_code == 200


def test_tool_result_must_answer_a_call(fake: FakeGemini) -> None:
    messages = conversation(fake, "gemini-2.5-flash", None)
    messages[2]["tool_call_id"] = "call_999"
    assert "call_999" in error_of(post(fake, {**chat(""), "messages": messages}), 400)["message"]


def test_steps_call_one_tool_per_step(fake: FakeGemini) -> None:
    text = '[steps:3] [tool:bash {"command": "echo hi"}]'
    messages: list[dict[str, Any]] = [{"role": "user", "content": text}]
    for step in range(3):
        message = post(fake, {**chat(""), "messages": messages}).json()["choices"][0]["message"]
        assert [c["id"] for c in message["tool_calls"]] == [f"call_{step + 1}"]
        messages += [message, {"role": "tool", "tool_call_id": f"call_{step + 1}", "content": f"out{step}"}]
    final = post(fake, {**chat(""), "messages": messages}).json()["choices"][0]
    assert final["finish_reason"] == "stop"
    assert final["message"]["content"] == "Tool said: out0 | out1 | out2"


@pytest.mark.parametrize(
    ("schema", "name", "where"),
    [
        ({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}, "$schema", ""),
        ({"type": "object", "additionalProperties": False}, "additionalProperties", ""),
        (
            {"type": "object", "properties": {"n": {"type": "integer", "exclusiveMinimum": 0}}},
            "exclusiveMinimum",
            ".properties[0].value",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "array", "items": {"const": 1}}}},
            "const",
            ".properties[0].value.items",
        ),
    ],
)
def test_unknown_schema_keywords_are_refused(fake: FakeGemini, schema: dict[str, Any], name: str, where: str) -> None:
    tools = [READ_TOOL, {"type": "function", "function": {"name": "x", "parameters": schema}}]
    error = error_of(post(fake, {**chat("hi"), "tools": tools}), 400)
    assert error["message"] == (
        f'Invalid JSON payload received. Unknown name "{name}" at '
        f"'tools[1].function_declarations[0].parameters{where}': Cannot find field."
    )


def test_null_in_any_of_is_refused(fake: FakeGemini) -> None:
    schema = {"type": "object", "properties": {"p": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}
    tools = [{"type": "function", "function": {"name": "x", "parameters": schema}}]
    assert "any_of[1].type" in error_of(post(fake, {**chat("hi"), "tools": tools}), 400)["message"]


@pytest.mark.parametrize("field", ["parallel_tool_calls", "prompt_cache_key", "user"])
def test_unknown_fields_are_refused(fake: FakeGemini, field: str) -> None:
    error = error_of(post(fake, chat("hi", **{field: True})), 400)
    assert error == {
        "code": 400,
        "status": "INVALID_ARGUMENT",
        "message": f'Invalid JSON payload received. Unknown name "{field}": Cannot find field.',
    }


@pytest.mark.parametrize(("key", "code"), [("wrong-key", 400), (None, 401)])
def test_bad_key(fake: FakeGemini, key: str | None, code: int) -> None:
    error = error_of(post(fake, chat("hi"), key=key), code)
    assert error["message"] == "API key not valid. Please pass a valid API key."
    assert error["details"][0]["reason"] == "API_KEY_INVALID"


def test_unknown_model(fake: FakeGemini) -> None:
    error = error_of(post(fake, chat("hi", "gpt-4o")), 404)
    assert error["status"] == "NOT_FOUND" and error["message"].startswith("models/gpt-4o is not found")


@pytest.mark.parametrize(("code", "status"), [(429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL"), (503, "UNAVAILABLE")])
def test_scripted_errors(fake: FakeGemini, code: int, status: str) -> None:
    response = post(fake, chat(f"[error:{code}]", stream=True))
    assert error_of(response, code)["status"] == status
    assert response.headers.get("Retry-After") == ("7" if code == 429 else None)


def test_error_only_the_first_times(fake: FakeGemini) -> None:
    codes = [post(fake, chat("[error:503:2] again")).status_code for _ in range(3)]
    assert codes == [503, 503, 200]


def test_sdk_sees_the_list_wrapped_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}], parallel_tool_calls=False
        )
    assert isinstance(caught.value.body, list)


def test_cut_ends_without_done(fake: FakeGemini) -> None:
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream(
            "POST",
            fake.base_url + "chat/completions",
            json=chat("[cut] please", stream=True),
            headers={"Authorization": f"Bearer {fake.key}"},
        ) as response:
            for part in response.iter_raw():
                received += part
    assert received.startswith(b"data: {") and b"[DONE]" not in received and b"finish_reason" not in received
    assert fake.wait_event("cut")["chunks_sent"] >= 2


def test_chunks_are_spaced_out(client: openai.OpenAI) -> None:
    start, times = time.monotonic(), []
    stream = client.chat.completions.create(
        model="gemini-2.5-flash", stream=True, messages=[{"role": "user", "content": "[chunks:5:100]"}]
    )
    for chunk in stream:
        times.append(time.monotonic() - start)
        assert chunk.choices[0].delta.content == f"chunk {len(times) - 1} "
    assert len(times) == 5 and times[-1] - times[0] >= 0.35


def test_big_and_slow(client: openai.OpenAI) -> None:
    start = time.monotonic()
    result = client.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "[big:5000] [slow:0.3]"}]
    )
    assert len(result.choices[0].message.content or "") == 5000
    assert time.monotonic() - start >= 0.3


def test_requests_are_recorded_and_served_over_the_control_api(fake: FakeGemini) -> None:
    post(fake, chat("recorded?"))
    [record] = fake.requests
    assert record["path"] == "/v1beta/openai/chat/completions" and record["method"] == "POST"
    assert record["headers"]["Authorization"] == f"Bearer {fake.key}"
    assert record["body"]["messages"][0]["content"] == "recorded?"
    assert httpx.get(fake.root_url + "/_fake/requests").json()[0]["body"] == record["body"]
    assert httpx.post(fake.root_url + "/_fake/reset").json() == {"ok": True}
    assert fake.requests == [] and httpx.get(fake.root_url + "/_fake/events").json() == []


def test_client_disconnect_is_recorded(fake: FakeGemini) -> None:
    with httpx.stream(
        "POST",
        fake.base_url + "chat/completions",
        json=chat("[stall:5]", stream=True),
        headers={"Authorization": f"Bearer {fake.key}"},
    ) as response:
        next(response.iter_raw())
    left = time.time()
    event = fake.wait_event("disconnect", timeout=2)
    assert event["chunks_sent"] == 1 and "mid-stream" in event["text"]
    assert event["time"] - left < 1


def test_models_embeddings_and_root_paths(fake: FakeGemini) -> None:
    headers = {"Authorization": f"Bearer {fake.key}"}
    models = httpx.get(fake.root_url + "/models", headers=headers).json()
    assert "models/gemini-2.5-flash" in [m["id"] for m in models["data"]]
    vectors = post(fake, {"model": "gemini-embedding-001", "input": ["a", "b"]}, path="embeddings").json()
    assert [len(d["embedding"]) for d in vectors["data"]] == [8, 8]
    assert httpx.post(fake.root_url + "/chat/completions", json=chat("root"), headers=headers).status_code == 200


def test_parse_script() -> None:
    script = parse_script('[tool:read {"path": "x]"}] [tool:list] [steps:2] [stall:1.5] [chunks:3:20] [error:429:1]')
    assert script.tools == [("read", {"path": "x]"}), ("list", {})]
    assert (script.steps, script.stall, script.chunks, script.error) == (2, 1.5, (3, 20), (429, 1))


@pytest.mark.e2e  # a fresh Python process
def test_runs_as_a_module() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_gemini", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/_fake/requests").json() == []
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("python -m tests.fake_gemini did not answer within 20 s")
    finally:
        process.terminate()
        process.wait(10)
