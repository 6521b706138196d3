"""The soak, short: 1,500 requests of the agent mix through mitmweb (keeping 200 flows) and through mitmdump -w.

The full run (20,000 requests) is `python -m tests.soak --requests 20000 --ui web|dump`, outside the suite.
Without the cap, mitmweb grows by about 15 MB per 100 requests of this mix; with it, memory levels off.
"""

from __future__ import annotations

import pytest

from tests.soak import soak

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
