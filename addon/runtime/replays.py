"""mitmproxy's client replays the proxy can reach: fallback attempts and a user's replays (mitmweb, mitmdump -C).

A replay runs on mitmproxy's ReplayHandler, a connection handler of its own outside the proxyserver's connections;
ClientPlayback keeps it in a local variable only. So that a timeout or a stop can end a replay in flight like any
flow (flow_failure.py), this patch has ClientPlayback build `Handler`, a ReplayHandler that notes itself here by
its flow's id, and fallbacks.py builds the same. A fallback attempt also notes the client's flow waiting for its
answer (`waiting`): a client that left ends its attempts, and nothing is ever sent to a client from an attempt.

Without the patch (ClientPlayback or ReplayHandler changed), a user's replay has no proxy timeouts (mitmproxy's
own behaviour); fallback attempts are still noted, as fallbacks.py builds their handlers itself.
"""

from __future__ import annotations

import weakref
from typing import Any

from mitmproxy import http
from mitmproxy.addons import clientplayback
from mitmproxy.connection import ConnectionState

from . import internals

handlers: weakref.WeakValueDictionary[str, clientplayback.ReplayHandler] = weakref.WeakValueDictionary()
waiting: dict[str, http.HTTPFlow] = {}  # a fallback attempt's flow id -> the client's flow that waits for it


class Handler(clientplayback.ReplayHandler):
    """mitmproxy's ReplayHandler, noted by its flow's id while it exists."""

    def __init__(self, flow: http.HTTPFlow, options: Any) -> None:
        super().__init__(flow, options)
        handlers[flow.id] = self


def handler_of(flow: http.HTTPFlow) -> clientplayback.ReplayHandler | None:
    return handlers.get(flow.id)


def client_gone(flow: http.HTTPFlow) -> bool:
    """True when the client of this flow has left (closed its connection, or half-closed it: mitmproxy takes a
    client that sent its FIN as gone too). A fallback attempt asks about the client waiting for it; a user's replay
    has no client, which never leaves."""
    if (client_flow := waiting.get(flow.id)) is not None:
        return client_gone(client_flow)
    if flow.id in handlers:
        return False
    return not flow.client_conn.state & ConnectionState.CAN_READ


SWAP = internals.Swap(clientplayback, "ReplayHandler", Handler)

PATCH = internals.Patch(
    name="replay handlers",
    written_for="12.3.1",
    internals=(
        internals.at("mitmproxy.addons.clientplayback.ClientPlayback.playback", internals.looks_up("ReplayHandler")),
        internals.at(
            "mitmproxy.addons.clientplayback.ReplayHandler",
            internals.signature("flow", "options"),
            internals.subclass("mitmproxy.proxy.server.ConnectionHandler"),
            internals.members("replay", "server_event"),
        ),
    ),
    install=SWAP.install,
    uninstall=SWAP.uninstall,
    without="a user's client replay (mitmweb, mitmdump -C) has no proxy timeouts and is not ended by a stop",
)
