"""The request-read timer: started by the headers, stopped by the whole body, a 408 only for a body still due."""

from __future__ import annotations

import asyncio

import orjson
from mitmproxy.test import taddons, tflow

from addon.formats import errors
from addon.formats.exchange import Exchange
from addon.runtime import request_timeout
from addon.runtime.request_timeout import RequestReadTimeout, answer_and_close, stalled, timeout_message


def arriving_flow():
    """A flow whose headers are in and whose body is not."""
    flow = tflow.tflow()
    flow.request.timestamp_end = None
    return flow


def test_stalled_only_while_the_body_is_due():
    flow = arriving_flow()
    assert stalled(flow)
    flow.request.timestamp_end = flow.request.timestamp_start + 1
    assert not stalled(flow)
    assert not stalled(tflow.tflow(err=True))
    assert not stalled(tflow.tflow(resp=True))


def test_headers_start_the_timer_and_the_body_stops_it():
    async def scenario():
        addon = RequestReadTimeout()
        with taddons.context(addon) as tctx:
            tctx.configure(addon, translate_request_read_timeout=30)
            flow = arriving_flow()
            addon.requestheaders(flow)
            timer = addon.timers[flow.id]
            assert 29 < timer.when() - asyncio.get_running_loop().time() <= 30
            addon.request(flow)
            assert flow.id not in addon.timers and timer.cancelled()
            errored = arriving_flow()
            addon.requestheaders(errored)
            addon.error(errored)
            assert addon.timers == {}

    asyncio.run(scenario())


def test_zero_is_no_limit_and_replays_are_not_timed():
    async def scenario():
        addon = RequestReadTimeout()
        with taddons.context(addon) as tctx:
            replay = arriving_flow()
            replay.is_replay = "request"
            addon.requestheaders(replay)
            tctx.configure(addon, translate_request_read_timeout=0)
            addon.requestheaders(arriving_flow())
            assert addon.timers == {}

    asyncio.run(scenario())


def test_expiry_fires_and_records_why():
    async def scenario():
        addon = RequestReadTimeout()
        with taddons.context(addon):
            flow, done = arriving_flow(), arriving_flow()
            addon.expire(flow, 7)
            done.request.timestamp_end = 1.0
            addon.expire(done, 7)
            return flow, done

    flow, done = asyncio.run(scenario())
    assert Exchange.of(flow).error == timeout_message(7) and "7 s" in timeout_message(7)
    assert "llm" not in done.metadata


class FakeWriter:
    """Stands in for the client's asyncio StreamWriter (what wire.client_writer finds on a live connection)."""

    def __init__(self) -> None:
        self.written, self.closed = b"", False

    def is_closing(self) -> bool:
        return self.closed

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True


def test_answer_and_close_writes_a_whole_408(monkeypatch):
    writer = FakeWriter()
    monkeypatch.setattr(request_timeout.wire, "client_writer", lambda flow: writer)
    flow = arriving_flow()
    assert answer_and_close(flow, errors.error_response("too slow", 408, "request_timeout"))
    head, _, body = writer.written.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"connection: close" in head.lower() and writer.closed
    assert orjson.loads(body)["error"]["type"] == "timeout_error"
    assert not answer_and_close(flow, errors.error_response("again", 408))  # closed: nothing more is written
    writer = FakeWriter()
    flow.request.http_version = "HTTP/2.0"  # one connection, many streams: not ours to close
    assert not answer_and_close(flow, errors.error_response("h2", 408)) and not writer.closed
