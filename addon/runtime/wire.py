"""The few things the proxy does to a flow's connections directly, below mitmproxy's hooks.

Why reach into mitmproxy's internals: no hook can (1) close a flow's upstream connection on our own timer (a
timeout, or a client that left), or (2) send a last SSE event to a client whose streamed response has already
begun: once the headers went out, mitmproxy answers an upstream failure by closing the client connection without
a word. Both need the connection's asyncio transport, which mitmproxy keeps in its ConnectionHandler:
`proxyserver.connections[client_conn.id].transports[conn]` is a ConnectionIO with `.writer` (an asyncio
StreamWriter, None while still connecting) and `.handler` (the task reading that connection).

Fallback attempts (fallbacks.py) run on mitmproxy's client-replay machinery instead of a client connection:
their upstream connection is in their own ReplayHandler, and the client waiting for them is the original flow's.
`replays` maps such a flow to both, so timeouts, "client gone" and shutdown treat attempts like any flow, and
nothing is ever written to a client from an attempt. A user's client replay (mitmweb's Replay, mitmdump -C) runs on
the same machinery with no client at all: `adopt_client_replay` finds its ReplayHandler, and its client never leaves.

Everything here is a no-op when the connection is already gone, so callers need no checks of their own.
"""

from __future__ import annotations

import asyncio
import logging

from mitmproxy import connection, ctx, http
from mitmproxy.addons.clientplayback import ReplayHandler
from mitmproxy.proxy.server import ConnectionHandler

logger = logging.getLogger(__name__)

# A replayed flow's id -> (its ReplayHandler, the original flow whose client waits for its answer): fallback attempts;
# None for a user's client replay, which has no client.
replays: dict[str, tuple[ConnectionHandler, http.HTTPFlow | None]] = {}


def adopt_client_replay(flow: http.HTTPFlow) -> bool:
    """Register a flow of mitmproxy's client replay; call from one of its hooks. True when it is registered.

    mitmproxy 12 runs each hook in a task of the connection handler's `hook_task` coroutine, whose `self` is the
    ReplayHandler that owns the flow's upstream connection (ClientPlayback keeps it in a local variable only).
    """
    for flow_id, (handler, original) in list(replays.items()):
        if original is None and getattr(handler, "done", None) is not None and handler.done.is_set():
            del replays[flow_id]  # finished replays, forgotten lazily: replays are rare
    if flow.id in replays:
        return True
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no event loop: not called from a hook
        return False
    frame = getattr(task.get_coro(), "cr_frame", None) if task is not None else None
    handler = frame.f_locals.get("self") if frame is not None else None
    if not isinstance(handler, ReplayHandler) or handler.flow is not flow:
        return False
    replays[flow.id] = (handler, None)
    return True


def _transports(flow: http.HTTPFlow) -> dict:
    if (replay := replays.get(flow.id)) is not None:
        return replay[0].transports
    proxyserver = ctx.master.addons.get("proxyserver") if ctx.master else None
    handler = proxyserver.connections.get(flow.client_conn.id) if proxyserver else None
    return handler.transports if handler is not None else {}


def client_writer(flow: http.HTTPFlow) -> asyncio.StreamWriter | None:
    io = _transports(flow).get(flow.client_conn)
    return io.writer if io is not None and isinstance(io.writer, asyncio.StreamWriter) else None


def server_writer(flow: http.HTTPFlow) -> asyncio.StreamWriter | None:
    io = _transports(flow).get(flow.server_conn)
    return io.writer if io is not None and isinstance(io.writer, asyncio.StreamWriter) else None


def client_gone(flow: http.HTTPFlow) -> bool:
    """True when the client's connection is closed or closing (the client left)."""
    if (replay := replays.get(flow.id)) is not None:
        return replay[1] is not None and client_gone(replay[1])
    writer = client_writer(flow)
    return writer is None or writer.is_closing() or flow.client_conn.state is connection.ConnectionState.CLOSED


def close_upstream(flow: http.HTTPFlow) -> bool:
    """Close the flow's upstream connection, or abort it while it is still connecting; True if there was one.

    mitmproxy then sees the upstream go (or the connect fail) and runs the `error` hook as for any upstream cut.
    """
    closed = False
    for conn, io in list(_transports(flow).items()):
        if conn is flow.client_conn:
            continue
        if conn is flow.server_conn and io.writer is not None:
            io.writer.close()
            closed = True
        elif io.writer is None and io.handler is not None:  # still connecting: only ours (one request per conn)
            io.handler.cancel("upstream connect timeout")
            closed = True
    return closed


def write_sse_error_and_end(flow: http.HTTPFlow, event: bytes) -> bool:
    """Send one last SSE event to a client whose chunked stream has begun, and end the chunked body.

    Called from the `error` hook, which runs before mitmproxy closes the client connection: the client reads a
    complete, well-formed stream whose last event is the error. True when it was written.
    """
    writer = client_writer(flow)
    if writer is None or writer.is_closing() or not flow.client_conn.state & connection.ConnectionState.CAN_READ:
        return False  # the client left: nobody to tell
    if (
        flow.response is None
        or flow.request.http_version != "HTTP/1.1"
        or "chunked" not in flow.response.headers.get("transfer-encoding", "")
    ):
        return False
    writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(event), event))
    return True
