"""A limit on how long a client may take to send its request body; then it gets a 408 and its connection closes.

A client that sends its headers and then stalls (or trickles) its body would hold a connection, and a flow, for
as long as it likes: mitmproxy's own tcp_timeout only ends a connection that is wholly silent, and only after
10 minutes. The timer starts when the headers are in (`requestheaders`) and stops when the whole body is
(`request`). Written for mitmproxy 12: while a body is being read nothing has been sent to the client yet, so the
408 is written straight onto the client's connection (wire.client_writer), which is then closed; mitmproxy sees
the client go and ends the flow with an error, which the report shows as refused by the proxy.
"""

from __future__ import annotations

import asyncio
import logging

from mitmproxy import ctx, http

from ..formats import errors
from ..formats.exchange import Exchange
from . import wire
from .error_pages import assemble_whole
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


def answer_and_close(flow: http.HTTPFlow, response: http.Response) -> bool:
    """Write a whole response to an HTTP/1 client whose request is still arriving, and close its connection.

    True when it was written; False when the client is gone or speaks another protocol (its connection carries
    other streams that must not be cut).
    """
    writer = wire.client_writer(flow)
    if writer is None or writer.is_closing() or not flow.request.http_version.startswith("HTTP/1"):
        return False
    writer.write(assemble_whole(response))
    writer.close()  # what is buffered is still sent; then mitmproxy sees the client go
    return True


class RequestReadTimeout:
    def __init__(self) -> None:
        self.timers: dict[str, asyncio.TimerHandle] = {}

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

    def done(self) -> None:
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()

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
        # The report logs the refusal when mitmproxy ends the flow; this says only whether the 408 went out.
        sent = answer_and_close(flow, errors.error_response(message, 408, "request_timeout"))
        logger.debug(f"request read timeout: {'408 sent' if sent else 'nothing sent'} to {flow.client_conn.peername}")
