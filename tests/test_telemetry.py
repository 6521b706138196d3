"""The telemetry addon and its attribute mapping, in-process: hooks called directly, spans caught by the SDK's
InMemorySpanExporter (the OTLP wire is tests/test_telemetry_e2e.py's)."""

from __future__ import annotations

import logging

import orjson
import pytest
from mitmproxy.test import taddons, tflow
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from addon.formats.exchange import Exchange
from addon.inspection import genai_attributes, genai_messages, otel_export, otel_quiet
from addon.inspection.telemetry import Telemetry
from addon.runtime.upstream_key import attach_key

KEY = "AIzaSyTESTKEY0123456789abcdef"
CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"


def chat_flow(body: dict | None = None, headers: dict | None = None, **record) -> tflow.HTTPFlow:
    flow = tflow.tflow()
    flow.request.host, flow.request.port, flow.request.path = "generativelanguage.googleapis.com", 443, "/v1/x"
    flow.request.content = orjson.dumps(body or {"model": "gemini-2.5-flash", "messages": []})
    for name, value in (headers or {}).items():
        flow.request.headers[name] = value
    attach_key(flow.request, KEY, "AIza…cdef")
    ex = Exchange.of(flow)
    ex.client_model, ex.upstream_model, ex.key, ex.provider, ex.is_gemini = (
        "local-model",
        "gemini-2.5-flash",
        "AIza…cdef",
        "gemini",
        True,
    )
    ex.client_request = {"method": "POST", "path": "/v1/chat/completions", "headers": list((headers or {}).items())}
    for name, value in record.items():
        setattr(ex, name, value)
    return flow


@pytest.fixture
def traced():
    memory = InMemorySpanExporter()
    addon = Telemetry()
    addon.export = otel_export.Export("host:8000", {}, exporter=memory)
    addon.replica = "host:8000"

    def spans():
        addon.export.processor.force_flush()
        return memory.get_finished_spans()

    yield addon, spans
    addon.export.provider.shutdown()


def answered(flow, status=200, content=b'{"id": "chatcmpl-42", "choices": []}'):
    flow.response = tflow.tresp(status_code=status, content=content)
    return flow


def test_one_client_span_with_the_genai_attributes(traced):
    addon, spans = traced
    body = {"model": "gemini-2.5-flash", "messages": [], "temperature": 0.2, "max_tokens": 100, "top_p": 0.9}
    flow = chat_flow(body, endpoint="POST /v1/chat/completions")
    with taddons.context(addon):
        addon.request(flow)
        ex = Exchange.of(flow)
        ex.answer = {
            "content": "hi",
            "tool_calls": [{"id": "c1", "name": "read", "arguments": "{}"}],
            "finish_reason": "tool_calls",
            "usage": {
                "prompt_tokens": 11,
                "completion_tokens": 7,
                "prompt_tokens_details": {"cached_tokens": 3},
                "completion_tokens_details": {"reasoning_tokens": 2},
            },
        }
        ex.session = {"id": "ses_1", "turn": 2, "parent_id": "ses_0"}
        ex.repairs, ex.tool_checks = ["schema repaired"], ["read: missing path"]
        addon.response(answered(flow))
    [span] = spans()
    a = dict(span.attributes)
    assert span.name == "chat gemini-2.5-flash" and span.kind is SpanKind.CLIENT
    assert span.start_time == int(flow.request.timestamp_start * 1e9)
    assert span.end_time == int(flow.response.timestamp_end * 1e9)
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "gcp.gemini"
    assert a["gen_ai.request.model"] == "gemini-2.5-flash" and a["gen_ai.response.model"] == "gemini-2.5-flash"
    assert a["gen_ai.response.id"] == "chatcmpl-42"
    assert a["gen_ai.response.finish_reasons"] == ("tool_call",)
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (11, 7)
    assert (a["gen_ai.usage.cache_read.input_tokens"], a["gen_ai.usage.reasoning.output_tokens"]) == (3, 2)
    assert (a["gen_ai.request.temperature"], a["gen_ai.request.max_tokens"], a["gen_ai.request.top_p"]) == (
        0.2,
        100,
        0.9,
    )
    assert (a["server.address"], a["server.port"]) == ("generativelanguage.googleapis.com", 443)
    assert a["gen_ai.conversation.id"] == "ses_1" and a["translation_proxy.session.parent_id"] == "ses_0"
    assert a["translation_proxy.client_model"] == "local-model" and a["translation_proxy.flow_id"] == flow.id
    assert a["translation_proxy.repairs"] == ("schema repaired",)
    assert a["translation_proxy.tool_call.findings"] == ("read: missing path",)
    assert a["translation_proxy.replica"] == "host:8000"
    assert "error.type" not in a and span.status.status_code is StatusCode.UNSET
    assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a  # content is opt-in


def test_the_clients_traceparent_is_the_parent_and_the_spans_goes_upstream(traced):
    addon, spans = traced
    traceparent = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
    flow = chat_flow(headers={"traceparent": traceparent, "tracestate": "vendor=1"})
    with taddons.context(addon):
        addon.request(flow)
        sent = flow.request.headers["traceparent"]
        addon.response(answered(flow))
    [span] = spans()
    assert format(span.context.trace_id, "032x") == CLIENT_TRACE
    assert format(span.parent.span_id, "016x") == CLIENT_SPAN
    assert sent == f"00-{CLIENT_TRACE}-{format(span.context.span_id, '016x')}-01"
    assert flow.request.headers.get_all("traceparent") == [sent]
    assert flow.request.headers["tracestate"] == "vendor=1"


def test_a_replay_replaces_the_traceparent_instead_of_adding_one(traced):
    addon, spans = traced
    flow = chat_flow()
    with taddons.context(addon):
        addon.request(flow)
        first = flow.request.headers["traceparent"]
        addon.response(answered(flow))
        flow.response, flow.is_replay = None, "request"
        addon.request(flow)
        addon.response(answered(flow))
    assert len(flow.request.headers.get_all("traceparent")) == 1
    assert flow.request.headers["traceparent"] != first
    assert len(spans()) == 2


def test_a_fallback_attempt_is_a_child_of_its_clients_span(traced):
    addon, spans = traced
    flow = chat_flow()
    with taddons.context(addon):
        addon.request(flow)
        attempt = chat_flow(fallback_of=flow.id, attempt=1)
        attempt.is_replay = "request"
        addon.request(attempt)
        assert attempt.request.headers["traceparent"] != flow.request.headers["traceparent"]
        addon.response(answered(attempt))
        Exchange.of(flow).attempts = [{"model": "local-model"}, {"model": "backup"}]
        addon.response(answered(flow))
    child, parent = spans()
    assert child.parent.span_id == parent.context.span_id
    assert child.attributes["translation_proxy.fallback.attempt"] == 1
    assert parent.attributes["translation_proxy.fallback.attempts"] == 2


def test_an_upstream_error_sets_error_type_and_status(traced):
    addon, spans = traced
    flow = chat_flow()
    with taddons.context(addon):
        addon.request(flow)
        Exchange.of(flow).error = f"upstream 500: boom {KEY}"
        addon.response(answered(flow, 500, b'{"error": {"message": "boom"}}'))
    [span] = spans()
    assert span.attributes["error.type"] == "500" and span.status.status_code is StatusCode.ERROR
    assert KEY not in (span.status.description or "") and "[redacted]" in span.status.description


def test_a_connection_error_ends_the_span(traced):
    addon, spans = traced
    flow = chat_flow()
    with taddons.context(addon):
        addon.request(flow)
        flow.error = tflow.terr("connection refused")
        addon.error(flow)
    [span] = spans()
    assert span.attributes["error.type"] == "connection_error"


def test_content_is_captured_only_when_asked(traced):
    addon, spans = traced
    addon.capture_content = True
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "list files"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "function": {"name": "ls", "arguments": '{"path": "."}'}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "a.txt"},
        ],
    }
    flow = chat_flow(body)
    with taddons.context(addon):
        addon.request(flow)
        Exchange.of(flow).answer = {"content": "a.txt", "tool_calls": [], "finish_reason": "stop"}
        addon.response(answered(flow))
    a = spans()[0].attributes
    assert orjson.loads(a["gen_ai.system_instructions"]) == [{"type": "text", "content": "be brief"}]
    assert orjson.loads(a["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "list files"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "ls", "arguments": {"path": "."}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "a.txt"}]},
    ]
    assert orjson.loads(a["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "a.txt"}], "finish_reason": "stop"}
    ]


def test_the_key_never_reaches_a_span(traced):
    addon, spans = traced
    addon.capture_content = True
    flow = chat_flow({"model": "m", "messages": [{"role": "user", "content": f"my key is {KEY}"}]})
    with taddons.context(addon):
        addon.request(flow)
        Exchange.of(flow).answer = {"content": f"echo {KEY}", "finish_reason": "stop"}
        addon.response(answered(flow))
    assert KEY not in repr(dict(spans()[0].attributes))


def test_passthrough_and_refused_requests_get_no_span(traced):
    addon, spans = traced
    refused, passthrough, untouched = chat_flow(key=None), chat_flow(passthrough=True), tflow.tflow()
    with taddons.context(addon):
        for flow in (refused, passthrough, untouched):
            addon.request(flow)
            assert "traceparent" not in flow.request.headers
            addon.response(answered(flow))
    assert spans() == ()


def test_nothing_without_the_variables(monkeypatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    addon = Telemetry()
    flow = chat_flow()
    with taddons.context(addon):
        addon.running()
        addon.request(flow)
        addon.response(answered(flow))
    assert addon.starting is None and addon.export is None and "traceparent" not in flow.request.headers
    assert addon.done() is None


@pytest.mark.parametrize(
    "environ, on",
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_enabled_by_opentelemetrys_own_variables(environ, on):
    assert otel_export.enabled(environ) is on


def test_quiet_exporter_warns_once_while_failing_and_once_when_back(caplog):
    from opentelemetry.sdk.trace.export import SpanExportResult

    results = [SpanExportResult.FAILURE] * 3 + [SpanExportResult.SUCCESS]

    class Failing:
        def export(self, spans):
            return results.pop(0)

    quiet = otel_quiet.QuietExporter(Failing(), "http://c:4318/v1/traces", otel_quiet._LastRecord())
    with caplog.at_level(logging.INFO):
        for _ in range(4):
            quiet.export([object()])
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot export" in warnings[0].getMessage()
    assert any("works again (at least 3 spans were lost)" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "body, expected",
    [
        (
            b'{"max_completion_tokens": 5, "stop": "x", "n": 2}',
            {"max_tokens": 5, "stop_sequences": ["x"], "choice.count": 2},
        ),
        (b'{"max_output_tokens": 9, "top_k": 4}', {"max_tokens": 9, "top_k": 4.0}),  # Responses
        (
            b'{"max_tokens": 7, "stop_sequences": ["a"], "temperature": true}',
            {"max_tokens": 7, "stop_sequences": ["a"]},
        ),
        (
            b'{"seed": 3, "frequency_penalty": 0, "presence_penalty": 1}',
            {"seed": 3, "frequency_penalty": 0.0, "presence_penalty": 1.0},
        ),
        (b"not json", {}),
        (b"[1]", {}),
    ],
)
def test_request_params(body, expected):
    assert genai_attributes.request_params(body) == {f"gen_ai.request.{k}": v for k, v in expected.items()}


@pytest.mark.parametrize(
    "raw, expected",
    [
        (
            b'data: {"id": "c-1", "model": "gemini-2.5-flash", "choices": []}\n\ndata: [DONE]\n\n',
            ("c-1", "gemini-2.5-flash"),
        ),
        (b'{"responseId": "r-9", "modelVersion": "gemini-2.5-pro"}', ("r-9", "gemini-2.5-pro")),
        (b"data: {broken\n\n", (None, None)),
        (b"", (None, None)),
    ],
)
def test_response_head(raw, expected):
    assert genai_attributes.response_head(raw) == expected


@pytest.mark.parametrize(
    "record, expected",
    [
        ({"api": "vertex"}, "gcp.vertex_ai"),
        ({"provider": "vertex_ai"}, "gcp.vertex_ai"),
        ({"api": "gemini"}, "gcp.gemini"),
        ({"provider": "gemini"}, "gcp.gemini"),
        ({"provider": "anthropic"}, "anthropic"),
        ({"provider": "openrouter"}, "openrouter"),
        ({}, "openai"),
    ],
)
def test_provider_name(record, expected):
    assert genai_attributes.provider_name(Exchange(**record)) == expected


def test_output_messages_keep_reasoning_and_calls():
    answer = {"reasoning": "hmm", "content": "", "tool_calls": [{"id": "1", "name": "f", "arguments": "not json"}]}
    [message] = orjson.loads(
        genai_messages.output_attributes({**answer, "finish_reason": "tool_calls"})["gen_ai.output.messages"]
    )
    assert message["finish_reason"] == "tool_call"
    assert message["parts"] == [
        {"type": "reasoning", "content": "hmm"},
        {"type": "tool_call", "id": "1", "name": "f", "arguments": "not json"},
    ]


@pytest.mark.e2e  # it starts a fresh Python
def test_the_proxy_imports_no_opentelemetry_without_the_variables():
    import subprocess
    import sys

    code = (
        "import sys; sys.argv = ['mitmdump']; import addon.proxy; "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_benchmark_checks_the_export_row_against_this_proxy():
    from tests.bench import report

    [target] = [t for t in report.TARGETS if t.row == "this_proxy_otel"]
    rows = {"this_proxy": {"plain_c1": {"p50_ms": 1.0}}, "this_proxy_otel": {"plain_c1": {"p50_ms": 1.3}}}
    checked = report.check(rows, target)
    assert checked["verdict"] == "MISS" and abs(checked["measured"] - 0.3) < 1e-9
    rows["this_proxy_otel"]["plain_c1"]["p50_ms"] = 1.1
    assert report.check(rows, target)["verdict"] == "PASS"
    assert "OTel export on" in report.table(rows, [checked]).splitlines()[0]
