"""Flows read back from a file keep the address their request was recorded with.

mitmproxy's reverse mode points every HTTP flow it loads (`-r FILE`, mitmweb's `--rfile` and its Open) at today's
reverse target before any hook runs (Master.load_flow: "This makes it very easy to replay saved flows against a
different host"). This proxy's reverse target is only a default, since routing picks each request's upstream. So a
file recorded against a gateway would read back as sent to generativelanguage.googleapis.com, and the proxy's own
answers (/health) too. This addon keeps where each live flow's request pointed once the request side is done
(routed or answered here) in `flow.metadata["address"]`: {scheme, host, port, host_header}. It puts that back on a
loaded flow in `requestheaders`, the first hook such a flow gets (`flow.live` is False). Files written before the
address was kept fall back to the upstream connection the flow used, when it made one. mitmdump's `-C FILE` reads
its flows without that rewrite.

A replay starts from the recorded address, and routing then picks today's upstream (replay.py says when it differs).
"""

from __future__ import annotations

from typing import Any

from mitmproxy import http
from mitmproxy.net.http import url

KEY = "address"


def address_of(request: http.Request) -> dict[str, Any]:
    return {"scheme": request.scheme, "host": request.host, "port": request.port, "host_header": request.host_header}


def recorded(flow: http.HTTPFlow) -> dict[str, Any] | None:
    """Where the flow's request pointed when it was recorded: kept by this addon, else (older files) the upstream
    connection it made; None when neither is known."""
    kept = flow.metadata.get(KEY)
    if isinstance(kept, dict) and isinstance(kept.get("host"), str) and isinstance(kept.get("port"), int):
        return kept
    server = flow.server_conn
    if server.timestamp_start is None or not server.address:  # never connected: the proxy answered it itself
        return None
    scheme = "https" if server.tls else "http"
    host, port = str(server.address[0]), int(server.address[1])
    return {"scheme": scheme, "host": host, "port": port, "host_header": url.hostport(scheme, host, port)}


def put_back(request: http.Request, address: dict[str, Any]) -> None:
    """Point the request at `address` again, its Host header (or :authority) as it was."""
    request.scheme = str(address.get("scheme") or "http")
    request.host = address["host"]
    request.port = address["port"]
    header = address.get("host_header")
    if isinstance(header, str) and header != request.host_header:
        request.host_header = header


class RecordedAddress:
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.live:
            return
        address = recorded(flow)
        if address is not None:
            put_back(flow.request, address)

    def request(self, flow: http.HTTPFlow) -> None:
        # Every live flow, answered or not: the proxy's own answers are recorded too. A replay records anew.
        if not flow.live:
            return
        flow.metadata[KEY] = address_of(flow.request)
