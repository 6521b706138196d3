"""OpenTelemetry export end to end: a real mitmdump (mitm_run.sh) with OpenTelemetry's own variables, the fake
Gemini upstream, the openai SDK as the client, and a real OTLP/HTTP receiver that decodes what arrives
(tests/otlp_receiver.py)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator

import openai
import pytest

from tests.conftest import free_port
from tests.otlp_receiver import OtlpReceiver, Span

pytestmark = pytest.mark.e2e

PROXY_KEY = "proxy-secret-key-5678901234"
READY = "OpenTelemetry: GenAI spans go to"
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read",
            "description": "Read a file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
        },
    }
]


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    started = OtlpReceiver().start()
    yield started
    started.stop()


@pytest.fixture(autouse=True)
def no_developer_otel(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own OTEL_* variables must not reach the proxies these tests start."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


def traced_proxy(proxy_factory, endpoint: str, **env: str):
    proxy = proxy_factory(
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "OTEL_SERVICE_NAME": "proxy-under-test",
            "PROXY_API_KEY": PROXY_KEY,
            **env,
        }
    )
    deadline = time.monotonic() + 30
    while READY not in proxy.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert READY in proxy.log_text(), proxy.log_text()[-3000:]
    return proxy


def client(proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key=PROXY_KEY, max_retries=0, timeout=30)


def header(request: dict, name: str) -> str | None:
    return next((v for k, v in request["headers"].items() if k.lower() == name), None)


def assert_no_secret(receiver: OtlpReceiver, fake) -> None:
    """No key in any decoded attribute, status or resource, nor anywhere in the bytes that arrived."""
    for secret in (fake.key, PROXY_KEY):
        assert receiver.raw and not any(secret.encode() in body for body in receiver.raw)
        for span in receiver.spans:
            texts = [repr(span.attributes), span.status_message, repr(span.resource)]
            assert not any(secret in text for text in texts), span


def two_turns(proxy) -> None:
    """A session's two turns: the model calls `read` (streamed), then answers from its result."""
    messages: list = [{"role": "user", "content": 'read it [tool:read {"path": "a.txt"}]'}]
    stream = client(proxy).chat.completions.create(
        model="local-model",
        messages=messages,
        tools=TOOLS,
        stream=True,
        stream_options={"include_usage": True},
        temperature=0.3,
        max_tokens=200,
    )
    calls = {}
    for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            calls.setdefault(call.index, call)
    [call] = calls.values()
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call.id, "type": "function", "function": call.function.model_dump()}],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "hello from a.txt"},
    ]
    answer = client(proxy).chat.completions.create(model="local-model", messages=messages, tools=TOOLS)
    assert "hello from a.txt" in (answer.choices[0].message.content or "")


def by_turn(spans: list[Span]) -> list[Span]:
    return sorted(spans, key=lambda s: s.start_ns)


def test_a_two_turn_session_with_a_tool_call(proxy_factory, receiver, fake):
    proxy = traced_proxy(proxy_factory, receiver.endpoint)
    two_turns(proxy)
    first, second = by_turn(receiver.wait_spans(2))
    for span in (first, second):
        a = span.attributes
        assert span.name == "chat gemini-2.5-flash" and span.kind == 3  # CLIENT
        assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "gcp.gemini"
        assert a["gen_ai.request.model"] == "gemini-2.5-flash"
        assert a["translation_proxy.client_model"] == "local-model"
        assert (a["server.address"], a["server.port"]) == ("127.0.0.1", fake.port)
        assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
        assert a["translation_proxy.replica"].endswith(f":{proxy.port}")
        assert "error.type" not in a and span.status_code != 2
        assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a  # content is opt-in
        assert span.resource["service.name"] == "proxy-under-test"
    assert first.attributes["gen_ai.conversation.id"] == second.attributes["gen_ai.conversation.id"]
    assert (
        first.attributes["translation_proxy.session.turn"],
        second.attributes["translation_proxy.session.turn"],
    ) == (
        1,
        2,
    )
    assert first.attributes["gen_ai.response.finish_reasons"] == ["tool_call"]
    assert first.attributes["translation_proxy.tool_calls"] == ["read"]
    assert (
        first.attributes["gen_ai.request.temperature"] == 0.3 and first.attributes["gen_ai.request.max_tokens"] == 200
    )
    assert first.attributes["gen_ai.response.id"] and first.attributes["gen_ai.response.model"]
    assert 0 < first.attributes["gen_ai.response.time_to_first_chunk"] < 10
    assert [name for name, _ in first.events] == ["gen_ai.first_chunk"]
    assert second.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert first.start_ns < first.end_ns <= second.start_ns < second.end_ns
    assert_no_secret(receiver, fake)


def test_the_clients_traceparent_and_the_one_sent_upstream(proxy_factory, receiver, fake):
    proxy = traced_proxy(proxy_factory, receiver.endpoint)
    client(proxy).chat.completions.create(
        model="local-model",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01", "tracestate": "opencode=1"},
    )
    [span] = receiver.wait_spans(1)
    assert (span.trace_id, span.parent_span_id) == (CLIENT_TRACE, CLIENT_SPAN)
    [upstream] = fake.chat_requests()
    assert header(upstream, "traceparent") == f"00-{CLIENT_TRACE}-{span.span_id}-01"
    assert header(upstream, "tracestate") == "opencode=1"


def test_an_upstream_500(proxy_factory, receiver, fake):
    proxy = traced_proxy(proxy_factory, receiver.endpoint)
    with pytest.raises(openai.InternalServerError):
        client(proxy).chat.completions.create(
            model="local-model", messages=[{"role": "user", "content": "[error:500]"}]
        )
    [span] = receiver.wait_spans(1)
    assert span.attributes["error.type"] == "500" and span.attributes["http.response.status_code"] == 500
    assert span.status_code == 2 and "500" in span.status_message
    assert_no_secret(receiver, fake)


def test_content_capture_on(proxy_factory, receiver, fake):
    proxy = traced_proxy(proxy_factory, receiver.endpoint, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
    two_turns(proxy)
    first, second = by_turn(receiver.wait_spans(2))
    import json

    assert json.loads(first.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": 'read it [tool:read {"path": "a.txt"}]'}]}
    ]
    [out] = json.loads(first.attributes["gen_ai.output.messages"])
    assert out["finish_reason"] == "tool_call"
    assert [(p["type"], p["name"], p["arguments"]) for p in out["parts"] if p["type"] == "tool_call"] == [
        ("tool_call", "read", {"path": "a.txt"})
    ]
    inputs = json.loads(second.attributes["gen_ai.input.messages"])
    assert inputs[-1] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": inputs[1]["parts"][0]["id"], "response": "hello from a.txt"}],
    }
    assert "hello from a.txt" in second.attributes["gen_ai.output.messages"]
    assert_no_secret(receiver, fake)


def test_a_dead_collector_neither_delays_nor_floods(proxy_factory, fake):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    proxy = traced_proxy(proxy_factory, dead, OTEL_EXPORTER_OTLP_TIMEOUT="1")
    chat = client(proxy)
    took = []
    for i in range(6):
        started = time.monotonic()
        chat.chat.completions.create(model="local-model", messages=[{"role": "user", "content": f"hi {i}"}])
        took.append(time.monotonic() - started)
        time.sleep(0.3)  # each request's span is a batch of its own, each export fails
    assert max(took) < 1.0, took
    deadline = time.monotonic() + 10
    while "cannot export spans" not in proxy.log_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = proxy.log_text()
    assert log.count("cannot export spans") == 1, log[-3000:]
    others = [line for line in log.splitlines() if "cannot export spans" not in line]
    noisy = [line for line in others if re.search(r"Traceback|Transient error|Failed to export|Queue full", line)]
    assert noisy == [], log[-3000:]
    assert proxy.alive()


def test_a_clean_stop_sends_what_is_queued(proxy_factory, receiver, fake):
    proxy = traced_proxy(proxy_factory, receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY="600000")  # never on its own
    client(proxy).chat.completions.create(model="local-model", messages=[{"role": "user", "content": "hi"}])
    time.sleep(0.5)
    assert receiver.spans == []
    assert proxy.stop() == 0
    [span] = receiver.wait_spans(1, timeout=1)
    assert span.name == "chat gemini-2.5-flash"


def test_no_export_without_the_variables(proxy_factory, fake):
    proxy = proxy_factory(env={"OTEL_SERVICE_NAME": "not-enough", "OTEL_EXPORTER_OTLP_HEADERS": "x=1"})
    client(proxy).chat.completions.create(model="local-model", messages=[{"role": "user", "content": "hi"}])
    [upstream] = fake.chat_requests()
    assert header(upstream, "traceparent") is None
    assert "OpenTelemetry" not in proxy.log_text()


def test_a_fallback_attempt_is_a_child_span_and_each_try_carries_its_own_traceparent(proxy_factory, receiver, fake):
    from tests.conftest import opencode_config

    port = free_port()
    config = opencode_config(port, {"local-model": "gemini-2.5-flash", "local-b": "gemini-2.0-flash"})
    config["provider"]["local"]["options"]["proxy"]["fallbacks"] = {"local-model": ["local-b"]}
    proxy = proxy_factory(
        port=port,
        config=config,
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "PROXY_API_KEY": PROXY_KEY,
        },
    )
    deadline = time.monotonic() + 30
    while READY not in proxy.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    stream = client(proxy).chat.completions.create(
        model="local-model",
        messages=[{"role": "user", "content": "[error:503:1] hello"}],
        stream=True,
        extra_headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"},
    )
    assert "You said" in "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    spans = receiver.wait_spans(2)
    [outer] = [s for s in spans if "translation_proxy.fallback.attempt" not in s.attributes]
    [attempt] = [s for s in spans if "translation_proxy.fallback.attempt" in s.attributes]
    assert (outer.trace_id, outer.parent_span_id) == (CLIENT_TRACE, CLIENT_SPAN)
    assert (attempt.trace_id, attempt.parent_span_id) == (CLIENT_TRACE, outer.span_id)
    assert attempt.name == "chat gemini-2.0-flash" and attempt.attributes["gen_ai.request.model"] == "gemini-2.0-flash"
    assert outer.attributes["translation_proxy.fallback.attempts"] == 2
    assert outer.attributes["translation_proxy.fallback.answered_by"] == "local-b"
    first, second = fake.chat_requests()
    assert [header(first, "traceparent"), header(second, "traceparent")] == [
        f"00-{CLIENT_TRACE}-{outer.span_id}-01",
        f"00-{CLIENT_TRACE}-{attempt.span_id}-01",
    ]
