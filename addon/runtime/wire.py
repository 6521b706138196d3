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

Everything here is a no-op when the connection is already gone, so callers need no checks of their own. The
start-up check (internals.py) looks for each of these internals as mitmproxy 12.3.1 has them; patches.py turns
the helpers on in `running` (`install`) and off in `done`. While they are off (a mitmproxy built otherwise), they
do nothing: no client is taken for gone, no upstream is closed by the proxy, no last event is written, which is
mitmproxy's own behaviour. A client connection that mitmproxy still counts open but whose handler cannot be found
is a failed lookup, not a client that left: it is logged once and never cuts a stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mitmproxy import connection, ctx, http

from . import internals

if TYPE_CHECKING:
    from mitmproxy.addons.clientplayback import ReplayHandler

logger = logging.getLogger(__name__)

# A replayed flow's id -> (its ReplayHandler, the original flow whose client waits for its answer): fallback attempts;
# None for a user's client replay, which has no client.
replays: dict[str, tuple[ReplayHandler, http.HTTPFlow | None]] = {}
_state = {"enabled": False, "missed": False}  # installed (the start-up check passed); a failed lookup was logged


def adopt_client_replay(flow: http.HTTPFlow) -> bool:
    """Register a flow of mitmproxy's client replay; call from one of its hooks. True when it is registered.

    mitmproxy 12 runs each hook in a task of the connection handler's `hook_task` coroutine, whose `self` is the
    ReplayHandler that owns the flow's upstream connection (ClientPlayback keeps it in a local variable only).
    Anything else found there (another mitmproxy) leaves the flow unregistered: it is then treated as any flow.
    """
    from mitmproxy.addons.clientplayback import ReplayHandler

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
    owner = frame.f_locals.get("self") if frame is not None else None
    if not isinstance(owner, ReplayHandler) or owner.flow is not flow:
        return False
    replays[flow.id] = (owner, None)
    return True


def install(master: Any) -> None:
    _state.update(enabled=True, missed=False)


def uninstall() -> None:
    _state["enabled"] = False


def enabled() -> bool:
    """True while the helpers are installed: only then can anything be written to a client directly."""
    return _state["enabled"]


def _transports(flow: http.HTTPFlow) -> Mapping | None:
    """The transports of the handler serving this flow's connections; None when no handler was found."""
    if (replay := replays.get(flow.id)) is not None:
        return replay[0].transports
    proxyserver = ctx.master.addons.get("proxyserver") if ctx.master else None
    handler = proxyserver.connections.get(flow.client_conn.id) if proxyserver else None
    return handler.transports if handler is not None else None


def client_writer(flow: http.HTTPFlow) -> asyncio.StreamWriter | None:
    io = (_transports(flow) or {}).get(flow.client_conn)
    return io.writer if io is not None and isinstance(io.writer, asyncio.StreamWriter) else None


def server_writer(flow: http.HTTPFlow) -> asyncio.StreamWriter | None:
    io = (_transports(flow) or {}).get(flow.server_conn)
    return io.writer if io is not None and isinstance(io.writer, asyncio.StreamWriter) else None


def client_gone(flow: http.HTTPFlow) -> bool:
    """True when the client's connection is closed or closing (the client left).

    False while the helpers are off, and when the lookup failed for a connection mitmproxy still counts open.
    """
    if (replay := replays.get(flow.id)) is not None:
        return replay[1] is not None and client_gone(replay[1])
    if not _state["enabled"]:
        return False
    conn = flow.client_conn
    if conn.state is connection.ConnectionState.CLOSED:
        return True
    transports = _transports(flow)
    if transports is None:  # the handler is removed once the client's connection has ended
        if not conn.state & connection.ConnectionState.CAN_READ:
            return True
        missed_lookup(flow)
        return False
    writer = client_writer(flow)
    return writer is None or writer.is_closing()


def missed_lookup(flow: http.HTTPFlow) -> None:
    if not _state["missed"]:
        _state["missed"] = True
        logger.warning(
            f"found no connection handler for client {flow.client_conn.id}, which mitmproxy counts as connected "
            f"(mitmproxy {internals.VERSION}; the proxy was written for {internals.WRITTEN_FOR}): its stream is "
            "not cut, and the proxy cannot close upstreams or end streams with an error event for such clients"
        )


def close_upstream(flow: http.HTTPFlow) -> bool:
    """Close the flow's upstream connection, or abort it while it is still connecting; True if there was one.

    mitmproxy then sees the upstream go (or the connect fail) and runs the `error` hook as for any upstream cut.
    """
    if not _state["enabled"]:
        return False
    closed = False
    for conn, io in list((_transports(flow) or {}).items()):
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
    writer = _chunked_client_writer(flow)
    if writer is None:
        return False
    writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(event), event))
    return True


def write_chunk(flow: http.HTTPFlow, data: bytes) -> bool:
    """Send more of the body to a client whose chunked stream has begun, without ending it.

    Called from the `response` hook of a streamed flow (fallbacks.py: the retry of an empty answer), which runs
    after the upstream's body and before mitmproxy ends the client's. True when it was written (or was empty).
    """
    writer = _chunked_client_writer(flow)
    if writer is None:
        return False
    if data:
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
    return True


def _chunked_client_writer(flow: http.HTTPFlow) -> asyncio.StreamWriter | None:
    """The writer of a client still there whose HTTP/1.1 response is chunked; None otherwise."""
    if not _state["enabled"]:
        return None
    writer = client_writer(flow)
    if writer is None or writer.is_closing() or not flow.client_conn.state & connection.ConnectionState.CAN_READ:
        return None  # the client left: nobody to tell
    if (
        flow.response is None
        or flow.request.http_version != "HTTP/1.1"
        or "chunked" not in flow.response.headers.get("transfer-encoding", "")
    ):
        return None
    return writer


SERVER = "mitmproxy.proxy.server"
PATCH = internals.Patch(
    name="wire helpers",
    written_for="12.3.1",
    internals=(
        internals.on_master(
            "mitmproxy.addons.proxyserver.Proxyserver.connections",
            lambda master: master.addons.get("proxyserver"),
            "connections",
            internals.instance(dict),
        ),
        internals.at(
            "mitmproxy.proxy.mode_servers.ServerInstance.handle_stream", internals.looks_up("register_connection", "id")
        ),
        internals.at(f"{SERVER}.ConnectionHandler", internals.annotated("transports")),
        internals.at(
            "mitmproxy.addons.clientplayback.ReplayHandler", internals.subclass(f"{SERVER}.ConnectionHandler")
        ),
        internals.at(f"{SERVER}.ConnectionIO", internals.fields("handler", "writer")),
        internals.at("mitmproxy.connection.ConnectionState", internals.members("CLOSED", "CAN_READ")),
        internals.at("mitmproxy.connection.Client", internals.fields("id", "state")),
    ),
    install=install,
    uninstall=uninstall,
    without="a client that leaves mid-stream is not noticed, timeouts cannot close the upstream connection, and a "
    "stream cut midway ends without an error event",
)
