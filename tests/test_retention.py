"""FlowRetention against mitmproxy's own View addon (as mitmweb has it), without a running proxy."""

from __future__ import annotations

import logging

import pytest
from mitmproxy import exceptions
from mitmproxy.addons.view import View
from mitmproxy.test import taddons, tflow

from addon.formats.exchange import Exchange
from addon.runtime.retention import FlowRetention, flow_bytes, marker_text


def finish(tctx: taddons.context, view: View, retention: FlowRetention, body: bytes = b"x", at: float = 0.0):
    """One flow as mitmweb sees it: the View adds it at the request, our response hook runs, then the View's."""
    f = tflow.tflow(resp=True)
    f.request.content, f.response.content = body, body
    f.timestamp_created = at or f.timestamp_created
    f.live = False
    view.add([f])
    retention.response(f)
    return f


@pytest.fixture
def setup():
    view, retention = View(), FlowRetention()
    with taddons.context(view, retention) as tctx:
        yield tctx, view, retention


def real_flows(view: View, retention: FlowRetention) -> list:
    return [f for f in view if f is not retention.marker]


def test_keeps_the_newest_flows_and_counts_the_dropped(setup):
    tctx, view, retention = setup
    tctx.configure(retention, translate_keep_flows=3)
    flows = [finish(tctx, view, retention, at=1000.0 + n) for n in range(10)]
    assert real_flows(view, retention) == flows[-3:]
    assert retention.dropped == 7
    assert view.get_by_id(flows[0].id) is None  # gone from the store, not only hidden


def test_the_marker_sorts_first_and_says_how_many(setup):
    tctx, view, retention = setup
    tctx.configure(retention, translate_keep_flows=2)
    for n in range(5):
        finish(tctx, view, retention, at=1000.0 + n)
    marker = view[0]
    assert marker is retention.marker and len(view) == 3
    assert marker.request.path.startswith("/3 older flows dropped (translate_keep_flows=2")
    assert "3 older flows were dropped" in marker.response.text and "-w file" in marker.response.text
    assert marker.marked == ":scissors:"


def test_the_marker_is_recreated_after_the_user_clears_the_list(setup):
    tctx, view, retention = setup
    tctx.configure(retention, translate_keep_flows=1)
    finish(tctx, view, retention, at=1000.0)
    finish(tctx, view, retention, at=1001.0)
    view.clear()
    finish(tctx, view, retention, at=1002.0)
    finish(tctx, view, retention, at=1003.0)
    assert view.get_by_id(retention.marker.id) is retention.marker
    assert retention.marker.request.path.startswith("/2 older flows dropped")


def test_live_and_intercepted_flows_are_never_dropped(setup):
    tctx, view, retention = setup
    tctx.configure(retention, translate_keep_flows=1)
    live = tflow.tflow()  # still waiting for its response
    live.live = True
    intercepted = tflow.tflow(resp=True)
    intercepted.live, intercepted.intercepted = False, True
    view.add([live, intercepted])
    newest = finish(tctx, view, retention)
    assert view.get_by_id(live.id) is live and view.get_by_id(intercepted.id) is intercepted
    assert view.get_by_id(newest.id) is None  # the only finished flow that could go


def test_a_byte_budget_drops_big_flows_first_in_age_order(setup):
    tctx, view, retention = setup
    tctx.configure(retention, translate_keep_flows=0, translate_keep_flows_mb=1)
    big = [finish(tctx, view, retention, body=b"b" * 300_000, at=1000.0 + n) for n in range(4)]
    # each flow holds 600 kB (request + response): only one fits in 1 MB
    assert real_flows(view, retention) == big[-1:]
    assert retention.kept_bytes == 600_000


def test_removing_flows_in_the_ui_releases_their_bytes(setup):
    tctx, view, retention = setup
    tctx.configure(retention, translate_keep_flows_mb=100)
    flows = [finish(tctx, view, retention, body=b"b" * 1000) for _ in range(3)]
    view.remove([flows[0]])
    assert retention.kept_bytes == 4000
    view.clear()
    assert retention.kept_bytes == 0 and retention.sizes == {}


def test_no_limit_with_zero(setup):
    tctx, view, retention = setup
    tctx.configure(retention, translate_keep_flows=0, translate_keep_flows_mb=0)
    for _ in range(50):
        finish(tctx, view, retention)
    assert len(view) == 50 and retention.marker is None


def test_lowering_the_cap_trims_at_once(setup):
    tctx, view, retention = setup
    for n in range(6):
        finish(tctx, view, retention, at=1000.0 + n)
    tctx.configure(retention, translate_keep_flows=2)
    assert len(real_flows(view, retention)) == 2 and retention.dropped == 4


def test_first_drop_is_logged_then_at_most_once_a_minute(setup, caplog):
    tctx, view, retention = setup
    tctx.configure(retention, translate_keep_flows=1)
    with caplog.at_level(logging.INFO, logger="addon.runtime.retention"):
        for _ in range(5):
            finish(tctx, view, retention)
    lines = [r.getMessage() for r in caplog.records if r.name == "addon.runtime.retention"]
    assert lines == [
        "retention: 1 older flows were dropped from mitmweb's memory to keep it bounded "
        "(translate_keep_flows=1, translate_keep_flows_mb=512; 0 means no limit)."
    ]


@pytest.mark.parametrize("name", ["translate_keep_flows", "translate_keep_flows_mb"])
def test_negative_limits_are_refused(setup, name):
    tctx, _, retention = setup
    with pytest.raises(exceptions.OptionsError, match=f"Cannot use {name} -1"):
        tctx.configure(retention, **{name: -1})


def test_without_a_view_nothing_is_kept_or_touched():
    retention = FlowRetention()
    with taddons.context(retention) as tctx:  # mitmdump: no View addon
        tctx.configure(retention, translate_keep_flows=1)
        for _ in range(3):
            f = tflow.tflow(resp=True)
            retention.response(f)
        assert retention.sizes == {} and retention.dropped == 0 and retention.view is None


def test_flow_bytes_counts_bodies_and_the_raw_upstream_stream():
    f = tflow.tflow(resp=True)
    f.request.content, f.response.content = b"q" * 10, b"r" * 20
    f.metadata["llm"] = Exchange(upstream_raw=b"u" * 30)
    assert flow_bytes(f) == 60
    Exchange.of(f).client_request = {"method": "POST", "body": b"c" * 40}  # client_request.py
    assert flow_bytes(f) == 100


def test_marker_text_names_only_the_limits_in_force():
    path, body = marker_text(5, 0, 100)
    assert path == "/5 older flows dropped (translate_keep_flows_mb=100)"
    assert body.startswith("5 older flows were dropped")
