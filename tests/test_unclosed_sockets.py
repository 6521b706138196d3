"""Sockets mitmproxy closed but left open: found by their ended reading task, closed at the client's disconnect."""

from __future__ import annotations

import asyncio
import types

from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.proxy.server import ConnectionIO
from mitmproxy.test import taddons, tflow

from addon.runtime import unclosed_sockets
from addon.runtime.unclosed_sockets import UnclosedSockets, close_left_open, left_open


async def connected_pairs(count: int) -> tuple[asyncio.Server, list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]:
    """`count` real TCP connections: (the client's reader, the server side's writer) each. The client's writers are
    kept on the server object: a StreamWriter closes its connection when it is collected."""
    accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pairs, server.client_writers = [], []  # type: ignore[attr-defined]
    for _ in range(count):
        reader, client_writer = await asyncio.open_connection("127.0.0.1", port)
        server.client_writers.append(client_writer)  # type: ignore[attr-defined]
        pairs.append((reader, await accepted.get()))
    return server, pairs


async def closed_by_peer(reader: asyncio.StreamReader, wait: float = 0.5) -> bool:
    """True when the server side closed the connection (EOF) within `wait` seconds."""
    try:
        return await asyncio.wait_for(reader.read(), wait) == b""
    except TimeoutError:
        return False


def transports_of(pairs, ended: asyncio.Task, running: asyncio.Task) -> dict:
    """Four connections: one left open (task ended, writer open), one still read, one closed, one with no task."""
    (_, stranded), (_, reading), (_, closed), (_, untasked) = pairs
    closed.close()
    return {
        "stranded": ConnectionIO(handler=ended, writer=stranded),
        "reading": ConnectionIO(handler=running, writer=reading),
        "closed": ConnectionIO(handler=ended, writer=closed),
        "untasked": ConnectionIO(handler=None, writer=untasked),
    }


def test_only_a_socket_whose_reading_task_ended_is_closed():
    async def scenario():
        server, pairs = await connected_pairs(4)
        ended, running = asyncio.ensure_future(asyncio.sleep(0)), asyncio.ensure_future(asyncio.sleep(30))
        await ended
        transports = transports_of(pairs, ended, running)
        assert left_open(transports) == ["stranded"]
        assert close_left_open(types.SimpleNamespace(transports=transports)) == 1
        assert await closed_by_peer(pairs[0][0])
        assert not await closed_by_peer(pairs[1][0]) and not await closed_by_peer(pairs[3][0])
        assert left_open(transports) == []
        running.cancel()
        for _, writer in pairs:
            writer.close()
        server.close()

    asyncio.run(scenario())


def test_the_client_disconnect_closes_what_its_handler_left_open_while_the_patch_is_installed():
    async def scenario():
        server, pairs = await connected_pairs(4)
        ended, running = asyncio.ensure_future(asyncio.sleep(0)), asyncio.ensure_future(asyncio.sleep(30))
        await ended
        addon, proxyserver = UnclosedSockets(), Proxyserver()
        with taddons.context(addon, proxyserver) as tctx:
            assert unclosed_sockets.PATCH.problems(tctx.master) == []
            client = tflow.tclient_conn()
            proxyserver.connections[client.id] = types.SimpleNamespace(transports=transports_of(pairs, ended, running))
            addon.client_disconnected(client)  # not installed: mitmproxy's behaviour
            assert not await closed_by_peer(pairs[0][0], 0.2)
            unclosed_sockets.install()
            try:
                addon.client_disconnected(tflow.tclient_conn())  # another client's handler: nothing
                assert not await closed_by_peer(pairs[0][0], 0.2)
                addon.client_disconnected(client)
                assert await closed_by_peer(pairs[0][0])
                assert not await closed_by_peer(pairs[1][0], 0.2)
            finally:
                unclosed_sockets.uninstall()
        running.cancel()
        for _, writer in pairs:
            writer.close()
        server.close()

    asyncio.run(scenario())
