"""A clean stop on SIGTERM or Ctrl-C: answers in flight get a few seconds to finish, then end with an error.

mitmproxy's signal handlers ask the master to shut down; it then runs every addon's `done` hook in order and
exits. This addon's `done` waits up to `translate_shutdown_grace` seconds for the requests in flight (a second
SIGTERM or Ctrl-C stops the wait); requests that arrive meanwhile get a 503. What is still running then is failed
in transit (flow_failure.fail, through mitmproxy's layers): mitmproxy runs the `error` hook, where responses ends a begun
stream with an SSE error event and answers a request still waiting with an OpenAI-shaped error. Every flow has
then passed its last hook, so the `save` addon, whose `done` runs after this one, writes a complete -w file.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
import weakref
from collections.abc import Coroutine
from typing import Any

from mitmproxy import ctx, exceptions, http

from ..formats import errors
from ..formats.exchange import Exchange
from . import flow_failure
from .option_help import one_paragraph

logger = logging.getLogger(__name__)

POLL = 0.05  # seconds between looks at the requests in flight
SETTLE = 2.0  # seconds for the ended requests to pass their error hooks


class GracefulShutdown:
    def __init__(self) -> None:
        self.in_flight: weakref.WeakSet[http.HTTPFlow] = weakref.WeakSet()
        self.stopping = False
        self.hurry = asyncio.Event()

    def load(self, loader) -> None:
        loader.add_option(
            "translate_shutdown_grace",
            int,
            5,
            one_paragraph("""
            Seconds a stop (SIGTERM, Ctrl-C) waits for answers in flight before it ends them: a begun stream with
            an SSE error event, a request still waiting with an error response. New requests meanwhile get a 503;
            a second SIGTERM or Ctrl-C stops at once. 0: do not wait.
            """),
        )

    def configure(self, updated: set[str]) -> None:
        if "translate_shutdown_grace" in updated and ctx.options.translate_shutdown_grace < 0:
            raise exceptions.OptionsError(
                f"Cannot use translate_shutdown_grace "
                f"{ctx.options.translate_shutdown_grace}: it must be 0 or more seconds."
            )

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        if self.stopping:
            flow.response = errors.error_response(
                "The proxy is shutting down; send the request again once it is back.",
                503,
                "proxy_shutting_down",
                {"connection": "close"},
            )
            return
        self.in_flight.add(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self.in_flight.discard(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self.in_flight.discard(flow)

    def running_flows(self) -> list[http.HTTPFlow]:
        return [f for f in self.in_flight if f.live and not f.error]

    def done(self) -> Coroutine[Any, Any, None] | None:
        # Not `async def`: mitmproxy removes a reloaded script's addons through its sync path, which refuses
        # coroutine functions (and then loads none of the new code). Only a drain needs the event loop.
        self.stopping = True
        if not self.running_flows():
            return None
        return self.drain(ctx.options.translate_shutdown_grace)

    async def drain(self, grace: float) -> None:
        """Give the answers in flight `grace` seconds, then end the rest with an error."""
        self.listen_for_hurry()
        logger.info(
            f"shutting down: {len(self.running_flows())} in flight, waiting up to {grace:g} s for them "
            "(translate_shutdown_grace); SIGTERM or Ctrl-C again stops at once"
        )
        await self.wait(grace, self.hurry)
        left = self.running_flows()
        for flow in left:
            self.end(flow, grace)
        # Short, and not cut short: until each ended flow has passed its error hook and mitmproxy's layers have sent
        # its client the last event (mitmproxy marks the flow no longer live right after), at most SETTLE seconds.
        deadline = time.monotonic() + SETTLE
        while any(flow.live for flow in left) and time.monotonic() < deadline:
            await asyncio.sleep(POLL)

    def listen_for_hurry(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.hurry.set)
            except (NotImplementedError, RuntimeError, ValueError):  # not on this platform, or not the main thread
                pass

    async def wait(self, seconds: float, stop: asyncio.Event) -> None:
        """Until nothing is in flight, `seconds` passed, or `stop` is set."""
        deadline = time.monotonic() + seconds
        while self.running_flows() and time.monotonic() < deadline and not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), POLL)
            except TimeoutError:
                pass

    @staticmethod
    def end(flow: http.HTTPFlow, grace: float) -> None:
        ex = Exchange.of(flow)
        message = f"The proxy was stopped while this answer was in flight (after {grace:g} s of grace)."
        ex.error, ex.shutdown = message, True
        if not flow_failure.fail(flow, message):
            flow.kill()
        logger.info(f"shutting down: ended {ex.client_model or flow.request.pretty_url} in flight")
