"""A real OTLP/HTTP trace receiver for the tests: POST /v1/traces with an ExportTraceServiceRequest (protobuf,
gzip or not), decoded with OpenTelemetry's own protobuf messages.

    receiver = OtlpReceiver().start()   # receiver.endpoint is OTEL_EXPORTER_OTLP_ENDPOINT's value
    receiver.wait_spans(2)              # [Span(name, trace_id, span_id, parent_span_id, kind, attributes, ...)]
    receiver.raw                        # every request body as it came, for byte searches
    receiver.stop()
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int  # 3: CLIENT
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: list[tuple[str, int]]
    status_code: int  # 2: ERROR
    status_message: str
    resource: dict[str, Any] = field(default_factory=dict)


def value(any_value: AnyValue) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in any_value.kvlist_value.values}
    return getattr(any_value, kind) if kind else None


def decode(body: bytes) -> list[Span]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for s in scope_spans.spans:
                spans.append(
                    Span(
                        name=s.name,
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex(),
                        kind=s.kind,
                        start_ns=s.start_time_unix_nano,
                        end_ns=s.end_time_unix_nano,
                        attributes={kv.key: value(kv.value) for kv in s.attributes},
                        events=[(e.name, e.time_unix_nano) for e in s.events],
                        status_code=s.status.code,
                        status_message=s.status.message,
                        resource=resource,
                    )
                )
    return spans


class OtlpReceiver:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, 0
        self.raw: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.spans: list[Span] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        spans = decode(body)
        with self._lock:
            self.raw.append(body)
            self.headers.append(dict(request.headers))
            self.spans.extend(spans)
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf"
        )

    def wait_spans(self, count: int, timeout: float = 15.0) -> list[Span]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.spans) >= count:
                    return list(self.spans)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.spans)} spans arrived within {timeout} s, expected {count}: {self.spans}")

    def start(self) -> OtlpReceiver:
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), name="otlp-receiver", daemon=True).start()
        assert ready.wait(10), "the OTLP receiver did not start"
        return self

    def _serve(self, ready: threading.Event) -> None:
        self._loop = loop = asyncio.new_event_loop()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/traces", self.traces)
        self._runner = runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, self.host, 0)
        loop.run_until_complete(site.start())
        self.port = runner.addresses[0][1]
        ready.set()
        loop.run_forever()

    def stop(self) -> None:
        if self._loop is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
