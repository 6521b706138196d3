"""The steps a row is measured with (run.py runs them): its correctness check, a scenario in the load client's own
process, its memory.

A scenario's spec goes to tests.bench.load as JSON (or to wrk for timed plain requests); memory is read from
the server's /proc entries between batches of 1 MB requests.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import orjson

from . import servers, wrk


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def load(spec: dict[str, Any], client: str) -> dict[str, Any]:
    """One scenario in the load client's own process (or wrk for timed plain requests)."""
    if client == "wrk" and spec["kind"] == "requests" and "count" not in spec:
        return wrk.requests(spec)
    limit = spec.get("max_seconds", 0) + spec.get("duration", 0) + 120
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.load"],
        input=orjson.dumps(spec),
        check=False,
        capture_output=True,
        cwd=servers.ROOT,
        timeout=limit,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load client failed: {done.stderr.decode(errors='replace')[-800:]}")
    result = orjson.loads(done.stdout)
    result.setdefault("client", "python")
    return result


NATIVE_SCENARIOS = ("plain_c1", "stream_1", "stream_100")  # the native row: the translation's cost per chunk
OTEL_SCENARIOS = ("plain_c1", "plain_c10", "stream_1")  # the OTel row: a span's cost per request


def scenarios(p: dict[str, Any], row: str = "") -> list[tuple[str, dict[str, Any]]]:
    if row == "this_proxy_native":
        return [(name, spec) for name, spec in scenarios(p) if name in NATIVE_SCENARIOS]
    if row == "this_proxy_otel":
        return [(name, spec) for name, spec in scenarios(p) if name in OTEL_SCENARIOS]
    stream = {"kind": "streams", "chunks": p["chunks"], "interval_ms": p["interval_ms"]}
    mb = {"kind": "requests", "body": "1mb", "connections": 1}
    return [
        ("plain_c1", {"kind": "requests", "connections": 1, "duration": p["duration"], "warmup": p["warmup"]}),
        ("plain_c10", {"kind": "requests", "connections": 10, "duration": p["duration"], "warmup": p["warmup"]}),
        ("stream_1", {**stream, "chunks": p["stream_1_chunks"], "streams": 1, "rounds": p["stream_rounds"]}),
        ("stream_100", {**stream, "streams": p["streams"], "stagger_ms": p["stagger_ms"]}),
        ("body_1mb_warmup", {**mb, "count": p["mb_warmup"]}),
        ("body_1mb", {**mb, "count": p["mb_requests"]}),
    ]


def upstream_stats(upstream_port: int) -> dict[str, int]:
    return orjson.loads(servers.http_get(upstream_port, "/__stats")[1])


def correctness(row: str, got: dict[str, Any], seen: dict[str, int]) -> tuple[bool, str]:
    """Did the client get well-formed answers named as it asked, and (for proxies that alias) did the
    upstream see the upstream name?"""
    stream = got.get("stream") or {}
    problems = []
    if got.get("error") or got.get("status") != 200:
        problems.append(f"plain request: {got.get('error') or got.get('status')}")
    if got.get("model") != "local-model" or stream.get("model") != "local-model":
        problems.append(f"answers named {got.get('model')!r} / {stream.get('model')!r}, not 'local-model'")
    if got.get("content") != "ok" or stream.get("chunks") != 5 or not stream.get("done"):
        problems.append(f"content {got.get('content')!r}, stream {stream}")
    if row in ("this_proxy", "litellm_proxy", "this_proxy_native", "this_proxy_otel") and set(seen) != {
        "gemini-2.5-flash"
    }:
        problems.append(f"the upstream saw models {seen}, not only 'gemini-2.5-flash'")
    return not problems, "; ".join(problems) or "ok"


def check(row: str, target: dict[str, Any], upstream_port: int) -> dict[str, Any]:
    """The row's correctness check: one plain and one streamed request, and what the upstream saw of them."""
    before = upstream_stats(upstream_port)
    got = load({**target, "kind": "check"}, "python")
    after = upstream_stats(upstream_port)
    seen = {m: n - before.get(m, 0) for m, n in after.items() if n != before.get(m, 0)}
    correct, detail = correctness(row, got, seen)
    log(f"{row}: answers {'correct' if correct else 'WRONG: ' + detail}")
    return {"correct": correct, "correct_detail": detail, "check": {**got, "upstream_saw": seen}}


def memory(server: servers.Server, target: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
    """Resident memory before and after `mem_requests` requests with 1 MB bodies (after a warm-up), sampled
    after each of `mem_batches` batches so a steady climb (a leak) can be told from a plateau."""
    spec = {**target, "kind": "requests", "body": "1mb", "connections": p["mem_connections"]}
    load({**spec, "count": p["mem_warmup"]}, "python")
    time.sleep(0.5)
    rss_before = server.rss_mb()
    samples, done, errors, seconds, error_samples = [], 0, 0, 0.0, []
    deadline = time.monotonic() + p["mem_max_seconds"]
    batch = p["mem_requests"] // p["mem_batches"]
    for _ in range(p["mem_batches"]):
        left = max(1, int(deadline - time.monotonic()))
        run = load({**spec, "count": batch, "max_seconds": left}, "python")
        done, errors, seconds = done + run["requests"], errors + run["errors"], seconds + run["seconds"]
        error_samples += run["error_samples"]
        samples.append(server.rss_mb())
        if time.monotonic() > deadline or not server.alive():
            break
    time.sleep(1.0)
    rss_after = server.rss_mb()
    growth = rss_after - rss_before if rss_before is not None and rss_after is not None else None
    return {
        "rss_before_mb": rss_before,
        "rss_after_mb": rss_after,
        "growth_mb": growth,
        "rss_samples_mb": [round(x, 1) for x in samples if x is not None],
        "requests": done,
        "errors": errors,
        "error_samples": error_samples[:3],
        "seconds": round(seconds, 2),
        "rps": done / seconds if seconds else None,
    }


def summary(r: dict[str, Any]) -> str:
    keys = (
        "p50_ms",
        "p99_ms",
        "rps",
        "ttfc_p50_ms",
        "delay_p50_ms",
        "delay_p99_ms",
        "rss_before_mb",
        "growth_mb",
        "errors",
        "incomplete",
    )
    text = ", ".join(f"{k} {r[k]:.3g}" for k in keys if isinstance(r.get(k), (int, float)))
    return text + (f"; errors e.g. {r['error_samples'][0][:160]}" if r.get("error_samples") else "")
