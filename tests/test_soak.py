"""The soak, short: 1,500 requests of the agent mix through mitmweb (keeping 200 flows) and through mitmdump -w.

The full run (20,000 requests) is `python -m tests.soak --requests 20000 --ui web|dump`, outside the suite.
Without the cap, mitmweb grows by about 15 MB per 100 requests of this mix; with it, memory levels off.
"""

from __future__ import annotations

import pytest

from tests.soak import rss_problem, soak

pytestmark = pytest.mark.e2e

REQUESTS, KEEP = 1500, 200
LEVEL_MB = 40  # the most RSS may still grow over the second half (no cap: about 110 MB)


def test_mitmweb_keeps_the_newest_flows_shows_the_dropped_count_and_levels_off(tmp_path):
    result = soak("web", REQUESTS, keep_flows=KEEP, samples=6, workdir=tmp_path)
    assert result.failures == 0, result.failure_examples
    assert result.web_flows == KEEP
    assert result.web_dropped is not None and result.web_dropped >= REQUESTS - KEEP
    assert result.finished_flows_held <= KEEP + 1  # the placeholder aside, nothing else keeps a flow
    assert result.growth_after(0.5) < LEVEL_MB, result.table()


def test_mitmdump_keeps_no_finished_flow_writes_every_flow_and_levels_off(tmp_path):
    result = soak("dump", REQUESTS, samples=6, workdir=tmp_path)
    assert result.failures == 0, result.failure_examples
    assert result.finished_flows_held == 0
    assert result.saved_flows >= REQUESTS  # every request (and the start-up health checks) is in the -w file
    assert result.growth_after(0.5) < LEVEL_MB, result.table()


def test_the_replay_soak_keeps_one_copy_of_each_body(tmp_path):
    """200 kB requests, streamed and not, through mitmweb keeping 300 flows: each kept flow holds its forwarded
    body once, at its own length, and the client's body as a patch of it (the full soak, 6,000 requests keeping
    2,000 flows: `python -m tests.soak --requests 6000 --body-kb 200 --max-rss-mb 720`). With the client's body
    kept whole and msgspec's oversized buffer (2026-12-06), 300 such flows took about 160 MB."""
    result = soak("web", 900, keep_flows=300, samples=3, workdir=tmp_path, body_kb=200)
    assert rss_problem(result, max_rss_mb=None) is None
    assert result.web_flows == 300
    grown = result.rss_final_mb - result.samples[0][1]
    assert grown < 110, result.table()  # 300 x 200 kB = 59 MB of bodies, plus the proxy warming up


def test_rss_problem_names_failures_and_a_final_rss_over_the_budget():
    from tests.soak import SoakResult

    result = SoakResult("web", 6000, 2000, 200, samples=[(0, 250.0), (6000, 917.0)])
    assert "917 MiB, above 720 MiB" in rss_problem(result, 720)
    assert rss_problem(result, 1000) is None and rss_problem(result, None) is None
    result.failures, result.failure_examples = 2, ["request 3: 502"]
    assert "2 requests failed" in rss_problem(result, None)
