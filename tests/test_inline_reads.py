"""inline_reads: an upstream read handled in the loop turn that received it, with mitmproxy's own ConnectionHandler
(its handle_connection, server_event and drain_writers) reading real sockets; only the layer is a recorder."""

from __future__ import annotations

import asyncio
import collections
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from mitmproxy.options import Options
from mitmproxy.proxy import events, server
from mitmproxy.proxy.context import Context
from mitmproxy.test import tflow

from addon.runtime import inline_reads


class Recorder:
    """Stands in for the handler's layer: notes each read and whether a task was running when it came."""

    def __init__(self) -> None:
        self.reads: list[tuple[bytes, bool]] = []
        self.closed = asyncio.Event()

    def handle_event(self, event: events.Event) -> list:
        if isinstance(event, events.DataReceived):
            self.reads.append((event.data, asyncio.current_task() is None))
        elif isinstance(event, events.ConnectionClosed):
            self.closed.set()
        return []


class Handler(server.ConnectionHandler):
    async def handle_hook(self, hook: Any) -> None:
        pass


def in_a_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


@pytest.fixture
def installed():
    inline_reads.install(None)
    yield
    inline_reads.uninstall()


async def serve(pieces: list[bytes], gap: float, client_paused: bool = False) -> tuple[Recorder, Handler]:
    """An upstream that writes `pieces` `gap` seconds apart and closes; the handler reads it until the end."""

    async def upstream(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(gap)
        writer.close()

    listener = await asyncio.start_server(upstream, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    handler = Handler(Context(tflow.tclient_conn(), Options()))
    recorder = Recorder()
    handler.layer = recorder  # type: ignore[assignment]
    client_side = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    _, client_writer = await asyncio.open_connection("127.0.0.1", client_side.sockets[0].getsockname()[1])
    handler.transports[handler.client] = server.ConnectionIO(writer=client_writer)
    if client_paused:
        client_writer._protocol.pause_writing()  # type: ignore[attr-defined]
    conn = tflow.tserver_conn()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    handler.transports[conn] = server.ConnectionIO(reader=reader, writer=writer)
    task = asyncio.create_task(handler.handle_connection(conn))
    if client_paused:
        await asyncio.sleep(gap * len(pieces) + 0.05)
        assert len(recorder.reads) == 1  # the task handled the first read, then waits for the client to drain
        client_writer._protocol.resume_writing()  # type: ignore[attr-defined]
    await asyncio.wait_for(recorder.closed.wait(), 5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    for w in (writer, client_writer):
        w.close()
    listener.close()
    client_side.close()
    return recorder, handler


PIECES = [b"%d\r\n" % i * 20 for i in range(12)]


@in_a_loop
async def test_reads_while_the_task_waits_are_handled_in_the_callback_in_order(installed):
    recorder, _ = await serve(PIECES, 0.01)
    assert b"".join(data for data, _ in recorder.reads) == b"".join(PIECES)
    inline = [now for _, now in recorder.reads]
    assert sum(inline) >= len(PIECES) - 1  # the first read may come before the task is parked in read()


@in_a_loop
async def test_without_the_patch_every_read_goes_through_the_task():
    recorder, _ = await serve(PIECES, 0.01)
    assert b"".join(data for data, _ in recorder.reads) == b"".join(PIECES)
    assert not any(now for _, now in recorder.reads)


@in_a_loop
async def test_a_paused_client_keeps_its_backpressure_and_the_order(installed):
    recorder, _ = await serve(PIECES, 0.01, client_paused=True)
    assert b"".join(data for data, _ in recorder.reads) == b"".join(PIECES)
    assert not any(now for _, now in recorder.reads)  # nothing inline while the client's buffer was full


@in_a_loop
async def test_bytes_already_waiting_in_the_reader_are_never_overtaken(installed):
    # Pieces back to back: some arrive while the task is still handling the previous one; they queue in the
    # reader and the task takes them, and a read after them waits its turn.
    recorder, _ = await serve(PIECES * 20, 0)
    assert b"".join(data for data, _ in recorder.reads) == b"".join(PIECES * 20)


class Reader:
    def __init__(self, waiting: bool = True) -> None:
        self._waiter = asyncio.get_running_loop().create_future() if waiting else None
        self._buffer = bytearray()
        self._eof = False
        self._exception: BaseException | None = None


def handler_with(conn: Any) -> Handler:
    handler = Handler(Context(tflow.tclient_conn(), Options()))
    handler.transports[conn] = server.ConnectionIO()
    return handler


@in_a_loop
async def test_a_read_runs_now_only_when_the_task_would_do_exactly_that_next():
    conn = tflow.tserver_conn()
    handler = handler_with(conn)
    assert inline_reads.can_run_now(handler, conn, Reader())  # type: ignore[arg-type]
    assert not inline_reads.can_run_now(handler, conn, None)
    assert not inline_reads.can_run_now(handler, conn, Reader(waiting=False))  # type: ignore[arg-type]
    for attr, value in (("_buffer", bytearray(b"x")), ("_eof", True), ("_exception", OSError())):
        reader = Reader()
        setattr(reader, attr, value)
        assert not inline_reads.can_run_now(handler, conn, reader)  # type: ignore[arg-type]
    woken = Reader()
    woken._waiter.set_result(None)  # type: ignore[union-attr]
    assert not inline_reads.can_run_now(handler, conn, woken)  # type: ignore[arg-type]
    assert not inline_reads.can_run_now(handler, tflow.tserver_conn(), Reader())  # type: ignore[arg-type]
    async with handler._server_event_lock:
        assert not inline_reads.can_run_now(handler, conn, Reader())  # type: ignore[arg-type]
    handler._server_event_lock._waiters = collections.deque([asyncio.get_running_loop().create_future()])
    assert not inline_reads.can_run_now(handler, conn, Reader())  # type: ignore[arg-type]


@in_a_loop
async def test_a_handler_whose_event_handling_waits_is_finished_by_a_task():
    gate = asyncio.get_running_loop().create_future()
    done: list[str] = []

    async def handling() -> None:
        done.append("started")
        await gate
        done.append("finished")

    inline_reads.run(handling())
    assert done == ["started"]
    assert len(inline_reads._finishing) == 1  # held until done: the loop keeps only weak references to tasks
    gate.set_result(None)
    await asyncio.sleep(0.01)
    assert done == ["started", "finished"]
    assert not inline_reads._finishing


@in_a_loop
async def test_uninstall_gives_mitmproxy_its_method_back_and_open_connections_their_task(installed):
    original = inline_reads.SWAP.original
    conn = tflow.tserver_conn()
    handler = handler_with(conn)
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.sockets[0].getsockname()[1])
    handler.transports[conn] = server.ConnectionIO(reader=reader, writer=writer)
    inline_reads.attach(handler, conn)
    protocol = writer._protocol  # type: ignore[attr-defined]
    assert "data_received" in protocol.__dict__
    inline_reads.uninstall()
    assert server.ConnectionHandler.handle_connection is original
    assert "data_received" not in protocol.__dict__
    inline_reads.install(None)  # for the fixture's uninstall
    writer.close()
    listener.close()


def test_the_internals_it_reaches_are_as_it_was_written_for():
    assert inline_reads.PATCH.problems(None) == []
