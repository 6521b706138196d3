"""addon/runtime/shutdown.py with its hooks called directly: the 503 while stopping, the grace for flows in flight,
and how the ones still running are ended. tests/test_shutdown_e2e.py sends real signals to a real mitmdump."""

import asyncio
import json
import time

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons, tflow

from addon.formats.exchange import Exchange
from addon.runtime.shutdown import GracefulShutdown


async def stop(addon: GracefulShutdown) -> None:
    """What mitmproxy's async `done` dispatch does: await what the hook returns, if anything."""
    pending = addon.done()
    if pending is not None:
        await pending


def in_flight() -> object:
    flow = tflow.tflow(live=True)
    flow.metadata["llm"] = Exchange(client_model="local-model")
    return flow


def run(test, **options):
    """Run `test(addon)` on an event loop of its own, in a context with these options set."""

    async def main():
        addon = GracefulShutdown()
        with taddons.context(addon) as tctx:
            tctx.configure(addon, **options)
            return await test(addon)

    return asyncio.run(main())


def test_a_negative_grace_is_refused_with_the_value():
    addon = GracefulShutdown()
    with taddons.context(addon) as tctx:
        with pytest.raises(exceptions.OptionsError, match="Cannot use translate_shutdown_grace -1: it must be 0"):
            tctx.configure(addon, translate_shutdown_grace=-1)
        tctx.configure(addon, translate_shutdown_grace=0)
        assert tctx.options.translate_shutdown_grace == 0


def test_requests_are_tracked_while_running_and_forgotten_when_done():
    addon = GracefulShutdown()
    with taddons.context(addon):
        answered, failed, waiting = in_flight(), in_flight(), in_flight()
        for flow in (answered, failed, waiting):
            addon.request(flow)
            assert flow.response is None
        addon.response(answered)
        addon.error(failed)
        assert addon.running_flows() == [waiting]


def test_while_stopping_new_requests_get_an_openai_shaped_503_that_closes_the_connection():
    async def test(addon):
        await stop(addon)  # nothing in flight: returns at once, but the proxy is stopping now
        flow = in_flight()
        addon.request(flow)
        return flow, addon

    flow, addon = run(test)
    assert flow.response.status_code == 503 and flow.response.headers["connection"] == "close"
    assert flow.response.headers["content-type"] == "application/json"
    assert json.loads(flow.response.content)["error"] == {
        "message": "The proxy is shutting down; send the request again once it is back.",
        "type": "api_error",
        "code": "proxy_shutting_down",
    }
    assert addon.running_flows() == []  # not waited for


def test_a_request_already_answered_is_left_alone_while_stopping():
    async def test(addon):
        await stop(addon)
        flow = tflow.tflow(live=True, resp=True)
        addon.request(flow)
        return flow

    assert run(test).response.status_code == 200


def test_an_idle_proxy_stops_at_once():
    async def test(addon):
        started = time.monotonic()
        await stop(addon)
        return time.monotonic() - started

    assert run(test, translate_shutdown_grace=30) < 0.5


def test_a_flow_that_finishes_within_the_grace_is_waited_for_and_not_ended():
    async def test(addon):
        flow = in_flight()
        addon.request(flow)
        stopping = asyncio.create_task(stop(addon))
        await asyncio.sleep(0.3)
        assert not stopping.done()  # still waiting for the flow
        started = time.monotonic()
        addon.response(flow)  # its answer completes
        await stopping
        return flow, time.monotonic() - started

    flow, after = run(test, translate_shutdown_grace=30)
    assert after < 0.5  # done returned as soon as nothing was in flight
    assert flow.error is None and Exchange.of(flow).shutdown is False


def test_a_flow_still_running_after_the_grace_is_ended_with_the_reason():
    async def test(addon):
        flow = in_flight()
        addon.request(flow)
        started = time.monotonic()
        await stop(addon)
        return flow, time.monotonic() - started

    flow, took = run(test, translate_shutdown_grace=1)
    assert 1 <= took < 2.5  # the grace, not the settle time as well: the ended flow passed its error hook
    meta = Exchange.of(flow)
    assert meta.shutdown is True
    assert meta.error == "The proxy was stopped while this answer was in flight (after 1 s of grace)."
    assert flow.error is not None  # no upstream connection to close here: the flow was killed


def test_no_grace_ends_flows_in_flight_at_once():
    async def test(addon):
        flow = in_flight()
        addon.request(flow)
        started = time.monotonic()
        await stop(addon)
        return flow, time.monotonic() - started

    flow, took = run(test, translate_shutdown_grace=0)
    assert took < 0.5 and Exchange.of(flow).shutdown is True


def test_hurrying_stops_the_wait(caplog):
    async def test(addon):
        flow = in_flight()
        addon.request(flow)
        stopping = asyncio.create_task(stop(addon))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        addon.hurry.set()  # what a second SIGTERM or Ctrl-C does
        await stopping
        return flow, time.monotonic() - started

    with caplog.at_level("INFO"):
        flow, after = run(test, translate_shutdown_grace=30)
    assert after < 0.5 and Exchange.of(flow).shutdown is True
    assert "shutting down: 1 in flight, waiting up to 30 s for them" in caplog.text
    assert "shutting down: ended local-model in flight" in caplog.text
