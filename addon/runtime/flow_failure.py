"""Ending a flow in transit (a timeout, a stop) as if its upstream had failed, through mitmproxy's own layers.

mitmproxy has no timeout on an upstream and cannot kill a flow in transit: `flow.kill()` takes effect only at the
flow's next hook (mitmproxy issue 4711). Its own comment on `Flow.kill` names the fix, "a `KillInjected` event
similar to `MessageInjected`"; this patch is that event, `FailInjected(flow, message)`, written as the change
mitmproxy could take. It is injected the way mitmproxy injects WebSocket and TCP messages (its proxyserver's
`inject_event`, into the connection handler that serves the flow) and handled in the connection's HTTP layer:
- a flow whose upstream connection is still being made: that connection is closed (mitmproxy's CloseConnection
  command, which cancels its connect), so the connect fails and mitmproxy runs the flow's `error` hook;
- a flow whose request is still arriving, or whose upstream is connected (waiting for the answer, or streaming
  it): the stream fails with `message` as if the upstream had (mitmproxy's own handle_protocol_error, so the
  `error` hook runs and stream_end.py sends what it decides), then its request to the upstream is cancelled
  (mitmproxy's RequestProtocolError: HTTP/1 closes the connection, HTTP/2 resets the stream).
Nothing is written to a socket here: every byte goes out through the client's and the upstream's own layers.

Fallback attempts and a user's client replays run on mitmproxy's ReplayHandler, outside the proxyserver's
connections: replays.py keeps them, and the event goes to their handler.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Generator
from typing import Any

from mitmproxy import ctx, http
from mitmproxy.proxy import commands, events
from mitmproxy.proxy.layers import http as http_layers

from . import internals, replays

logger = logging.getLogger(__name__)

_original: dict[str, Any] = {}
_tasks: set[asyncio.Task] = set()  # injections in flight (the loop keeps only weak references)


@dataclasses.dataclass
class FailInjected(events.MessageInjected[str]):
    """Fail this flow now; `message` says why (mitmproxy's flow.error)."""


def fail(flow: http.HTTPFlow, message: str) -> bool:
    """End the flow in transit with `message`: mitmproxy then runs its `error` hook. True when it was injected."""
    if not _original or not flow.live:
        return False
    event = FailInjected(flow, message)
    handler = replays.handler_of(flow)
    if handler is not None:
        task = asyncio.ensure_future(handler.server_event(event))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
        return True
    proxyserver = ctx.master.addons.get("proxyserver") if ctx.master else None
    if proxyserver is None:
        return False
    try:
        proxyserver.inject_event(event)
    except ValueError:  # the client's connection is gone
        return False
    return True


def connecting(layer: Any, stream: Any) -> Any:
    """The upstream connection being made for this stream, if it waits for one."""
    for connection, waiting in layer.waiting_for_establishment.items():
        if any(layer.command_sources.get(command) is stream for command in waiting):
            return connection
    return None


def route(layer: Any, event: FailInjected) -> Generator[commands.Command, Any, None]:
    """HttpLayer: the event to the flow's stream, or its connect cut short."""
    stream = next((s for s in layer.streams.values() if getattr(s, "flow", None) is event.flow), None)
    if stream is None or "_handle_event" in vars(stream):  # the flow is over, or became a WebSocket/TCP pipe
        return
    connection = connecting(layer, stream)
    if connection is not None:
        yield commands.CloseConnection(connection)
        return
    yield from layer.event_to_child(stream, event)


def fail_stream(stream: Any, event: FailInjected) -> Generator[commands.Command, Any, None]:
    """HttpStream: fail as if the upstream had, then cancel the request upstream."""
    if stream.server_state in (stream.state_done, stream.state_errored) or stream.client_state == stream.state_errored:
        return
    sid, server, client = stream.stream_id, stream.context.server, stream.context.client
    arriving = stream.client_state != stream.state_done  # the request's body is still coming in
    connected = not arriving and server in _connections(stream)
    code = http_layers.ErrorCode.GENERIC_SERVER_ERROR
    yield from stream.handle_protocol_error(http_layers.ResponseProtocolError(sid, event.message, code))
    stream.client_state = stream.state_errored  # a request still arriving goes nowhere now
    if arriving:  # after the answer: HTTP/1 closes the connection (its body would follow), HTTP/2 the stream
        ended = http_layers.ResponseProtocolError(sid, event.message, http_layers.ErrorCode.GENERIC_CLIENT_ERROR)
        yield http_layers.SendHttp(ended, client)
    if connected:
        cancel = http_layers.RequestProtocolError(sid, event.message, http_layers.ErrorCode.CANCEL)
        yield http_layers.SendHttp(cancel, server)


def _connections(stream: Any) -> Any:
    """The HTTP layer's connections (the stream's parent layer)."""
    layers = stream.context.layers
    return layers[layers.index(stream) - 1].connections


def layer_handle_event(self: Any, event: events.Event) -> Generator[commands.Command, Any, None]:
    if isinstance(event, FailInjected):
        return route(self, event)
    return _original["HttpLayer"](self, event)


def stream_handle_event(self: Any, event: events.Event) -> Generator[commands.Command, Any, None]:
    if isinstance(event, FailInjected):
        return fail_stream(self, event)
    return _original["HttpStream"](self, event)


def install(master: Any = None) -> None:
    if _original:
        return
    _original["HttpLayer"] = http_layers.HttpLayer._handle_event
    _original["HttpStream"] = http_layers.HttpStream._handle_event
    http_layers.HttpLayer._handle_event = layer_handle_event  # type: ignore[method-assign]
    http_layers.HttpStream._handle_event = stream_handle_event  # type: ignore[method-assign]


def uninstall() -> None:
    if _original:
        http_layers.HttpLayer._handle_event = _original.pop("HttpLayer")  # type: ignore[method-assign]
        http_layers.HttpStream._handle_event = _original.pop("HttpStream")  # type: ignore[method-assign]


def installed() -> bool:
    return bool(_original)


HTTP = "mitmproxy.proxy.layers.http"
PATCH = internals.Patch(
    name="flow failure",
    written_for="12.3.1",
    internals=(
        internals.on_master(
            "mitmproxy.addons.proxyserver.Proxyserver.inject_event",
            lambda master: master.addons.get("proxyserver"),
            "inject_event",
            internals.signature("event"),
        ),
        internals.at("mitmproxy.proxy.events.MessageInjected", internals.fields("flow", "message")),
        internals.at(
            f"{HTTP}.HttpLayer._handle_event",
            internals.signature("self", "event"),
            internals.looks_up("MessageInjected", "event_to_child", "streams"),
        ),
        internals.at(
            f"{HTTP}.HttpLayer",
            internals.annotated("streams", "connections", "command_sources", "waiting_for_establishment"),
        ),
        internals.at(f"{HTTP}.HttpLayer.event_to_child", internals.signature("self", "child", "event")),
        internals.at(
            f"{HTTP}.HttpStream._handle_event",
            internals.signature("self", "event"),
            internals.looks_up("client_state", "server_state", "handle_protocol_error"),
        ),
        internals.at(f"{HTTP}.HttpStream.handle_protocol_error", internals.signature("self", "event")),
        internals.at(f"{HTTP}.HttpStream", internals.annotated("flow", "stream_id")),
        internals.at(f"{HTTP}.HttpStream.__init__", internals.looks_up("client_state", "server_state")),
        internals.at(f"{HTTP}.ErrorCode", internals.members("GENERIC_SERVER_ERROR", "CANCEL")),
        internals.at("mitmproxy.proxy.server.ConnectionHandler.server_event", internals.signature("self", "event")),
        internals.at("mitmproxy.proxy.server.ConnectionHandler.close_connection", internals.looks_up("cancel")),
    ),
    install=install,
    uninstall=uninstall,
    without="timeouts and a stop cannot end an answer in flight: a stalled upstream holds its client until "
    "mitmproxy's own tcp_timeout",
)
