"""Bounded memory in mitmweb: keep the newest flows, drop older ones, and say so in the flow list.

mitmweb's View keeps every flow it ever saw; under an agent that sends thousands of requests a day it grows until
the process is killed. After each finished flow this addon removes the oldest finished flows beyond
`translate_keep_flows` flows or `translate_keep_flows_mb` megabytes of bodies (they stay in the `-w` file when one
is written). One placeholder flow at the top of the list, "INFO http://translate-proxy/N older flows dropped ...",
and a line in the event log show how many went.

mitmdump has no View: it keeps no finished flow at all, so this addon does nothing there.

How the memory of the flows that leave is given back to the system: addon/memory.py.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from mitmproxy import connection, ctx, exceptions, http
from mitmproxy.flow import Flow

from ..formats.exchange import Exchange
from .option_help import one_paragraph

if TYPE_CHECKING:
    from mitmproxy.addons.view import View

logger = logging.getLogger(__name__)

MARKER_URL = "http://translate-proxy/"
LOG_EVERY = 60.0  # seconds between two "dropped" log lines


def flow_bytes(f: Flow) -> int:
    """The bytes a finished flow holds: request and response bodies, the upstream's raw stream, and the client's
    request body kept beside the rewritten one."""
    if not isinstance(f, http.HTTPFlow):
        return 0
    size = len(f.request.raw_content or b"")
    if f.response is not None:
        size += len(f.response.raw_content or b"")
    ex = Exchange.find(f)
    if ex is None:
        return size
    kept = ex.client_request.get("body") if ex.client_request else None
    return size + sum(len(b) for b in (ex.upstream_raw, kept) if isinstance(b, (bytes, str)))


def marker_text(dropped: int, keep_flows: int, keep_mb: int) -> tuple[str, str]:
    """The placeholder's path and its body: how many flows went, why, and where they still are."""
    limits = ", ".join(
        f"{name}={value}"
        for name, value in (("translate_keep_flows", keep_flows), ("translate_keep_flows_mb", keep_mb))
        if value
    )
    path = f"/{dropped} older flows dropped ({limits})"
    body = (
        f"{dropped} older flows were dropped from mitmweb's memory to keep it bounded ({limits}; "
        "0 means no limit).\nThey are in the -w file if the proxy was started with one: open it with "
        "`mitmweb -r FILE` or `mitmdump -nr FILE`.\n"
    )
    return path, body


class FlowRetention:
    def __init__(self) -> None:
        self.view: View | None = None  # mitmweb's View addon, found on the first finished flow
        self.sizes: dict[str, int] = {}  # flow id -> bytes, for finished flows in the view's store
        self.kept_bytes = 0
        self.dropped = 0
        self.marker: http.HTTPFlow | None = None
        self.last_log = 0.0

    def load(self, loader) -> None:
        loader.add_option(
            "translate_keep_flows",
            int,
            2000,
            one_paragraph("""
            How many flows mitmweb keeps in memory; after each finished flow the oldest finished ones beyond it
            are dropped (they stay in the -w file when one is written) and a placeholder flow at the top of the
            list counts them. 0: no limit. mitmdump keeps no finished flow at all.
            """),
        )
        loader.add_option(
            "translate_keep_flows_mb",
            int,
            512,
            one_paragraph("""
            How many megabytes of bodies (request, response, raw upstream stream) mitmweb keeps in memory; the
            oldest finished flows beyond it are dropped like those beyond translate_keep_flows. 0: no limit.
            """),
        )

    def configure(self, updated: set[str]) -> None:
        for name in ("translate_keep_flows", "translate_keep_flows_mb"):
            if name in updated and getattr(ctx.options, name) < 0:
                raise exceptions.OptionsError(
                    f"Cannot use {name} {getattr(ctx.options, name)}: it must be 0 (no limit) or a positive number."
                )
        if {"translate_keep_flows", "translate_keep_flows_mb"} & updated and self.view is not None:
            self.trim(self.view)

    def response(self, f: http.HTTPFlow) -> None:
        self.finished(f)

    def error(self, f: http.HTTPFlow) -> None:
        self.finished(f)

    def finished(self, f: http.HTTPFlow) -> None:
        view = self.view if self.view is not None else self.attach()
        if view is None:
            return
        if view.get_by_id(f.id) is not None:
            size = flow_bytes(f)
            self.kept_bytes += size - self.sizes.get(f.id, 0)
            self.sizes[f.id] = size
        self.trim(view)

    def attach(self) -> View | None:
        """mitmweb's View, followed through its signals from now on; None under mitmdump."""
        self.view = ctx.master.addons.get("view")
        if self.view is None:
            return None
        self.view.sig_store_remove.connect(self.forget)
        self.view.sig_store_refresh.connect(self.recount)
        return self.view

    def forget(self, flow: Flow) -> None:  # the View's signal passes flow=...
        self.kept_bytes -= self.sizes.pop(flow.id, 0)

    def recount(self) -> None:
        """The store was cleared (or cleared of unmarked flows): keep sizes only for flows still in it."""
        view = self.view
        if view is None:  # connected in attach(), once the view is known
            return
        self.sizes = {fid: size for fid, size in self.sizes.items() if view.get_by_id(fid) is not None}
        self.kept_bytes = sum(self.sizes.values())

    def over(self, view: View) -> bool:
        keep_flows, keep_mb = ctx.options.translate_keep_flows, ctx.options.translate_keep_flows_mb
        count = view.store_count() - (self.shown_marker(view) is not None)
        return bool(keep_flows and count > keep_flows or keep_mb and self.kept_bytes > keep_mb * 1024 * 1024)

    def shown_marker(self, view: View) -> http.HTTPFlow | None:
        """The placeholder flow, when it is in the view's store."""
        marker = self.marker
        return marker if marker is not None and view.get_by_id(marker.id) is marker else None

    def trim(self, view: View) -> None:
        if not self.over(view):
            return
        dropped = 0
        for old in view.resolve("@all"):  # oldest first: the store keeps arrival order
            if old is self.marker or old.live or old.intercepted:
                continue
            view.remove([old])  # one at a time: a longer list logs "Removed N flows" each time
            dropped += 1
            if not self.over(view):
                break
        if dropped:
            self.dropped += dropped
            self.show(view)

    def show(self, view: View) -> None:
        path, body = marker_text(self.dropped, ctx.options.translate_keep_flows, ctx.options.translate_keep_flows_mb)
        marker = self.shown_marker(view)
        if marker is None:
            self.marker = self.make_marker(view, path, body)
            view.add([self.marker])
        else:
            assert marker.response is not None  # make_marker gave it one
            marker.request.path, marker.response.text = path, body
            view.update([marker])
        now = time.monotonic()
        if now - self.last_log >= LOG_EVERY:
            self.last_log = now
            logger.info(f"retention: {body.splitlines()[0]}")

    def make_marker(self, view: View, path: str, body: str) -> http.HTTPFlow:
        """A flow that sorts before every flow still kept (it stands where the dropped ones were)."""
        start = min((f.timestamp_created for f in view.resolve("@all")), default=time.time()) - 0.001
        marker = http.HTTPFlow(
            connection.Client(peername=("", 0), sockname=("", 0), timestamp_start=start),
            connection.Server(address=None),
        )
        marker.request = http.Request.make("INFO", MARKER_URL)
        marker.request.timestamp_start = marker.request.timestamp_end = start
        marker.request.path = path
        response = http.Response.make(200, b"", {"content-type": "text/plain; charset=utf-8"})
        response.timestamp_start = response.timestamp_end = start
        response.text = body
        marker.response = response
        marker.timestamp_created = start  # mitmweb's default order
        marker.marked = ":scissors:"
        marker.comment = "older flows were dropped from memory: see translate_keep_flows"
        return marker
