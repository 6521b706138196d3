"""A test-only mitmproxy script: `GET /_census` answers how many flow objects the proxy process still holds.

Load it after the proxy's own script (`-s tests/flow_census.py`); the soak and the memory tests ask it whether
finished flows really leave memory. It collects garbage first, so only flows something still refers to count.

A client that closes its connection and at once asks for the census can be faster than mitmproxy's teardown of
that connection: the client has its answer and has closed, but the connection's handler (its layers, and what they
refer to) still exists for a few more turns of the event loop. So the census first waits, at most SETTLE seconds,
until no other connection is closing: every handler mitmproxy still has is for a client that is still connected.
What a connection that stays open holds is counted as it is, and so is anything held after the wait: the wait
changes when the census counts, never what it counts. The answer also says how many other connections were
still open and how many still closing.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time

from mitmproxy import connection, ctx, flow, http

SETTLE = 10.0  # seconds the census waits at most for closed connections to be torn down
POLL = 0.005


def others(census: http.HTTPFlow) -> list[connection.Client]:
    """The clients of the connections mitmproxy still handles, the census's own aside."""
    handlers = ctx.master.addons.get("proxyserver").connections.values()
    return [h.client for h in handlers if h.client is not census.client_conn]


def closing(census: http.HTTPFlow) -> int:
    """Connections mitmproxy still handles whose client has closed (its side, or entirely)."""
    return sum(client.state is not connection.ConnectionState.OPEN for client in others(census))


class FlowCensus:
    async def request(self, f: http.HTTPFlow) -> None:
        if not f.request.path.endswith("/_census"):  # routing may have pointed it at the upstream already
            return
        deadline = time.monotonic() + SETTLE
        while closing(f) and time.monotonic() < deadline:
            await asyncio.sleep(POLL)
        gc.collect()
        flows = [o for o in gc.get_objects() if isinstance(o, flow.Flow)]
        body = {
            "flows": len(flows),
            "finished": sum(not o.live for o in flows),
            "open": len(others(f)) - closing(f),  # other clients still connected
            "closing": closing(f),
        }
        f.response = http.Response.make(200, json.dumps(body), {"content-type": "application/json"})


addons = [FlowCensus()]
