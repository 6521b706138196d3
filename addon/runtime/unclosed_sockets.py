"""A connection mitmproxy has closed is closed: its socket too, when a race in mitmproxy 12.3.1 leaves it open.

mitmproxy reads each connection in one task (`ConnectionHandler.handle_connection`), which hands what it read to
`server_event`; that waits for the handler's event lock, and with mitmproxy's eager tasks a hook's completion may
hold a place in that lock's queue. When another task (a hook's completion: a timeout's 408, a killed flow) closes
the connection while the reading task waits for the lock, the task is cancelled inside `server_event`, where
mitmproxy does not catch the cancellation: it ends before it closes its socket. mitmproxy logs the client's
disconnect, but the socket stays open: the client, which got its whole answer, waits for the close that never
comes, and the proxy keeps the file descriptor for good. A client still sending when it is refused (a trickled
body cut by translate_request_read_timeout) meets it almost every time.

In the `client_disconnected` hook, which mitmproxy runs once the client's reading task has ended, this addon
closes every socket of that client's handler whose reading task has ended but whose writer is still open: what
mitmproxy's own clean-up would have closed. A reading task still running is left to mitmproxy, which cancels and
closes it after the hook. Nothing is replaced; the patch only reads the proxyserver's handlers and their transports.
The fix mitmproxy could take: catch the cancellation around `server_event` in `handle_connection` as it does around
its reads, so the socket is closed on every way out.
"""

from __future__ import annotations

import logging
from typing import Any

from mitmproxy import connection, ctx

from . import internals

logger = logging.getLogger(__name__)

_state = {"installed": False}


def left_open(transports: dict[Any, Any]) -> list[Any]:
    """The connections whose reading task has ended but whose writer is still open."""
    return [
        conn
        for conn, io in transports.items()
        if io.handler is not None and io.handler.done() and io.writer is not None and not io.writer.is_closing()
    ]


def close_left_open(handler: Any) -> int:
    """Close what `left_open` finds in a connection handler; how many were closed."""
    stranded = left_open(handler.transports)
    for conn in stranded:
        handler.transports[conn].writer.close()
    return len(stranded)


class UnclosedSockets:
    def client_disconnected(self, client: connection.Client) -> None:
        if not _state["installed"]:
            return
        proxyserver = ctx.master.addons.get("proxyserver")
        handler = proxyserver.connections.get(client.id) if proxyserver is not None else None
        if handler is not None and (closed := close_left_open(handler)):
            logger.debug(f"{client.peername}: closed {closed} socket(s) mitmproxy had closed but left open")


def install(master: Any = None) -> None:
    _state["installed"] = True


def uninstall() -> None:
    _state["installed"] = False


def installed() -> bool:
    return _state["installed"]


SERVER = "mitmproxy.proxy.server"
PATCH = internals.Patch(
    name="unclosed sockets",
    written_for="12.3.1",
    internals=(
        internals.on_master(
            "mitmproxy.addons.proxyserver.Proxyserver.connections",
            lambda master: master.addons.get("proxyserver"),
            "connections",
            internals.instance(dict),
        ),
        internals.at(f"{SERVER}.ConnectionHandler", internals.annotated("transports")),
        internals.at(f"{SERVER}.ConnectionIO", internals.fields("handler", "writer")),
    ),
    install=install,
    uninstall=uninstall,
    without="a connection closed while its client was still sending may keep its socket open: the client waits "
    "for the close until it gives up",
)
