"""An `error` or `response` hook may say how the client's answer ends, and mitmproxy's own layers send it.

mitmproxy 12.3.1 has no way for an addon to do two things the proxy needs:
- When the upstream fails, its `error` hook cannot answer: before the response began, mitmproxy sends its own error
  page (HTML, and for HTTP/1 only the page error_pages.py shapes); after, it closes the client's connection
  (HTTP/1) or resets its stream (HTTP/2), and the client cannot tell why its stream stopped.
- A `response` hook of a streamed response cannot add to the body (a retried empty answer, fallbacks.py).

This patch gives hooks both, written as the change mitmproxy itself could take (its PR 7999, "error hook may set
flow.response", is the model), around `HttpStream.handle_protocol_error` and `HttpStream.send_response`:
1. An `error` hook that sets `flow.response` (a new Response) on a flow whose response has not gone out: that
   response is sent instead of mitmproxy's error page.
2. An `error` hook that calls `finish(flow, data)` on a flow whose streamed response has begun: `data` is the
   body's last piece, and the body ends well formed (instead of the cut).
3. A `response` hook of a streamed response that calls `finish(flow, data)`: `data` is sent before the body ends.
Each is sent as HTTP events (headers, data, end of message) to the client's connection layer, so HTTP/1 chunking,
HTTP/2 frames and TLS apply as to any response; nothing is written to a socket here. mitmproxy's code runs as it
is; the patch only replaces the one command that sends the failure to the client, and adds data after the hook.

Without the patch (a mitmproxy whose internals differ), mitmproxy's own behaviour stays: `finish` returns False,
so the proxy neither holds a stream back nor counts an error event as sent.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Generator
from typing import Any

from mitmproxy import flow as mflow
from mitmproxy import http
from mitmproxy.connection import ConnectionState
from mitmproxy.proxy.layers import http as http_layers

from . import internals

_last: weakref.WeakKeyDictionary[http.HTTPFlow, bytes] = weakref.WeakKeyDictionary()  # finish()'s data per flow
_state = {"installed": False}
_original: dict[str, Any] = {}


def enabled() -> bool:
    """True while the patch is installed: only then does `finish` send anything."""
    return _state["installed"]


def finish(flow: http.HTTPFlow, data: bytes) -> bool:
    """From the `error` hook of a flow whose streamed response has begun, or the `response` hook of a streamed
    response: send `data` as the last of the body, then end it. True when it will be sent; False while the patch
    is off, for a client that left, and for a replay (no client waits on it)."""
    if not _state["installed"] or flow.is_replay or not flow.client_conn.state & ConnectionState.CAN_WRITE:
        return False
    _last[flow] = _last.get(flow, b"") + data
    return True


def _killed(flow: http.HTTPFlow) -> bool:
    return flow.error is not None and flow.error.msg == mflow.Error.KILLED_MESSAGE


def answer(stream: Any, response: http.Response) -> list[http_layers.SendHttp]:
    """A whole response for the client, as HttpStream.send_response sends one (PR 7999's override)."""
    response.timestamp_start = response.timestamp_start or time.time()
    response.timestamp_end = time.time()
    content, client, sid = response.raw_content, stream.context.client, stream.stream_id
    sends = [http_layers.SendHttp(http_layers.ResponseHeaders(sid, response, not content), client)]
    if content:
        sends.append(http_layers.SendHttp(http_layers.ResponseData(sid, content), client))
    return sends + [http_layers.SendHttp(http_layers.ResponseEndOfMessage(sid), client)]


def ending(stream: Any, streamed: bool, before: http.Response | None) -> list[http_layers.SendHttp] | None:
    """What the error hook asked the client to get instead of the failure; None: mitmproxy's own."""
    flow: http.HTTPFlow = stream.flow
    if streamed:
        data = _last.pop(flow, None)
        if data is None:
            return None
        client, sid = stream.context.client, stream.stream_id
        return [
            http_layers.SendHttp(http_layers.ResponseData(sid, data), client),
            http_layers.SendHttp(http_layers.ResponseEndOfMessage(sid), client),
        ]
    if flow.response is None or flow.response is before:
        return None
    return answer(stream, flow.response)


def handle_protocol_error(self: Any, event: Any) -> Generator[Any, Any, None]:
    """HttpStream.handle_protocol_error, with the failure sent to the client replaced by what the error hook set."""
    flow = getattr(self, "flow", None)
    streamed = self.server_state == self.state_stream_response_body
    before = flow.response if flow is not None else None
    commands = _original["handle_protocol_error"](self, event)
    reply = None
    while True:
        try:
            command = commands.send(reply)
        except StopIteration:
            if flow is not None:
                _last.pop(flow, None)
            return
        reply = None
        is_failure = isinstance(command, http_layers.SendHttp) and command.event is event
        if flow is not None and is_failure and command.connection is self.context.client:
            instead = ending(self, streamed, before)
            if instead is not None:
                yield from instead
                continue
        reply = yield command


def send_response(self: Any, already_streamed: bool = False) -> Generator[Any, Any, None]:
    """HttpStream.send_response, with what the `response` hook of a streamed response added sent after it."""
    commands = _original["send_response"](self, already_streamed)
    reply = None
    while True:
        try:
            command = commands.send(reply)
        except StopIteration:
            return
        reply = yield command
        if already_streamed and isinstance(command, http_layers.HttpResponseHook):
            data = _last.pop(self.flow, None)
            if data and not _killed(self.flow):
                yield http_layers.SendHttp(http_layers.ResponseData(self.stream_id, data), self.context.client)


NAMES = {"handle_protocol_error": handle_protocol_error, "send_response": send_response}


def install(master: Any = None) -> None:
    if _original:
        return
    for name, replacement in NAMES.items():
        _original[name] = getattr(http_layers.HttpStream, name)
        setattr(http_layers.HttpStream, name, replacement)
    _state["installed"] = True


def uninstall() -> None:
    for name, original in _original.items():
        setattr(http_layers.HttpStream, name, original)
    _original.clear()
    _state["installed"] = False
    _last.clear()


HTTP = "mitmproxy.proxy.layers.http"
PATCH = internals.Patch(
    name="stream endings",
    written_for="12.3.1",
    internals=(
        # The error hook runs, then the failure goes to the client as SendHttp(event, client).
        internals.at(
            f"{HTTP}.HttpStream.handle_protocol_error",
            internals.signature("self", "event"),
            internals.looks_up("HttpErrorHook", "SendHttp", "client", "state_errored", "DropStream"),
        ),
        # The response hook runs, then trailers and the end of the message; a streamed body is not sent again.
        internals.at(
            f"{HTTP}.HttpStream.send_response",
            internals.signature("self", "already_streamed"),
            internals.looks_up("HttpResponseHook", "check_killed", "flow_done"),
        ),
        internals.at(f"{HTTP}.HttpStream", internals.annotated("flow", "stream_id")),
        internals.at(f"{HTTP}.HttpStream.state_stream_response_body", internals.signature("self", "event")),
        internals.at(f"{HTTP}.SendHttp", internals.fields("event", "connection")),
        internals.at(f"{HTTP}.ResponseHeaders", internals.fields("stream_id", "response", "end_stream")),
        internals.at(f"{HTTP}.ResponseData", internals.fields("stream_id", "data")),
        internals.at(f"{HTTP}.ResponseEndOfMessage", internals.fields("stream_id")),
        internals.at(f"{HTTP}.HttpResponseHook", internals.subclass("mitmproxy.proxy.commands.StartHook")),
    ),
    install=install,
    uninstall=uninstall,
    without="an answer that fails before it began gets mitmproxy's error page (OpenAI-shaped for HTTP/1 clients "
    "only), a stream cut midway ends without an error event, and an empty answer is not asked for again",
)
