"""The OpenTelemetry SDK, set up from OpenTelemetry's own environment variables (imported only when they ask).

`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` turns export on (`OTEL_SDK_DISABLED=true` or
`OTEL_TRACES_EXPORTER=none` keeps it off). Everything else is the SDK's own reading of the standard variables:
the OTLP/HTTP exporter's endpoint, headers, timeout and compression, the resource (`OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`; "translation-proxy" when neither names the service), the sampler (`OTEL_TRACES_SAMPLER`)
and the batching processor's bounded queue (`OTEL_BSP_*`). Importing the SDK takes about 0.4 s: `build` runs in a
thread at start-up (telemetry.py).

A collector that is down or slow never reaches a request: spans are queued (bounded, dropped when full) and sent
by the processor's own thread. Its failures are told once, as a warning (`QuietExporter`), and once more when export
works again; the SDK's and exporter's own per-batch log lines are kept out of the log (they would be one per batch,
and an ERROR at start-up stops mitmdump).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from .otel_quiet import QuietExporter, quiet_sdk_logs

CONTENT_VARIABLE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


class Pending(NamedTuple):
    """An exchange's span between its request and its end (otel_export.Export.begin)."""

    context: Any  # the parent's (opentelemetry Context), or None for a new trace
    span_context: Any  # its own ids (opentelemetry SpanContext)
    headers: dict[str, str]  # traceparent (and tracestate) naming it, for the request upstream


def enabled(environ: Mapping[str, str]) -> bool:
    """Whether OpenTelemetry's own variables ask for trace export."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(
        environ.get(name, "").strip() for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def capture_content(environ: Mapping[str, str]) -> bool:
    return environ.get(CONTENT_VARIABLE, "").strip().lower() == "true"


def endpoint_of(environ: Mapping[str, str]) -> str:
    explicit = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    return explicit or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip().rstrip("/") + "/v1/traces"


class Export:
    """The SDK pieces the telemetry addon uses: a tracer, W3C trace-context propagation, and a clean stop."""

    def __init__(self, replica: str, environ: Mapping[str, str] = os.environ, exporter: Any = None) -> None:
        """`exporter`: a SpanExporter to use instead of OTLP/HTTP (the tests' InMemorySpanExporter)."""
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        class PresetIds(IdGenerator):
            """The ids chosen when the request went upstream (`begin`), given to the span made when it ended."""

            trace_id = span_id = 0

            def generate_trace_id(self) -> int:
                return self.trace_id

            def generate_span_id(self) -> int:
                return self.span_id

        self.endpoint = endpoint_of(environ)
        last = quiet_sdk_logs()
        found = Resource.create()
        own: dict[str, str] = {}  # only what the variables leave unnamed
        if str(found.attributes.get("service.name", "")).startswith("unknown_service"):
            own["service.name"] = "translation-proxy"
        if "service.instance.id" not in found.attributes:
            own["service.instance.id"] = f"{replica} pid {os.getpid()}"
        self.ids, self.random = PresetIds(), RandomIdGenerator()
        self.provider = TracerProvider(
            resource=found.merge(Resource(own)), id_generator=self.ids, shutdown_on_exit=False
        )
        self.exporter = exporter or QuietExporter(OTLPSpanExporter(), self.endpoint, last)
        self.processor = BatchSpanProcessor(self.exporter)  # type: ignore[arg-type]  # duck-typed SpanExporter
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("translation_proxy")
        self.propagator = TraceContextTextMapPropagator()
        self.trace, self.kind = trace, trace.SpanKind.CLIENT

    def begin(self, carrier: Mapping[str, str] | None, parent: Any = None) -> Pending:
        """An exchange's span as its request goes upstream: its parent (the span context `parent`, or the trace
        context in `carrier`, the client's headers), its ids, and the headers that name it upstream. The span
        itself is made when the exchange ends (`record`): the request's path pays only for choosing ids."""
        trace = self.trace
        if parent is not None:
            context = trace.set_span_in_context(trace.NonRecordingSpan(parent))
        else:
            context = self.propagator.extract(carrier) if carrier else None
        above = trace.get_current_span(context).get_span_context() if context else trace.INVALID_SPAN_CONTEXT
        trace_id = above.trace_id if above.is_valid else self.random.generate_trace_id()
        sampled = self.provider.sampler.should_sample(context, trace_id, "chat", self.kind).decision.is_sampled()
        own = trace.SpanContext(
            trace_id,
            self.random.generate_span_id(),
            is_remote=False,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED if sampled else trace.TraceFlags.DEFAULT),
            trace_state=above.trace_state,
        )
        headers: dict[str, str] = {}
        self.propagator.inject(headers, context=trace.set_span_in_context(trace.NonRecordingSpan(own)))
        return Pending(context, own, headers)

    def record(
        self, pending: Pending, name: str, start_ns: int, end_ns: int, attributes: dict, events: list, error: str
    ) -> None:
        """Make the exchange's span, with the ids `begin` chose, and end it into the batching processor."""
        self.ids.trace_id, self.ids.span_id = pending.span_context.trace_id, pending.span_context.span_id
        span = self.tracer.start_span(
            name, context=pending.context, kind=self.kind, attributes=attributes, start_time=start_ns
        )
        for event, at in events:
            span.add_event(event, timestamp=at)
        if error:
            span.set_status(self.trace.Status(self.trace.StatusCode.ERROR, error))
        span.end(end_time=end_ns)

    def stop(self, seconds: float) -> bool:
        """Send what is queued within `seconds`, then stop (blocking: run it in a thread). True when all went."""
        deadline = time.monotonic() + max(seconds, 0.0)
        # The processor's flush has no timeout of its own (and a dead collector holds each batch for the exporter's
        # timeout): it runs in a daemon thread that the process does not wait for once the time is up.
        flushed = in_thread(self.processor.force_flush).wait(max(deadline - time.monotonic(), 0.0))
        self.exporter.shutdown()  # ends the exporter's retries of a collector that does not answer
        in_thread(self.provider.shutdown).wait(max(deadline - time.monotonic(), 0.1))
        return flushed


def in_thread(work: Any) -> threading.Event:
    """Run `work` in a daemon thread; the event is set when it returned."""
    finished = threading.Event()

    def run() -> None:
        try:
            work()
        finally:
            finished.set()

    threading.Thread(target=run, name="otel-stop", daemon=True).start()
    return finished
