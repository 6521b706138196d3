"""Timeouts on the upstream, sized for LLM calls: an answer may take minutes, a stream may pause for long.

mitmproxy has no timeout on connecting to, or waiting for, a server. This addon keeps the LLM flows in flight in
one dict and looks at them twice a second from one task (cheaper than a timer per flow). A flow that waited too
long is marked `timed_out` in its record and failed in transit (flow_failure.fail: mitmproxy's layers close its
upstream connection, or cut its connect short); mitmproxy then runs the `error` hook, where responses answers 504
(nothing sent yet) or ends the stream with an SSE error event. A client that left has its upstream closed (by
mitmproxy itself; for a fallback attempt, at the next look), so nothing keeps generating for nobody.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import NamedTuple

from mitmproxy import ctx, http

from ..formats.exchange import Exchange
from ..runtime import flow_failure, replays
from ..runtime.option_help import one_paragraph
from .stream_rewrite import rewriter_of

logger = logging.getLogger(__name__)

TICK = 0.5  # seconds between looks at the flows in flight


class Expired(NamedTuple):
    phase: str  # "connect", "read", "idle", "client gone"
    message: str


def expired(flow: http.HTTPFlow, since: float, now: float, connect: float, read: float, idle: float) -> Expired | None:
    """What ran out for this flow at `now` (time.time()), if anything; `since` is when its request arrived."""
    response = flow.response
    if response is None:
        connected = flow.server_conn.timestamp_tcp_setup
        if connected is None:
            if now - since > connect:
                return Expired(
                    "connect",
                    f"The upstream did not accept a connection within {connect:g} s (translate_connect_timeout).",
                )
            return None
        if now - max(since, connected) > read:
            return Expired("read", f"The upstream sent no answer within {read:g} s (translate_read_timeout).")
        return None
    rewriter = rewriter_of(flow)
    if rewriter is not None:
        if rewriter.complete:
            return None  # the client has the whole answer; a client that leaves now has not cut anything
        if replays.client_gone(flow):
            return Expired("client gone", "The client left in the middle of the stream; the upstream was closed.")
        if now - rewriter.last_data > idle:
            return Expired(
                "idle",
                f"The upstream stream stalled: nothing for {idle:g} s (translate_idle_timeout); the stream was ended.",
            )
        return None
    if now - (response.timestamp_start or since) > read:
        return Expired("read", f"The upstream did not finish its answer within {read:g} s (translate_read_timeout).")
    return None


class UpstreamTimeouts:
    def __init__(self) -> None:
        self.in_flight: dict[str, tuple[http.HTTPFlow, float]] = {}
        self.task: asyncio.Task | None = None

    def load(self, loader) -> None:
        loader.add_option(
            "translate_connect_timeout",
            int,
            60,
            one_paragraph("""
            Seconds to wait for the upstream to accept a connection; then the client gets a 504.
            """),
        )
        loader.add_option(
            "translate_read_timeout",
            int,
            480,
            one_paragraph("""
            Seconds to wait for the upstream's answer to begin (and for a non-streamed answer to end); then the
            client gets a 504. Long, because a model may think for minutes before it answers. Keep it below
            mitmproxy's tcp_timeout (600), which otherwise drops an idle client connection first.
            """),
        )
        loader.add_option(
            "translate_idle_timeout",
            int,
            300,
            one_paragraph("""
            Seconds a streamed answer may go without a byte from the upstream; then the client's stream ends with
            an SSE error event and the upstream connection is closed.
            """),
        )

    def running(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self.watch(), name="upstream timeouts")

    def done(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        ex = Exchange.find(flow)
        if ex is None or ex.key is None:
            return
        self.in_flight[flow.id] = (flow, time.time())
        self.running()

    def response(self, flow: http.HTTPFlow) -> None:
        self.in_flight.pop(flow.id, None)

    def error(self, flow: http.HTTPFlow) -> None:
        self.in_flight.pop(flow.id, None)

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            try:
                self.check(time.time())
            except Exception:  # one bad flow must not end the watch for all
                logger.exception("upstream timeout check failed")

    def check(self, now: float) -> None:
        limits = (
            ctx.options.translate_connect_timeout,
            ctx.options.translate_read_timeout,
            ctx.options.translate_idle_timeout,
        )
        for flow_id, (flow, since) in list(self.in_flight.items()):
            if not flow.live or flow.error:
                del self.in_flight[flow_id]
                continue
            if (found := expired(flow, since, now, *limits)) is not None:
                del self.in_flight[flow_id]
                self.expire(flow, found)

    @staticmethod
    def expire(flow: http.HTTPFlow, found: Expired) -> None:
        ex = Exchange.of(flow)
        if found.phase != "client gone":
            ex.timed_out = True
        ex.error = found.message
        ended = flow_failure.fail(flow, found.message)
        logger.info(
            f"{found.phase}: {'ended' if ended else 'could not end'} {ex.client_model or flow.request.pretty_url}"
        )
