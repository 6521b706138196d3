"""End to end: the real proxy (mitm_run.sh -> mitmdump), the fake Gemini upstream, the real openai SDK."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import openai
import pytest

from tests.conftest import RUN_SH, free_port
from tests.support import direct

pytestmark = pytest.mark.e2e

READ_TOOL = {
    "type": "function",
    "function": {
        "name": "read",
        "description": "Read a file",
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"filePath": {"type": "string"}},
            "required": ["filePath"],
            "additionalProperties": False,
        },
    },
}


def http_call(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    status, response_headers, data = direct(request)
    return status, dict(response_headers), data


def test_health_and_models_are_answered_locally(proxy, fake):
    status, _, body = http_call(f"{proxy.root_url}/health")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok"
    assert health["config"].endswith(".json") and health["models"] >= 1
    for path in ("/models", "/v1/models"):
        status, _, body = http_call(f"{proxy.root_url}{path}")
        ids = [m["id"] for m in json.loads(body)["data"]]
        assert status == 200 and "local-model" in ids
    assert fake.requests == []  # nothing was forwarded


def test_non_streaming_reaches_upstream_as_gemini_and_returns_alias(openai_client, fake):
    completion = openai_client.chat.completions.create(
        model="local-model", messages=[{"role": "user", "content": "ping"}]
    )
    assert completion.model == "local-model"
    assert "ping" in completion.choices[0].message.content
    upstream = fake.requests[-1]
    assert upstream["body"]["model"] == "gemini-2.5-flash"
    assert upstream["headers"]["Authorization"] == f"Bearer {fake.key}"
    assert upstream["path"].endswith("/v1beta/openai/chat/completions")


def test_streaming_is_incremental_and_renamed(openai_client):
    stream = openai_client.chat.completions.create(
        model="local-model", stream=True, messages=[{"role": "user", "content": "count [chunks:6:300]"}]
    )
    arrivals, models = [], set()
    for chunk in stream:
        arrivals.append(time.monotonic())
        models.add(chunk.model)
    assert models == {"local-model"}
    # 6 chunks 300 ms apart: the first must arrive long before the last was sent.
    assert len(arrivals) >= 6 and arrivals[-1] - arrivals[0] > 1.0


def test_streamed_tool_calls_come_back_indexed_with_tool_calls_finish(openai_client, fake):
    stream = openai_client.chat.completions.create(
        model="local-model",
        stream=True,
        tools=[READ_TOOL],
        messages=[{"role": "user", "content": 'read two [tool:read {"filePath": "a"}] [tool:read {"filePath": "b"}]'}],
    )
    calls, finish = {}, None
    for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            entry = calls.setdefault(call.index, {"id": "", "args": ""})
            entry["id"] = call.id or entry["id"]
            entry["args"] += call.function.arguments or ""
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    assert finish == "tool_calls"
    assert [json.loads(c["args"])["filePath"] for _, c in sorted(calls.items())] == ["a", "b"]
    assert all(c["id"] for c in calls.values()) and len({c["id"] for c in calls.values()}) == 2
    assert "$schema" not in json.dumps(fake.requests[-1]["body"]["tools"])


def test_tool_result_round_trip_non_streaming(openai_client):
    messages = [{"role": "user", "content": 'look [tool:read {"filePath": "x.txt"}]'}]
    first = openai_client.chat.completions.create(model="local-3", messages=messages, tools=[READ_TOOL])
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls" and first.model == "local-3"
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "FILE-CONTENTS-42"},
    ]
    second = openai_client.chat.completions.create(model="local-3", messages=messages, tools=[READ_TOOL])
    assert "FILE-CONTENTS-42" in second.choices[0].message.content


@pytest.mark.parametrize(
    "body, status",
    [
        (b"not json", 400),
        (b"[1, 2]", 400),
        (b'{"messages": []}', 400),
        (b'{"model": 5, "messages": []}', 400),
        (b'{"model": "local-model", "messages": "hi"}', 400),
        (b'{"model": "local-model", "messages": [1]}', 400),
        (b'{"model": "../../etc", "messages": []}', 400),
        (b'{"model": "' + b"m" * 10_000 + b'", "messages": []}', 400),
        (b'\xff\xfe{"model": "x"}', 400),
        (b"[" * 5000 + b"]" * 5000, 400),
    ],
)
def test_bad_input_gets_openai_error_and_nothing_forwarded(proxy, fake, body, status):
    code, headers, raw = http_call(
        f"{proxy.base_url}/chat/completions", "POST", body, {"content-type": "application/json"}
    )
    error = json.loads(raw)["error"]
    assert code == status and error["message"] and error["type"] == "invalid_request_error" and "code" in error
    assert fake.requests == []
    assert http_call(f"{proxy.root_url}/health")[0] == 200  # still serving


def test_upstream_errors_are_reshaped(openai_client):
    with pytest.raises(openai.RateLimitError) as caught:
        openai_client.chat.completions.create(
            model="local-model", messages=[{"role": "user", "content": "[error:429]"}]
        )
    assert caught.value.status_code == 429
    assert caught.value.response.headers.get("retry-after") == "7"
    body = caught.value.response.json()
    assert body["error"]["type"] == "rate_limit_error" and body["error"]["message"]
    with pytest.raises(openai.InternalServerError) as caught:
        openai_client.chat.completions.create(
            model="local-model", messages=[{"role": "user", "content": "[error:500]"}]
        )
    assert caught.value.response.json()["error"]["type"] == "api_error"


def test_upstream_down_gives_502_openai_shaped(proxy_factory):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    proxy = proxy_factory(env={"GEMINI_API_BASE": f"http://127.0.0.1:{dead_port}/v1beta/openai/"})
    code, _, raw = http_call(
        f"{proxy.base_url}/chat/completions",
        "POST",
        json.dumps({"model": "local-model", "messages": [{"role": "user", "content": "x"}]}).encode(),
        {"content-type": "application/json"},
    )
    assert code == 502 and json.loads(raw)["error"]["code"] == "upstream_unreachable"


def test_cut_stream_ends_promptly_with_the_proxys_error_event(openai_client, fake):
    started = time.monotonic()
    stream = openai_client.chat.completions.create(
        model="local-model", stream=True, messages=[{"role": "user", "content": "[cut]"}]
    )
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk)
    assert time.monotonic() - started < 10
    # The stream's last event, not a broken connection (APIConnectionError) or a status (APIStatusError).
    assert type(caught.value) is openai.APIError
    error = caught.value.body
    assert error["code"] == "upstream_unreachable" and error["type"] == "api_error"
    assert caught.value.message == error["message"] and error["message"].startswith(f"Upstream {fake.base_url}")
    assert received and {c.model for c in received} == {"local-model"}  # the part sent before the cut
    assert fake.wait_event("cut")["seq"] == fake.chat_requests()[-1]["seq"]


def test_key_never_in_the_log_and_loopback_bind(proxy, openai_client, fake):
    openai_client.chat.completions.create(model="local-model", messages=[{"role": "user", "content": "hi"}])
    assert fake.key not in proxy.log_text()
    assert "local-model -> openai/gemini-2.5-flash" in proxy.log_text()
    with open("/proc/net/tcp") as f:
        listening = [line.split() for line in f.readlines()[1:] if line.split()[3] == "0A"]
    ours = [row for row in listening if int(row[1].split(":")[1], 16) == proxy.port]
    assert ours and all(row[1].split(":")[0] == "0100007F" for row in ours)  # 127.0.0.1 only


def test_proxy_api_key_guards_the_port(proxy_factory, fake):
    proxy = proxy_factory(env={"PROXY_API_KEY": "secret-proxy-key"})
    client = openai.OpenAI(base_url=proxy.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="local-model", messages=[{"role": "user", "content": "x"}])
    good = openai.OpenAI(base_url=proxy.base_url, api_key="secret-proxy-key", max_retries=0)
    assert (
        good.chat.completions.create(model="local-model", messages=[{"role": "user", "content": "x"}]).model
        == "local-model"
    )
    assert fake.requests[-1]["headers"]["Authorization"] == f"Bearer {fake.key}"  # never forwarded


def test_other_paths_go_to_the_default_upstream_with_the_key(openai_client, fake):
    vectors = openai_client.embeddings.create(model="gemini-embedding-001", input=["a", "b"])
    assert len(vectors.data) == 2
    upstream = fake.requests[-1]
    assert upstream["path"].endswith("/v1beta/openai/embeddings")
    assert upstream["headers"]["Authorization"] == f"Bearer {fake.key}"


def test_a_broken_config_at_start_up_stops_the_proxy_with_a_clear_message(tmp_path):
    config = tmp_path / "opencode.json"
    config.write_text('{\n  "provider": {\n    "local": [1,\n  }\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "PROXY_", "OPENCODE_"))}
    env.update(OPENCODE_CONFIG=str(config), PROXY_PORT=str(free_port()))
    done = subprocess.run([str(RUN_SH)], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"Config file {config} is not valid JSON at line 4, column 3" in output
    assert "Traceback" not in output
