"""addon/runtime/wire.py: the connection lookups behind "client gone", closing an upstream and a last SSE event.

The handlers here stand in for mitmproxy's ConnectionHandler with the one attribute wire reads (`transports`); the
start-up check (test_internals.py) sees that the real one still has it, and the e2e tests use the real thing.
"""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest
from mitmproxy import connection
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.proxy.server import ConnectionIO
from mitmproxy.test import taddons, tflow, tutils

from addon.runtime import wire

State = connection.ConnectionState


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written, self.closed = b"", False

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def master():
    """A master with mitmproxy's proxyserver addon and the wire helpers on (as after the start-up check)."""
    proxyserver = Proxyserver()
    with taddons.context(proxyserver) as tctx:
        wire.install(tctx.master)
        yield SimpleNamespace(loop=tctx.master.event_loop, connections=proxyserver.connections)
        wire.uninstall()


def writer(loop) -> asyncio.StreamWriter:
    return asyncio.StreamWriter(Transport(), asyncio.Protocol(), None, loop)


def serving(master, flow, upstream: ConnectionIO | None = None) -> SimpleNamespace:
    """Register a handler for the flow's client connection, as mitmproxy's proxyserver does."""
    transports = {flow.client_conn: ConnectionIO(writer=writer(master.loop))}
    if upstream is not None:
        transports[flow.server_conn] = upstream
    handler = SimpleNamespace(transports=transports)
    master.connections[flow.client_conn.id] = handler
    return handler


def streaming_flow():
    flow = tflow.tflow(resp=tutils.tresp(headers=((b"transfer-encoding", b"chunked"),)))
    flow.request.http_version = "HTTP/1.1"
    return flow


def test_a_connected_client_is_there(master):
    flow = tflow.tflow()
    serving(master, flow)
    assert not wire.client_gone(flow)


def test_a_client_that_left_is_gone(master):
    flow = tflow.tflow()
    handler = serving(master, flow)
    handler.transports[flow.client_conn].writer.close()
    assert wire.client_gone(flow)  # its writer is closing
    del master.connections[flow.client_conn.id]
    flow.client_conn.state = State.CAN_WRITE
    assert wire.client_gone(flow)  # mitmproxy dropped its handler after the client stopped sending
    flow.client_conn.state = State.CLOSED
    assert wire.client_gone(flow)


def test_a_failed_lookup_is_not_taken_for_a_client_that_left(master, caplog):
    flows = [tflow.tflow(), tflow.tflow()]  # mitmproxy counts both clients as connected, yet has no handler
    with caplog.at_level(logging.WARNING):
        assert not any(wire.client_gone(flow) for flow in flows)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]  # said once
    assert "found no connection handler for client" in caplog.text and "its stream is not cut" in caplog.text
    assert not wire.close_upstream(flows[0]) and not wire.write_sse_error_and_end(streaming_flow(), b"data: x\n\n")


def test_helpers_off_cut_nothing(master):
    flow = streaming_flow()
    upstream = ConnectionIO(writer=writer(master.loop))
    handler = serving(master, flow, upstream)
    wire.uninstall()
    flow.client_conn.state = State.CLOSED
    assert not wire.client_gone(flow)
    assert not wire.close_upstream(flow) and not upstream.writer.is_closing()
    flow.client_conn.state = State.OPEN
    assert not wire.write_sse_error_and_end(flow, b"data: x\n\n")
    assert handler.transports[flow.client_conn].writer.transport.written == b""


def test_close_upstream_closes_the_flows_server_connection(master):
    flow = tflow.tflow()
    upstream = ConnectionIO(writer=writer(master.loop))
    serving(master, flow, upstream)
    assert wire.close_upstream(flow) and upstream.writer.is_closing()


def test_close_upstream_aborts_a_connection_still_being_made(master):
    flow = tflow.tflow()
    connecting = master.loop.create_task(asyncio.sleep(60))
    serving(master, flow, ConnectionIO(handler=connecting))
    assert wire.close_upstream(flow)
    with pytest.raises(asyncio.CancelledError):
        master.loop.run_until_complete(connecting)


def test_close_upstream_without_a_connection_says_so(master):
    flow = tflow.tflow()
    serving(master, flow)
    assert not wire.close_upstream(flow)


def test_a_last_event_ends_a_chunked_stream(master):
    flow = streaming_flow()
    client = serving(master, flow).transports[flow.client_conn].writer.transport
    assert wire.write_sse_error_and_end(flow, b"data: {}\n\n")
    assert client.written == b"a\r\ndata: {}\n\n\r\n0\r\n\r\n"


def test_no_last_event_for_a_stream_that_is_not_chunked_or_a_client_that_left(master):
    flow = streaming_flow()
    client = serving(master, flow).transports[flow.client_conn].writer.transport
    del flow.response.headers["transfer-encoding"]
    assert not wire.write_sse_error_and_end(flow, b"data: {}\n\n")
    flow.response.headers["transfer-encoding"] = "chunked"
    flow.client_conn.state = State.CAN_WRITE
    assert not wire.write_sse_error_and_end(flow, b"data: {}\n\n")
    assert client.written == b""


def test_a_fallback_attempt_uses_its_replay_handler_and_the_waiting_clients_connection(master):
    original, attempt = tflow.tflow(), tflow.tflow()
    serving(master, original)
    upstream = ConnectionIO(writer=writer(master.loop))
    wire.replays[attempt.id] = (SimpleNamespace(transports={attempt.server_conn: upstream}), original)
    try:
        assert not wire.client_gone(attempt)
        original.client_conn.state = State.CLOSED
        assert wire.client_gone(attempt)
        assert wire.close_upstream(attempt) and upstream.writer.is_closing()
    finally:
        del wire.replays[attempt.id]
