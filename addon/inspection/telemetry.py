"""OpenTelemetry GenAI spans: one CLIENT span per LLM exchange, exported over OTLP/HTTP when OpenTelemetry's own
variables ask for it (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; otel_export.py).

With neither set, this addon does nothing and imports nothing of OpenTelemetry. When set, the SDK is imported in a
thread at start-up (about 0.4 s); exchanges that arrive before it is ready get no span.

A span is named `chat {model}`, starts when the client's request began (`flow.request.timestamp_start`) and ends
when the answer did; its attributes (genai_attributes.py) come from the flow's exchange record, so every client
format the proxy speaks is traced the same way. A request with a W3C `traceparent` (and `tracestate`) makes the
span a child of the client's span; the request upstream carries the span's own `traceparent` (replacing any the
request had: a replayed flow does not stack them). A fallback attempt (fallbacks.py) is a span of its own, a child
of its client's exchange's span. Message content is added only with
`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true` (genai_messages.py). The span ends after the hooks of its
last event have run (`loop.call_soon`), and the SDK's batching processor exports from its own thread: a request
never waits for telemetry. A clean stop sends what is queued within `translate_shutdown_grace`.

Placed after Sessions and Report: it reads the session id and the tool-call findings they write.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import weakref
from typing import Any, NamedTuple

import orjson
from mitmproxy import ctx, http

from ..formats.exchange import Exchange
from ..runtime.upstream_key import KeyedHeaders
from . import genai_attributes, genai_messages, otel_export

logger = logging.getLogger(__name__)

TRACE_HEADERS = ("traceparent", "tracestate")
TRACE_HEADER_BYTES = frozenset(name.encode() for name in TRACE_HEADERS)


class OpenSpan(NamedTuple):
    export: Any  # otel_export.Export
    pending: Any  # otel_export.Pending: the span's parent, ids and upstream headers
    started: float
    secrets: list[str]


def client_headers(flow: http.HTTPFlow, ex: Exchange) -> dict[str, str]:
    """The trace headers as the client sent them (kept by client_request.py), else as the request has them."""
    stored = (ex.client_request or {}).get("headers")
    pairs = stored if isinstance(stored, list) else flow.request.headers.items(multi=True)
    found: dict[str, str] = {}
    for pair in pairs:
        name, value = pair
        if isinstance(name, str) and name.lower() in TRACE_HEADERS and isinstance(value, str):
            found.setdefault(name.lower(), value)
    return found


def client_body(flow: http.HTTPFlow, ex: Exchange) -> bytes:
    """The request body as the client sent it (its parameters' names are its format's), else as sent upstream."""
    stored = (ex.client_request or {}).get("body")
    return stored if isinstance(stored, bytes) else flow.request.raw_content or b""


def secrets_of(request: http.Request) -> list[str]:
    """The upstream key as it goes on the wire (never in a span: scrubbed from every attribute)."""
    found = []
    if isinstance(request.headers, KeyedHeaders) and request.headers.wire_authorization:
        value = request.headers.wire_authorization.decode(errors="replace")
        found.append(value.split(" ", 1)[-1])
    if "key=" in request.path and (key := request.query.get("key")):  # Gemini's native API takes ?key=
        found.append(key)
    return [s for s in found if len(s) >= 8]


def end_time(flow: http.HTTPFlow, ex: Exchange, started: float) -> float:
    if flow.response is not None and flow.response.timestamp_end:
        end = flow.response.timestamp_end
    elif flow.error is not None:
        end = flow.error.timestamp
    else:
        end = ex.t_end or time.time()
    return max(end, started)


class Telemetry:
    def __init__(self) -> None:
        self.export: otel_export.Export | None = None
        self.capture_content = False
        self.replica = ""
        self.starting: asyncio.Task | None = None
        self.open: weakref.WeakKeyDictionary[http.HTTPFlow, OpenSpan] = weakref.WeakKeyDictionary()
        self.spans: dict[str, Any] = {}  # client flow id -> its open span: the parent of its fallback attempts

    def running(self) -> None:
        if not otel_export.enabled(os.environ) or self.starting is not None:
            return
        self.replica = f"{socket.gethostname()}:{ctx.options.listen_port}"
        self.capture_content = otel_export.capture_content(os.environ)
        self.starting = asyncio.get_running_loop().create_task(self.start())

    async def start(self) -> None:
        try:
            self.export = await asyncio.to_thread(otel_export.Export, self.replica)
        except Exception as e:  # a bad OTEL_* value: the proxy runs on without traces
            logger.warning(f"OpenTelemetry: trace export is off, the SDK could not start: {type(e).__name__}: {e}")
            return
        content = "with" if self.capture_content else "without"
        logger.info(f"OpenTelemetry: GenAI spans go to {self.export.endpoint} ({content} message content)")

    def request(self, flow: http.HTTPFlow) -> None:
        export = self.export
        if export is None or flow.response or flow.error or not flow.live:
            return
        ex = Exchange.find(flow)
        if ex is None or ex.client_model is None or ex.passthrough or ex.key is None:
            return
        parent = self.spans.get(ex.fallback_of) if ex.fallback_of is not None else None
        # A fallback attempt's or a replay's request is a copy of an earlier one: it starts now.
        started = time.time() if ex.fallback_of is not None or flow.is_replay else flow.request.timestamp_start
        pending = export.begin(None if parent is not None else client_headers(flow, ex), parent)
        # One pass over the headers: any trace headers the request had are replaced (a replay does not stack them).
        headers = flow.request.headers
        kept = tuple(f for f in headers.fields if f[0].lower() not in TRACE_HEADER_BYTES)
        headers.fields = kept + tuple((k.encode(), v.encode()) for k, v in pending.headers.items())
        self.open[flow] = OpenSpan(export, pending, started, secrets_of(flow.request))
        if ex.fallback_of is None:
            self.spans[flow.id] = pending.span_context

    def response(self, flow: http.HTTPFlow) -> None:
        self.end(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self.end(flow)

    def end(self, flow: http.HTTPFlow) -> None:
        opened = self.open.pop(flow, None)
        if opened is None:
            return
        self.spans.pop(flow.id, None)
        try:  # after every addon's hook for this event, and after the answer went out
            asyncio.get_running_loop().call_soon(self.finish, flow, opened)
        except RuntimeError:  # no event loop: a unit test calling the hook
            self.finish(flow, opened)

    def finish(self, flow: http.HTTPFlow, opened: OpenSpan) -> None:
        ex = Exchange.of(flow)
        response = flow.response
        status = response.status_code if response is not None else None
        failed = flow.error is not None or bool(ex.error)
        head = genai_attributes.response_head(ex.upstream_raw)
        if ex.upstream_raw is None and response is not None and status is not None and status < 400:
            head = (genai_attributes.response_head(response.get_content(strict=False))[0], None)
        request = flow.request
        attributes = genai_attributes.start_attributes(ex, request.host, request.port, flow.id, self.replica)
        attributes.update(genai_attributes.end_attributes(ex, status, failed, head, opened.started))
        attributes.update(genai_attributes.request_params(client_body(flow, ex)))
        if self.capture_content:
            attributes.update(self.content(flow, ex))
        events = [("gen_ai.first_chunk", int(ex.t_first_chunk * 1e9))] if ex.stream and ex.t_first_chunk else []
        reason = ""
        if "error.type" in attributes:
            reason = str(ex.error or (flow.error.msg if flow.error else f"HTTP {status}"))[:300]
        clean = genai_attributes.scrub({**attributes, "": reason}, opened.secrets)
        opened.export.record(
            opened.pending,
            genai_attributes.span_name(ex),
            int(opened.started * 1e9),
            int(end_time(flow, ex, opened.started) * 1e9),
            clean,
            events,
            clean.pop(""),
        )

    @staticmethod
    def content(flow: http.HTTPFlow, ex: Exchange) -> dict[str, str]:
        """The messages in and out: from the chat body sent upstream on the OpenAI-compatible path, else from
        the client's own body."""
        stored = (ex.client_request or {}).get("body")
        body = flow.request.raw_content if ex.api == "openai" or not isinstance(stored, bytes) else stored
        try:
            parsed = orjson.loads(body or b"")
        except orjson.JSONDecodeError:
            parsed = None
        return {**genai_messages.input_attributes(parsed), **genai_messages.output_attributes(ex.answer)}

    def done(self) -> Any:
        # Not `async def` (see runtime/shutdown.py): only an export that is on needs the event loop.
        if self.export is None:
            return None
        return self.stop(self.export, float(getattr(ctx.options, "translate_shutdown_grace", 5)))

    async def stop(self, export: otel_export.Export, grace: float) -> None:
        await asyncio.sleep(0)  # spans ended in the last hooks (call_soon) end before the flush
        self.export = None
        if not await asyncio.to_thread(export.stop, max(grace, 1.0)):
            logger.warning(f"OpenTelemetry: not every span reached {export.endpoint} within {max(grace, 1.0):g} s")
