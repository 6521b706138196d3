"""An upstream connection's read is handled in the turn of the event loop that received it, not in the next one.

A speed patch: installed only while the translate_speed_patches option is on (off by default; docs/internals.md).

mitmproxy reads each connection in a task of its own: the socket's callback puts the bytes in the connection's
StreamReader and wakes the task, which asyncio runs in its *next* turn, after every callback already queued for
that turn. With a hundred streams a turn holds a hundred other streams' events (10-30 ms on this project's 2-core
machine), so every chunk of a streamed answer waited a whole turn before anything looked at it.

For the upstream side of a connection, the callback hands the read straight to the connection handler
(`server_event`, what the task would call with it next) when that is exactly what the task would do:

- the task is parked in `reader.read()` with nothing unread, so the read cannot overtake earlier bytes;
- no event is being handled on the connection (the handler's event lock is free and nobody waits for it);
- no writer of the connection is paused: the task would wait for the client to drain before reading on, so a slow
  client keeps its backpressure (the read goes to the StreamReader and the task waits as before).

Anything else goes to the StreamReader as asyncio does; end of stream, errors and closing stay with the task. The
handler's event handling is synchronous once its lock is taken (mitmproxy says so where it takes it), so the
call finishes inside the callback; a mitmproxy whose handling waits would be finished by a task instead.

Client connections are left alone: their reads are a request's, which waits for the whole body anyway.

Reaches private parts of mitmproxy's ConnectionHandler (its transports, its event lock) and of asyncio's streams
and locks (a StreamReader's waiter and buffer, a protocol's pause flag), checked at start-up (internals.py);
without them every read waits for its task as in mitmproxy.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Coroutine
from typing import Any

from mitmproxy.proxy import events, server

from . import internals

_attached: weakref.WeakSet[asyncio.StreamReaderProtocol] = weakref.WeakSet()  # protocols reading inline now
_feed = asyncio.StreamReaderProtocol.data_received
_finishing: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks


def can_run_now(handler: Any, connection: Any, reader: Any) -> bool:
    """True when the connection's task would hand the next read to `server_event` at once, and nothing else."""
    if reader is None or reader._buffer or reader._eof or reader._exception is not None:
        return False
    waiter = reader._waiter
    if waiter is None or waiter.done():  # not parked in read(), or woken already (by data, or to be cancelled)
        return False
    lock = handler._server_event_lock
    if lock._locked or lock._waiters:
        return False
    transports = handler.transports
    if connection not in transports:
        return False
    for io in transports.values():
        writer = io.writer
        if writer is not None and (type(writer) is not asyncio.StreamWriter or writer._protocol._paused):  # type: ignore[attr-defined]
            return False
    return True


def data_received(handler: Any, connection: Any, protocol: Any, data: bytes) -> None:
    """The protocol's data_received for an upstream connection: the read handled now when it can be."""
    if can_run_now(handler, connection, protocol._stream_reader):
        run(handler.server_event(events.DataReceived(connection, data)))
    else:
        _feed(protocol, data)


def run(coro: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine that does not wait to its end now; one that does wait is finished by a task."""
    try:
        waiting = coro.send(None)
    except StopIteration:
        return
    task = asyncio.ensure_future(_finish(coro, waiting))
    _finishing.add(task)
    task.add_done_callback(_finishing.discard)


async def _finish(coro: Coroutine[Any, Any, None], waiting: Any) -> None:
    # What a task does with a coroutine that yielded an asyncio future: resume it once the future is done (the
    # coroutine reads the future's result or exception itself).
    while True:
        try:
            await waiting
        except BaseException:  # the coroutine gets it from the future itself  # noqa: S110
            pass
        try:
            waiting = coro.send(None)
        except StopIteration:
            return


def attach(handler: Any, connection: Any) -> None:
    """Let this upstream connection's reads be handled inline (an asyncio stream; mitmproxy_rs's are left alone)."""
    io = handler.transports.get(connection)
    writer = io.writer if io is not None else None
    protocol = getattr(writer, "_protocol", None)
    if type(writer) is asyncio.StreamWriter and type(protocol) is asyncio.StreamReaderProtocol:
        protocol.data_received = functools.partial(data_received, handler, connection, protocol)  # type: ignore[method-assign]
        _attached.add(protocol)


def handle_connection(self: Any, connection: Any) -> Coroutine[Any, Any, None]:
    """ConnectionHandler.handle_connection: an upstream connection's reads inline, then mitmproxy's own loop."""
    if connection is not self.client:
        attach(self, connection)
    return SWAP.original(self, connection)


SWAP = internals.Swap(server.ConnectionHandler, "handle_connection", handle_connection)


install = SWAP.install


def uninstall() -> None:
    SWAP.uninstall()
    for protocol in list(_attached):  # connections still open read through their task again
        protocol.__dict__.pop("data_received", None)
    _attached.clear()


SERVER = "mitmproxy.proxy.server.ConnectionHandler"
PATCH = internals.Patch(
    name="inline reads",
    written_for="12.3.1",
    internals=(
        internals.at(
            f"{SERVER}.handle_connection",
            internals.signature("self", "connection"),
            internals.looks_up("transports", "reader", "read", "server_event", "drain_writers"),
        ),
        # Handling an event is synchronous once the lock is taken, and touches the connection's transports only.
        internals.at(
            f"{SERVER}.server_event",
            internals.signature("self", "event"),
            internals.looks_up("_server_event_lock", "register_activity", "handle_event", "transports"),
        ),
        internals.at(f"{SERVER}.__init__", internals.looks_up("_server_event_lock", "transports", "client")),
        internals.at(f"{SERVER}.drain_writers", internals.looks_up("transports", "writer", "drain")),
        internals.at("mitmproxy.proxy.server.ConnectionIO", internals.annotated("reader", "writer")),
        internals.at("mitmproxy.proxy.events.DataReceived", internals.fields("connection", "data")),
        # asyncio's: a reader parked in read() has a waiter; a lock free for anyone has no waiters; a writer's
        # protocol says when the client's buffer is full.
        internals.at("asyncio.StreamReader._wait_for_data", internals.looks_up("_waiter", "_eof")),
        internals.at("asyncio.StreamReader.feed_data", internals.looks_up("_buffer", "_wakeup_waiter")),
        internals.at("asyncio.StreamReaderProtocol.data_received", internals.looks_up("_stream_reader", "feed_data")),
        internals.at("asyncio.StreamWriter.__init__", internals.looks_up("_protocol")),
        internals.at("asyncio.streams.FlowControlMixin.pause_writing", internals.looks_up("_paused")),
        internals.at("asyncio.Lock.acquire", internals.looks_up("_locked", "_waiters")),
    ),
    install=install,
    uninstall=uninstall,
    without="each upstream read waits for its connection's task in the next turn of the event loop (slower)",
)
