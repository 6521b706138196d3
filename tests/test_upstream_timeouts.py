"""The timeout rules, on flows built by hand; the end-to-end behaviour is in test_faults_e2e."""

from __future__ import annotations

from unittest import mock

import pytest
from mitmproxy.test import taddons, tflow

from addon.formats.exchange import Exchange
from addon.response import upstream_timeouts
from addon.response.stream_rewrite import StreamOptions, StreamRewriter
from addon.response.upstream_timeouts import UpstreamTimeouts, expired

LIMITS = dict(connect=10, read=100, idle=30)


def waiting_flow(connected: float | None):
    flow = tflow.tflow()
    flow.server_conn.timestamp_tcp_setup = connected
    return flow


def streaming_flow(last_data: float):
    flow = tflow.tflow(resp=True)
    rewriter = StreamRewriter(StreamOptions("m", False, False, 1000))
    rewriter.last_data = last_data
    flow.response.stream = rewriter
    return flow


@pytest.mark.parametrize(
    "connected, now, phase",
    [
        (None, 1005, None),
        (None, 1011, "connect"),
        (1001, 1011, None),
        (1001, 1100, None),
        (1001, 1102, "read"),
    ],
)
def test_waiting_for_the_upstream(connected, now, phase):
    found = expired(waiting_flow(connected), 1000, now, **LIMITS)
    assert (found.phase if found else None) == phase


def test_idle_stream_and_client_gone():
    with mock.patch.object(upstream_timeouts.replays, "client_gone", return_value=False):
        assert expired(streaming_flow(1000), 900, 1020, **LIMITS) is None
        assert expired(streaming_flow(1000), 900, 1031, **LIMITS).phase == "idle"
    with mock.patch.object(upstream_timeouts.replays, "client_gone", return_value=True):
        assert expired(streaming_flow(1000), 900, 1001, **LIMITS).phase == "client gone"


def test_a_stream_that_reached_done_is_complete_even_if_the_client_leaves():
    """The client closes right after [DONE]; the flow's response hook may not have run yet: not a failure."""
    flow = streaming_flow(1000)
    flow.response.stream(b'data: {"choices": []}\n\ndata: [DONE]\n\n')
    with mock.patch.object(upstream_timeouts.replays, "client_gone", return_value=True):
        assert expired(flow, 900, 1001, **LIMITS) is None
        assert expired(flow, 900, 5000, **LIMITS) is None


def test_unstreamed_body_counts_from_the_response_headers():
    flow = tflow.tflow(resp=True)
    flow.response.timestamp_start = 2000
    assert expired(flow, 1000, 2099, **LIMITS) is None
    assert expired(flow, 1000, 2101, **LIMITS).phase == "read"


def test_expiry_marks_the_flow_and_closes_the_upstream():
    addon = UpstreamTimeouts()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, translate_connect_timeout=10)
        flow = waiting_flow(None)
        flow.metadata["llm"] = Exchange(key="k…y", client_model="m")
        addon.in_flight[flow.id] = (flow, 1000)
        with mock.patch.object(upstream_timeouts.flow_failure, "fail", return_value=True) as fail:
            addon.check(1005)
            assert not fail.called and flow.id in addon.in_flight
            addon.check(1011)
        fail.assert_called_once_with(flow, Exchange.of(flow).error)
        assert Exchange.of(flow).timed_out is True
        assert "translate_connect_timeout" in Exchange.of(flow).error
        assert flow.id not in addon.in_flight


def test_only_llm_flows_are_watched_and_finished_ones_are_dropped():
    addon = UpstreamTimeouts()
    with taddons.context(addon):
        other = tflow.tflow()
        addon.request(other)
        assert addon.in_flight == {}
        ours = tflow.tflow()
        ours.metadata["llm"] = Exchange(key="k…y")
        with mock.patch.object(addon, "running"):
            addon.request(ours)
        assert ours.id in addon.in_flight
        addon.error(ours)
        assert addon.in_flight == {}
