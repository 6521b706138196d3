"""The Host header the client sent, kept for the client's request (export, replay), the upstream's sent upstream.

In reverse-proxy mode mitmproxy replaces the client's Host header with the reverse target's before any hook runs,
so the client request that client_request.py keeps (and `./mitm_run.sh export` shows) would name the upstream.
This addon has mitmproxy keep the header (its `keep_host_header` option, set in `running` for a reverse proxy)
and, placed after ClientRequest and before Routing, puts the target's Host back itself, as mitmproxy would have:
nothing but the kept client request ever sees the client's Host. Routing then points the request at its upstream
(setting the host updates the header too).
"""

from __future__ import annotations

from mitmproxy import ctx, http
from mitmproxy.net.http import url
from mitmproxy.proxy import mode_specs


class ClientHost:
    def running(self) -> None:
        reverse = any(isinstance(mode_specs.ProxyMode.parse(m), mode_specs.ReverseMode) for m in ctx.options.mode)
        if reverse and not ctx.options.keep_host_header:
            ctx.options.update(keep_host_header=True)

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        request = flow.request
        if request.host_header is not None:  # as mitmproxy does for a reverse proxy without keep_host_header
            request.host_header = url.hostport(request.scheme, request.host, request.port)
