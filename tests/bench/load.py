"""The async load client: one scenario per run, spec as JSON on stdin, result as JSON on stdout.

Runs in its own process so the client shares no event loop with anything it measures. Connections are raw
asyncio streams with keep-alive; each response is parsed by http11.Response as its bytes arrive.

Scenarios (spec["kind"]):
- "requests": `connections` workers send the same POST back to back, for `duration` seconds after `warmup`
  seconds (or `count` requests in all); latency percentiles, requests/s, errors.
- "streams": `streams` concurrent streaming requests, `rounds` times, started spread over `stagger_ms`;
  time to first chunk and per-chunk delay (the upstream's send time inside the chunk -> the client's read), and
  every chunk accounted for: each carries its sequence number, so a chunk lost, merged into another event,
  repeated or out of order is counted.
- "check": one plain and one streamed request; what the client got back (model names, chunk counts).

    echo '{"kind": "requests", ...}' | python -m tests.bench.load
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import re
import sys
import time
from typing import Any

import orjson

from . import bodies, http11

_STAMP = re.compile(rb"t=(\d+)")
_SEQ = re.compile(rb"t=\d+ n=(\d+)")
TIMEOUT = 60.0


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of unsorted values (None for none)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


class Conn:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, payload: bytes, sse: bool = False) -> tuple[http11.Response, int]:
        """One request on this keep-alive connection (reconnecting if needed); (response, send time ns)."""
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(
                self.spec["host"], self.spec["port"], limit=1 << 22
            )
        assert self.reader is not None
        response = http11.Response(sse=sse)
        sent = time.time_ns()
        self.writer.write(payload)
        while True:
            data = await self.reader.read(1 << 20)
            now = time.time_ns()
            if not data:
                self.close()
                if response.feed_eof(now):
                    return response, sent
                raise ConnectionError(f"connection closed after {len(response.body)} body bytes")
            if response.feed(data, now):
                if response.headers.get("connection", "").lower() == "close":
                    self.close()
                return response, sent

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.writer = None


def _payload(spec: dict[str, Any], body: bytes) -> bytes:
    return http11.request("POST", spec["host"], spec["port"], spec["path"], body, spec.get("headers"))


def _request_bodies(spec: dict[str, Any]) -> list[bytes]:
    """The bodies sent in turn: one small request, or a long conversation's follow-up turns."""
    if spec.get("body") == "1mb":
        return bodies.follow_up_turns(spec.get("body_size", bodies.MB))
    return [bodies.small(stream=False)]


async def requests(spec: dict[str, Any]) -> dict[str, Any]:
    payloads = [_payload(spec, body) for body in _request_bodies(spec)]
    turn = itertools.count()
    latencies: list[float] = []
    errors: list[str] = []
    count = spec.get("count")
    state = {"left": count, "measuring": spec.get("warmup", 0) <= 0}

    async def worker() -> None:
        conn = Conn(spec)
        while not stop.is_set():
            if count is not None:
                if state["left"] <= 0:
                    return
                state["left"] -= 1
            try:
                payload = payloads[next(turn) % len(payloads)]
                response, sent = await asyncio.wait_for(conn.send(payload), TIMEOUT)
                took = (time.time_ns() - sent) / 1e6
                if response.status != 200:
                    errors.append(f"HTTP {response.status}: {bytes(response.body[:200])!r}")
                elif state["measuring"] and not stop.is_set():
                    latencies.append(took)
            except (TimeoutError, OSError, ValueError) as e:
                errors.append(f"{type(e).__name__}: {e}")
                conn.close()
                await asyncio.sleep(0.01)
        conn.close()

    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker()) for _ in range(spec["connections"])]
    if spec.get("warmup", 0) > 0:
        await asyncio.sleep(spec["warmup"])
        state["measuring"] = True
    start = time.perf_counter()
    if count is None:
        await asyncio.sleep(spec["duration"])
        stop.set()
    elapsed = time.perf_counter() - start
    await asyncio.wait(tasks, timeout=spec.get("max_seconds", 600))
    stop.set()
    if count is not None:
        elapsed = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "error_samples": errors[:3],
        "seconds": round(elapsed, 3),
        "rps": len(latencies) / elapsed if elapsed else 0,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "mean_ms": sum(latencies) / len(latencies) if latencies else None,
        "body_bytes": len(payloads[0]),
    }


async def _one_stream(spec: dict[str, Any], conn: Conn, payload: bytes, expected: int) -> dict[str, Any]:
    response, sent = await asyncio.wait_for(conn.send(payload, sse=True), TIMEOUT)
    if response.status != 200:
        return {"error": f"HTTP {response.status}: {bytes(response.body[:200])!r}"}
    delays, first, last, seqs, merged = [], None, None, [], 0
    for received, event in response.events:
        found = _STAMP.search(event)
        if found:
            first, last = first or received, received
            delays.append((received - int(found[1])) / 1e6)
            numbers = _SEQ.findall(event)
            merged += len(numbers) > 1  # two chunks' content in one event
            seqs += map(int, numbers)
    return {
        "ttfc_ms": (first - sent) / 1e6 if first else None,
        "ttlc_ms": (last - sent) / 1e6 if last else None,  # the whole stream, as its user waits for it
        "delays": delays,
        "chunks": len(delays),
        **_accounting(seqs, merged, expected),
        "done": bool(response.events) and response.events[-1][1].strip() == b"data: [DONE]",
        "model": _event_model(response.events),
    }


def _accounting(seqs: list[int], merged: int, expected: int) -> dict[str, int]:
    """Every chunk accounted for, from the sequence numbers the client read: `lost` of the `expected` chunks
    never arrived, `merged` events held more than one chunk, `disordered` chunks came again or before an
    earlier one."""
    disordered = sum(1 for a, b in zip(seqs, seqs[1:]) if b <= a)
    return {"lost": expected - len(set(seqs) & set(range(expected))), "merged": merged, "disordered": disordered}


def _event_model(events: list[tuple[int, bytes]]) -> str | None:
    for _, event in events:
        if event.startswith(b"data: {"):
            try:
                return orjson.loads(event[6:]).get("model")
            except orjson.JSONDecodeError:
                return None
    return None


async def streams(spec: dict[str, Any]) -> dict[str, Any]:
    payload = _payload(spec, bodies.small(True, spec["chunks"], spec["interval_ms"]))
    results: list[dict[str, Any]] = []
    errors: list[str] = []
    conns = [Conn(spec) for _ in range(spec["streams"])]
    rng = random.Random(7)

    async def run(conn: Conn, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            results.append(await _one_stream(spec, conn, payload, spec["chunks"]))
        except (TimeoutError, OSError, ValueError) as e:
            errors.append(f"{type(e).__name__}: {e}")
            conn.close()

    for _ in range(spec.get("rounds", 1)):
        stagger = spec.get("stagger_ms", 0) / 1000
        await asyncio.gather(*(run(conn, rng.uniform(0, stagger)) for conn in conns))
    for conn in conns:
        conn.close()
    errors += [r["error"] for r in results if "error" in r]
    good = [r for r in results if "error" not in r]
    delays = [d for r in good for d in r["delays"]]
    ttfc = [r["ttfc_ms"] for r in good if r["ttfc_ms"] is not None]
    ttlc = [r["ttlc_ms"] for r in good if r["ttlc_ms"] is not None]
    expected = spec["chunks"]
    return {
        "streams": len(good),
        "errors": len(errors),
        "error_samples": errors[:3],
        "incomplete": sum(1 for r in good if r["chunks"] != expected or not r["done"]),
        "expected_chunks": expected * spec["streams"] * spec.get("rounds", 1),
        "lost": sum(r["lost"] for r in good),
        "merged": sum(r["merged"] for r in good),
        "disordered": sum(r["disordered"] for r in good),
        "ttfc_p50_ms": percentile(ttfc, 50),
        "ttfc_p99_ms": percentile(ttfc, 99),
        "ttlc_p50_ms": percentile(ttlc, 50),
        "ttlc_p99_ms": percentile(ttlc, 99),
        "delay_p50_ms": percentile(delays, 50),
        "delay_p99_ms": percentile(delays, 99),
        "delay_max_ms": max(delays) if delays else None,
        "chunks": len(delays),
        "models": sorted({str(r["model"]) for r in good}),
    }


async def check(spec: dict[str, Any]) -> dict[str, Any]:
    """One plain and one streamed request: what came back, for the correctness check."""
    conn = Conn(spec)
    out: dict[str, Any] = {}
    try:
        response, _ = await asyncio.wait_for(conn.send(_payload(spec, bodies.small(False))), TIMEOUT)
        out["status"] = response.status
        parsed = orjson.loads(bytes(response.body)) if response.status == 200 else {}
        out["model"] = parsed.get("model")
        out["content"] = ((parsed.get("choices") or [{}])[0].get("message") or {}).get("content")
        out["stream"] = await _one_stream(spec, conn, _payload(spec, bodies.small(True, 5, 1)), 5)
        out["stream"].pop("delays", None)
    except (TimeoutError, OSError, ValueError) as e:
        out["error"] = f"{type(e).__name__}: {e}"
    conn.close()
    return out


SCENARIOS = {"requests": requests, "streams": streams, "check": check}


def main() -> None:
    spec = orjson.loads(sys.stdin.buffer.read())
    result = asyncio.run(SCENARIOS[spec["kind"]](spec))
    sys.stdout.buffer.write(orjson.dumps(result))


if __name__ == "__main__":
    main()
