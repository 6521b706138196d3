"""The side-by-side benchmark: `./mitm_run.sh bench [--quick] [--skip-litellm] [--only ROW] [--scaling] [--json PATH]`.

One fake upstream (its own process) and, one after another, eight ways to reach it: direct, bare mitmdump
(reverse mode, no addon, streaming on), this proxy (started by mitm_run.sh, default mode), this proxy with
`translate_speed_patches` on (the opt-in mode, its own column: the targets are checked on the default), LiteLLM Proxy (own venv under
.bench/, installed on first use), and this proxy on Gemini's native path (the same requests translated by litellm
to streamGenerateContent and back: plain requests at 1 connection and the streams only), and this proxy exporting
OpenTelemetry GenAI spans to a local OTLP sink (otlp_sink.py; the plain requests and one stream). Each row runs the same scenarios with the load client in its own process;
a row that cannot start is reported and the run goes on. Prints one Markdown table with ratios and target checks;
writes JSON (default .bench/results.json); configs and servers' logs are in .bench/runs/<time>-<pid>/.

Measures: plain requests at 1 and 10 connections (p50/p99 latency, requests/s; through wrk when installed,
`apt-get install wrk`, else the Python client); 30 streams of 40 chunks one after another, and 100 concurrent
streams of 200 chunks, 10 ms apart (time to first chunk, per-chunk delay from the upstream's send to the client's
read); a 1 MB opencode conversation (latency); resident memory before and after 1,000 requests with 1 MB bodies.
Then the stream-scaling table (scaling.py): 100 to 1,024 concurrent streams, direct / bare mitmdump / this proxy /
two replicas behind nginx; `--scaling` (or `--only scaling`) runs just that table, `--no-scaling` leaves it out.
The rows the targets compare (direct, bare mitmdump, this proxy in both modes, OTel export on) run side by side:
every server up at once, each scenario in six short windows with the rows taking turns (run_together), each figure
the median of a row's windows (each window kept in the JSON). A full run takes about 20 minutes.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from . import formats, litellm_proxy, measure, otlp_sink, report, scaling, servers, wrk
from .measure import log

FULL = {
    # Each scenario runs in `windows` short windows, the rows taking turns (see run_together); the sizes below are
    # one window's.
    "windows": 6,
    "duration": 1.0,
    "warmup": 0.3,
    # One stream at a time: its time to first chunk is a target decided at the millisecond, so it is the median of
    # windows of 5 streams, 30 in all (5 alone had let one busy moment of the machine move it by a millisecond).
    "stream_rounds": 5,
    "stream_1_chunks": 40,
    "chunks": 200,
    "interval_ms": 10,
    "streams": 100,
    "stagger_ms": 100,
    "mb_requests": 8,
    "mb_warmup": 1,
    "mem_requests": 1000,
    "mem_warmup": 50,
    "mem_connections": 2,
    "mem_batches": 10,
    "mem_max_seconds": 240,
}
QUICK = {
    "windows": 2,
    "duration": 0.3,
    "warmup": 0.1,
    "stream_rounds": 1,
    "stream_1_chunks": 10,
    "chunks": 10,
    "interval_ms": 10,
    "streams": 5,
    "stagger_ms": 10,
    "mb_requests": 3,
    "mb_warmup": 1,
    "mem_requests": 10,
    "mem_warmup": 2,
    "mem_connections": 2,
    "mem_batches": 2,
    "mem_max_seconds": 60,
}
CHAT = "/chat/completions"
SPEED_ON = ["--set", "translate_speed_patches=true"]  # the opt-in mode, measured beside the default
UPSTREAM_BASE = "/v1beta/openai"


def start_row(row: str, upstream_port: int, args: argparse.Namespace) -> tuple[servers.Server | None, str | None]:
    """Start a row's server; (server, None) when healthy, (None, why) when it cannot run."""
    port = servers.free_port()
    if row == "bare_mitmdump":
        server, health = servers.bare_mitmdump(port, upstream_port), "/health"
    elif row in ("this_proxy", "this_proxy_native", "this_proxy_speed"):
        native, extra = row == "this_proxy_native", list(args.proxy_arg)
        if row == "this_proxy_speed":
            extra += SPEED_ON
        server, health = servers.this_proxy(port, upstream_port, extra, native, name=row), "/health"
    elif row == "this_proxy_otel":  # GenAI spans exported to the local sink (OpenTelemetry's own variables)
        otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": args.otlp_endpoint, "OTEL_SERVICE_NAME": "bench-proxy"}
        server = servers.this_proxy(port, upstream_port, args.proxy_arg, name=row, env=otel)
        health = "/health"
    else:
        litellm, why = litellm_proxy.ensure_installed(log)
        if litellm is None:
            return None, why
        server, health = litellm_proxy.start(litellm, port, upstream_port), "/health/liveliness"
    started = time.monotonic()
    if row in ("litellm_proxy", "bare_mitmdump"):
        why = servers.wait_healthy(server, health, 120 if row == "litellm_proxy" else 60)
    else:  # litellm loaded: its import would otherwise run beside another row's measuring
        why = servers.wait_ready(server, 90)
    if why:
        server.stop()
        return None, why
    log(f"{row}: healthy on port {port} after {time.monotonic() - started:.1f} s (log: {server.log})")
    return server, None


def target_for(row: str, server: servers.Server | None, upstream_port: int) -> dict[str, Any]:
    key = litellm_proxy.MASTER_KEY if row == "litellm_proxy" else "bench-client-key"
    base = {"host": "127.0.0.1", "headers": {"Authorization": f"Bearer {key}"}}
    if server is None:
        return {**base, "port": upstream_port, "path": UPSTREAM_BASE + CHAT}
    return {**base, "port": server.port, "path": "/v1" + CHAT}


def run_together(rows: list[str], upstream_port: int, p: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Measure rows side by side: start each row's server (one at a time, each ready before the next starts: two
    litellm imports at once slow both) and check its answers; then each scenario in `windows` short windows, the
    rows taking turns within each window and the order reversed every other window (direct, bare, proxy, proxy,
    bare, direct, ...). The machine's speed drifts by tens of percent over minutes; rows measured minutes apart
    compared that drift, rows measured in turns within seconds of each other see the same machine. A figure is the
    median of its windows (counts are summed); memory is measured last, one server at a time."""
    started: dict[str, servers.Server | None] = {}
    results: dict[str, dict[str, Any]] = {}
    try:
        for row in rows:
            log(f"{row}: starting")
            server, why = (None, None) if row == "direct" else start_row(row, upstream_port, args)
            if row != "direct" and server is None:
                log(f"{row}: FAILED to start, row skipped: {why}")
                results[row] = {"ok": False, "error": why}
                continue
            started[row] = server
            results[row] = _attempt(row, measure.check, row, target_for(row, server, upstream_port), upstream_port)
        targets = {row: target_for(row, server, upstream_port) for row, server in started.items()}
        specs = {row: dict(measure.scenarios(p, row)) for row in started}
        windows: dict[str, dict[str, list[dict[str, Any]]]] = {row: {} for row in started}
        for name, _ in measure.scenarios(p):
            for window in range(p["windows"]):
                for row in list(started) if window % 2 == 0 else list(started)[::-1]:
                    spec = specs[row].get(name)
                    if spec is None or not results[row]["ok"]:
                        continue
                    got = _attempt(row, measure.load, {**targets[row], **spec}, args.client)
                    if got.get("ok") is False:
                        results[row] = got
                    windows[row].setdefault(name, []).append(got)
        for row, server in started.items():
            if not results[row]["ok"]:
                continue
            for name, measured in windows[row].items():
                results[row][name] = combine(measured)
                log(f"{row}: {name}: {measure.summary(results[row][name])}")
            if server is not None and row not in ("this_proxy_native", "this_proxy_otel"):
                results[row]["memory"] = _attempt(row, measure.memory, server, targets[row], p)
                log(f"{row}: memory: {measure.summary(results[row]['memory'])}")
    finally:
        for server in started.values():
            if server is not None:
                server.stop()
    return results


def _attempt(row: str, step: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """One measuring step of a row, step(*args): its result with ok=True, or the row's failure."""
    try:
        return {"ok": True, **step(*args)}
    except (RuntimeError, OSError, subprocess.TimeoutExpired, orjson.JSONDecodeError) as e:
        log(f"{row}: FAILED: {e}")
        return {"ok": False, "error": str(e)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./mitm_run.sh bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="a tiny smoke run (seconds); skips LiteLLM unless --only names it"
    )
    parser.add_argument("--skip-litellm", action="store_true", help="leave out the LiteLLM Proxy row")
    parser.add_argument(
        "--only", action="append", choices=(*report.ROWS, "scaling", "formats"), help="run only this row (repeatable)"
    )
    parser.add_argument("--scaling", action="store_true", help="run only the stream-scaling table (--only scaling)")
    parser.add_argument("--no-scaling", action="store_true", help="leave out the stream-scaling table")
    parser.add_argument("--json", type=Path, default=servers.BENCH_DIR / "results.json", help="where to write")
    parser.add_argument(
        "--client",
        choices=("auto", "python", "wrk"),
        default="auto",
        help="plain-request load: wrk if installed (auto; not with --quick), or the Python client",
    )
    parser.add_argument(
        "--proxy-arg",
        action="append",
        default=[],
        help="extra argument for mitm_run.sh (repeatable), e.g. --proxy-arg=-q",
    )
    args = parser.parse_args(argv)
    if args.scaling:
        args.only = [*(args.only or []), "scaling"]
    args.run_scaling = not args.no_scaling and (not args.only or "scaling" in args.only)
    args.run_formats = not args.only or "formats" in args.only  # the client-format table (formats.py)
    if args.client == "auto":
        args.client = "wrk" if wrk.available() and not args.quick else "python"
    elif args.client == "wrk" and not wrk.available():
        parser.error("wrk is not installed (apt-get install wrk), use --client python")
    return args


# The rows the targets compare, the proxy with its speed patches on (the opt-in mode, shown beside the default)
# and with OTel export on (against this proxy without it): measured together, taking turns (run_together).
PAIRED = ("direct", "bare_mitmdump", "this_proxy", "this_proxy_speed", "this_proxy_otel")
SUMMED = frozenset(
    ("requests", "errors", "streams", "incomplete", "expected_chunks", "lost", "merged", "disordered", "chunks")
)


def combine(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """A scenario's figures from its windows: each the median of the windows' (counts summed, lists such as error
    samples pooled without repeats); every window's own figures are kept under "windows"."""
    if len(windows) == 1:
        return windows[0]
    return {**_median(windows), "windows": windows}


def _median(values: list[Any], key: str = "") -> Any:
    first = values[0]
    if isinstance(first, dict):
        return {k: _median([v.get(k) for v in values], k) for k in first if all(isinstance(v, dict) for v in values)}
    if isinstance(first, list):
        return list(dict.fromkeys(x for v in values if isinstance(v, list) for x in v))[:3]
    if all(isinstance(v, bool) for v in values):
        return all(values)
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) != len(values) or not numbers:
        return first
    return sum(numbers) if key in SUMMED else statistics.median(numbers)


def run_all(
    args: argparse.Namespace, p: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
    rows = [
        r
        for r in report.ROWS
        if (not args.only or r in args.only)
        and not (r == "litellm_proxy" and (args.skip_litellm or (args.quick and not args.only)))
        and not (r == "this_proxy_otel" and args.quick and not args.only)  # its 0.2 ms needs the full run
    ]
    upstream_port = servers.free_port()
    upstream = servers.upstream(upstream_port)
    sink = otlp_sink.OtlpSink().start() if "this_proxy_otel" in rows else None
    args.otlp_endpoint = sink.endpoint if sink else None
    results: dict[str, Any] = {}
    scaled = formatted = None
    try:
        why = servers.wait_healthy(upstream, "/health", 20)
        if why:
            raise SystemExit(f"bench: the fake upstream did not start: {why}")
        results = run_together([row for row in PAIRED if row in rows], upstream_port, p, args)
        for row in rows:
            if row not in results:  # LiteLLM Proxy and the native path: each on its own
                results.update(run_together([row], upstream_port, p, args))
        if args.run_formats:
            formatted = formats.run(upstream_port, formats.QUICK if args.quick else formats.FULL, args)
        if args.run_scaling:
            scaled = scaling.run(upstream_port, scaling.QUICK if args.quick else scaling.FULL, args)
    finally:
        upstream.stop()
        if sink is not None:
            log(f"OTLP sink: {sink.requests} exports, {sink.bytes:,} bytes")
            sink.stop()
    return results, scaled, formatted


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    args = parse_args(argv)
    p = QUICK if args.quick else FULL
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: stop every server
    log(f"configs and logs: {servers.run_dir()}")
    started, load_average = time.monotonic(), os.getloadavg()[0]
    if load_average > 0.5:
        log(f"the machine is busy (load average {load_average:.2f}): the numbers will be noisy")
    rows, scaled, formatted = run_all(args, p)
    checks = [report.check(rows, t) for t in report.TARGETS]
    info = report.machine(args.client, litellm_proxy.venv_dir() / ".bench-version")
    info["load_average"] = load_average
    info["load_average_end"] = os.getloadavg()[0]
    text = report.table(rows, checks) if rows else ""
    out(report.machine_line(info))
    if rows:
        out(
            f"each scenario in {p['windows']} windows, rows taking turns, figures the medians; "
            f"1 stream = {p['stream_rounds'] * p['windows']} streams of {p['stream_1_chunks']} chunks one after another; "
            f"N streams = {p['streams']} concurrent streams of {p['chunks']} chunks {p['interval_ms']} ms apart; "
            f"1 MB run = {p['mem_requests']} requests."
        )
        out(text)
        for line in report.problems(rows):
            out(line)
    if formatted is not None:
        formatted["table"] = formats.table(formatted, formats.QUICK if args.quick else formats.FULL)
        out("")
        out(formatted["table"])
    if scaled is not None:
        scaled["checks"], scaled["table"] = scaling.checks(scaled), scaling.table(scaled)
        out("")
        out(scaling.describe(scaled))
        out(scaled["table"])
        for note in scaled["notes"]:
            out(note)
    document = {
        "machine": info,
        "params": p,
        "seconds": round(time.monotonic() - started, 1),
        "rows": rows,
        "targets": checks,
        "table": text,
        "scaling": scaled,
        "formats": formatted,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    out(f"JSON: {args.json} ({document['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
