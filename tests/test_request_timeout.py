"""The request-read timer: started by the headers, stopped by the whole body, a 408 only for a body still due."""

from __future__ import annotations

import asyncio

import orjson
from mitmproxy.flow import Error
from mitmproxy.test import taddons, tflow

from addon.formats.exchange import Exchange
from addon.runtime import request_timeout
from addon.runtime.request_timeout import RequestReadTimeout, stalled, timeout_message


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


def test_an_expired_request_is_failed_in_transit_and_its_error_hook_answers_408(monkeypatch):
    failed = []
    monkeypatch.setattr(request_timeout.flow_failure, "fail", lambda flow, message: failed.append(message) or True)
    addon = RequestReadTimeout()
    with taddons.context(addon):
        flow = arriving_flow()
        addon.expire(flow, 7)
        assert failed == [timeout_message(7)] and flow.response is None
        flow.error = Error(timeout_message(7))
        addon.error(flow)
    assert flow.response.status_code == 408
    assert orjson.loads(flow.response.content)["error"]["type"] == "timeout_error"
