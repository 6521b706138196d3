"""A tiny run of the benchmark (tests/bench), so that it cannot rot: every row answers, with numbers.

The benchmark itself is not pass/fail; this only checks that it still runs end to end (`--quick`: a few
requests, 5 streams of 10 chunks, no LiteLLM; the scaling table at 20 streams of 5 chunks, two replicas behind
nginx included) and that this proxy's answers came back correct and every streamed chunk arrived.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
ROWS = ("direct", "bare_mitmdump", "this_proxy", "this_proxy_speed")  # the last: translate_speed_patches on
NUMBERS = {
    "plain_c1": ("p50_ms", "rps"),
    "plain_c10": ("p50_ms", "rps"),
    "stream_1": ("ttfc_p50_ms", "delay_p50_ms"),
    "stream_100": ("ttfc_p50_ms", "delay_p99_ms"),
    "body_1mb": ("p50_ms",),
}
NATIVE_NUMBERS = {  # the native row measures the translation: plain requests at 1 connection and the streams
    "plain_c1": ("p50_ms", "rps"),
    "stream_1": ("ttfc_p50_ms", "delay_p50_ms"),
    "stream_100": ("ttfc_p50_ms", "delay_p99_ms"),
}


def test_quick_benchmark_run(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.run", "--quick", "--json", str(out)],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=360,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    for row in ROWS:
        got = result["rows"][row]
        assert got["ok"], f"{row}: {got.get('error')}"
        assert got["correct"], f"{row}: {got['correct_detail']}"
        for scenario, fields in NUMBERS.items():
            assert got[scenario]["errors"] == 0, f"{row} {scenario}: {got[scenario]['error_samples']}"
            for field in fields:
                assert got[scenario][field] > 0, f"{row} {scenario} {field}: {got[scenario]}"
    proxy = result["rows"]["this_proxy"]
    assert [len(result["rows"][row]["plain_c1"]["windows"]) for row in ROWS] == [2, 2, 2, 2]
    assert proxy["check"]["model"] == "local-model"
    assert proxy["check"]["upstream_saw"] == {"gemini-2.5-flash": 2}
    assert proxy["stream_100"]["incomplete"] == 0
    assert proxy["stream_100"]["lost"] == proxy["stream_100"]["merged"] == 0  # sequence numbers checked
    assert proxy["memory"]["rss_before_mb"] > 0 and proxy["memory"]["requests"] > 0
    assert {t["verdict"] for t in result["targets"]} <= {"PASS", "MISS", "n/a"}
    header = result["table"].splitlines()[0]
    assert "this proxy" in header and "bare mitmdump" in header and "speed patches on" in header

    native = result["rows"]["this_proxy_native"]
    assert native["ok"] and native["correct"], native.get("error") or native["correct_detail"]
    assert native["check"]["model"] == "local-model" and native["check"]["stream"]["done"]
    assert native["check"]["upstream_saw"] == {"gemini-2.5-flash": 2}  # by streamGenerateContent / generateContent
    for scenario, fields in NATIVE_NUMBERS.items():
        assert native[scenario]["errors"] == 0, f"native {scenario}: {native[scenario]['error_samples']}"
        for field in fields:
            assert native[scenario][field] > 0, f"native {scenario} {field}: {native[scenario]}"
    assert native["stream_100"]["incomplete"] == 0 and "body_1mb" not in native
    assert "native path" in header and "native vs proxy" in header
    delay_row = next(line for line in result["table"].splitlines() if line.startswith("| chunk delay p50, 1 stream"))
    assert " ms |" in delay_row  # the native path's added delay, side by side with the compatible path

    assert_scaling(result["scaling"])


def assert_scaling(scaling: dict) -> None:
    """The stream-scaling table (its --quick size: 20 streams of 5 chunks, twice): every setup measured, every chunk of
    every stream accounted for by its sequence number, this proxy checked against bare mitmdump."""
    rows = scaling["rows"]
    for setup in ("direct", "bare_mitmdump", "this_proxy", "this_proxy_speed", "replicas"):
        got = rows[setup]["20"]
        assert got["errors"] == 0 and got["incomplete"] == 0, f"{setup}: {got}"
        assert len(got["runs"]) == 2, f"{setup}: {got}"  # two runs, each of 20 streams of 5 chunks
        assert got["streams"] == 40 and got["expected_chunks"] == 200 and got["chunks"] == 200, f"{setup}: {got}"
        assert got["lost"] == got["merged"] == got["disordered"] == 0, f"{setup}: {got}"
        assert got["delay_p50_ms"] > 0 and got["ttfc_p50_ms"] > 0, f"{setup}: {got}"
        assert got["ttlc_p50_ms"] > got["ttfc_p50_ms"], f"{setup}: the last chunk comes after the first: {got}"
    assert [(c["streams"], c["verdict"] in ("PASS", "MISS")) for c in scaling["checks"]] == [(20, True)]
    lines = scaling["table"].splitlines()
    assert (
        "chunks received / lost / merged" in lines[0] and "vs bare p50 / p99" in lines[0] and "last chunk" in lines[0]
    )
    cells = [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines[2:]]
    assert [(row[0], row[1], row[6]) for row in cells] == [
        ("20", title, "200/200 / 0 / 0")
        for title in ("direct", "bare mitmdump", "this proxy", "speed patches on", "2 replicas")
    ]
    assert cells[2][8].startswith(("PASS", "MISS"))  # this proxy against bare mitmdump


def test_micro_benchmarks_run() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.micro", "--smoke"],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "skipped" not in done.stdout, done.stdout
    assert "conversation reuse, 1.1 MB follow-up turn" in done.stdout  # the side-by-side pairs ran too


def test_a_litellm_proxy_that_cannot_be_installed_is_reported_and_the_run_goes_on(tmp_path, monkeypatch):
    from tests.bench import litellm_proxy, run

    monkeypatch.setattr(
        litellm_proxy, "ensure_installed", lambda log: (None, "cannot create the LiteLLM environment: uv not found")
    )
    printed: list[str] = []
    out = tmp_path / "bench.json"
    code = run.main(["--quick", "--only", "direct", "--only", "litellm_proxy", "--json", str(out)], printed.append)
    assert code == 0
    rows = json.loads(out.read_text())["rows"]
    assert rows["litellm_proxy"] == {"ok": False, "error": "cannot create the LiteLLM environment: uv not found"}
    assert rows["direct"]["ok"] and rows["direct"]["plain_c1"]["rps"] > 0
    assert any("uv not found" in line for line in printed), printed  # the run says why the row is empty


def test_a_setups_runs_at_one_count_become_one_row_of_means_and_sums() -> None:
    from tests.bench import scaling

    def run(p50: float, p99: float, lost: int = 0) -> dict:
        return {
            "ttfc_p50_ms": 10.0,
            "ttfc_p99_ms": 20.0,
            "delay_p50_ms": p50,
            "delay_p99_ms": p99,
            "delay_max_ms": p99 * 2,
            "streams": 100,
            "errors": 0,
            "incomplete": 0,
            "expected_chunks": 10_000,
            "chunks": 10_000 - lost,
            "lost": lost,
            "merged": 0,
            "disordered": 0,
            "error_samples": [],
        }

    row = scaling.combine([run(1.0, 30.0), run(3.0, 50.0, lost=2)])
    assert (row["delay_p50_ms"], row["delay_p99_ms"], row["delay_max_ms"]) == (2.0, 40.0, 100.0)
    assert (row["chunks"], row["expected_chunks"], row["lost"], row["streams"]) == (19_998, 20_000, 2, 200)
    assert [r["delay_p50_ms"] for r in row["runs"]] == [1.0, 3.0]
    failed = {"failed": "the load client died"}
    assert scaling.combine([run(1.0, 30.0), failed]) is failed  # one failed run fails the row
    rows = {"this_proxy": {"100": row}, "bare_mitmdump": {"100": scaling.combine([run(1.5, 45.0)] * 2)}}
    why = "p50 2.0 > 1.25x bare 1.5 ms; 2 lost"
    assert scaling.check(rows, 100) == {"streams": 100, "verdict": "MISS", "why": why}
    rows["this_proxy"]["100"] = scaling.combine([run(1.8, 55.0)] * 2)  # 1.2x bare's p50, 1.22x its p99
    assert scaling.check(rows, 100) == {"streams": 100, "verdict": "PASS", "why": ""}


def test_the_compared_rows_take_turns_window_by_window_and_become_medians(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_together: every server up first, then each scenario window by window, the rows in turn and the order
    reversed every other window; a figure is the median of its windows, counts summed."""
    from argparse import Namespace

    from tests.bench import measure, run, servers

    loads: list[tuple[int, str]] = []
    p50s = itertools.count(1.0)  # each load's p50 is its place in the order: 1, 2, 3, ...

    def start_row(row: str, upstream_port: int, args: Namespace) -> tuple[servers.Server, None]:
        return servers.Server(row, {"bare_mitmdump": 1, "this_proxy": 2}[row]), None

    def load(spec: dict, client: str) -> dict:
        loads.append((spec["port"], spec["kind"]))
        return {"p50_ms": next(p50s), "errors": 1, "client": client}

    monkeypatch.setattr(run, "start_row", start_row)
    monkeypatch.setattr(measure, "check", lambda row, target, upstream_port: {"correct": True})
    monkeypatch.setattr(measure, "load", load)
    monkeypatch.setattr(measure, "memory", lambda server, target, p: {"rss_before_mb": 1.0})
    p = {**run.QUICK, "windows": 3}
    got = run.run_together(["direct", "bare_mitmdump", "this_proxy"], 9, p, Namespace(client="python"))

    plain = [port for port, kind in loads if kind == "requests"][:9]
    assert plain == [9, 1, 2, 2, 1, 9, 9, 1, 2]  # direct is the upstream itself, port 9
    assert got["direct"]["plain_c1"]["p50_ms"] == 6.0  # the median of its windows' 1, 6 and 7 (the mean is 4.67)
    assert got["this_proxy"]["plain_c1"]["p50_ms"] == 4.0 and got["this_proxy"]["plain_c1"]["errors"] == 3
    assert len(got["bare_mitmdump"]["stream_100"]["windows"]) == 3
    assert got["this_proxy"]["memory"] == {"ok": True, "rss_before_mb": 1.0} and "memory" not in got["direct"]

    failed = {"ok": False, "error": "did not start"}
    assert (
        run.combine([{"p50_ms": 8.0, "errors": 0}, {"p50_ms": 10.0, "errors": 1}, {"p50_ms": 30.0, "errors": 0}])[
            "p50_ms"
        ]
        == 10.0
    )
    assert run._median([failed, {"ok": True}])["ok"] is False
