"""A limit on how long a client may take to send its request body; then it gets a 408 and its connection closes.

A client that sends its headers and then stalls (or trickles) its body would hold a connection, and a flow, for
as long as it likes: mitmproxy's own tcp_timeout only ends a connection that is wholly silent, and only after
10 minutes. The timer starts when the headers are in (`requestheaders`) and stops when the whole body is
(`request`). Then the flow is failed in transit (flow_failure.fail); in the `error` hook that follows, this addon
sets the 408 as the flow's response, which mitmproxy's layers send (stream_end.py; TLS and HTTP/2 clients too)
before the client's connection (HTTP/1) or stream (HTTP/2) is closed. The report shows it as refused by the proxy.
"""

from __future__ import annotations

import asyncio
import logging

from mitmproxy import ctx, http

from ..formats import errors
from ..formats.exchange import Exchange
from . import flow_failure
from .option_help import one_paragraph

logger = logging.getLogger(__name__)


def stalled(flow: http.HTTPFlow) -> bool:
    """True while the flow's request body has not fully arrived and nothing else has ended the flow."""
    return flow.live and flow.error is None and flow.response is None and flow.request.timestamp_end is None


def timeout_message(seconds: int) -> str:
    return (
        f"The request body did not arrive within {seconds} s (translate_request_read_timeout); "
        "the proxy closed the connection. Send the whole body without pausing, or raise the option."
    )


class RequestReadTimeout:
    def __init__(self) -> None:
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.expired: dict[str, str] = {}  # flow id -> the message of its timeout, until its error hook

    def load(self, loader) -> None:
        loader.add_option(
            "translate_request_read_timeout",
            int,
            120,
            one_paragraph("""
            Seconds a client may take to send a request's body once its headers are in; then it gets a 408 and
            its connection is closed. 0 is no limit.
            """),
        )

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live or flow.is_replay:
            return
        seconds = ctx.options.translate_request_read_timeout
        if seconds > 0:
            loop = asyncio.get_running_loop()
            self.timers[flow.id] = loop.call_later(seconds, self.expire, flow, seconds)

    def request(self, flow: http.HTTPFlow) -> None:
        self.stop(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self.stop(flow)
        if (message := self.expired.pop(flow.id, None)) is not None and flow.response is None:
            flow.response = errors.error_response(message, 408, "request_timeout")  # sent by stream_end.py

    def done(self) -> None:
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()
        self.expired.clear()

    def stop(self, flow: http.HTTPFlow) -> None:
        timer = self.timers.pop(flow.id, None)
        if timer is not None:
            timer.cancel()

    def expire(self, flow: http.HTTPFlow, seconds: int) -> None:
        self.timers.pop(flow.id, None)
        if not stalled(flow):
            return
        message = timeout_message(seconds)
        Exchange.of(flow).error = message
        self.expired[flow.id] = message
        # The report logs the refusal when mitmproxy ends the flow; this says only whether it could be ended.
        ended = flow_failure.fail(flow, message)
        logger.debug(f"request read timeout: {'ended' if ended else 'could not end'} {flow.client_conn.peername}")
