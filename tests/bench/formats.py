"""The client-format table: what translating OpenAI Responses and Anthropic Messages costs, beside chat.

`./mitm_run.sh bench --only formats` (with --quick: a few requests each). One proxy (started as mitm_run.sh starts
it) before the benchmark's fake upstream; one client connection; requests one after another. For each format,
plain and streamed (`stream_chunks` chunks sent at once by the upstream), the time from sending the request to
its last byte: p50 and p99 in ms, and p50 minus chat's p50. Every answer is checked (the text, or the stream's
terminal event) so a broken translation cannot pass as a fast one.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson

from . import servers
from .load import percentile
from .measure import log

FULL = {"requests": 200, "warmup": 20, "stream_chunks": 40}
QUICK = {"requests": 10, "warmup": 2, "stream_chunks": 10}
# (format, path, body, the bytes that end a good answer or stream)
PROMPT = "bench chunks={n} interval_ms=0"


def cases(chunks: int) -> list[tuple[str, str, dict[str, Any], bool, bytes]]:
    text = PROMPT.format(n=chunks)
    chat = {"model": "local-model", "messages": [{"role": "user", "content": text}]}
    responses = {"model": "local-model", "input": text}
    messages = {"model": "local-model", "max_tokens": 100, "messages": [{"role": "user", "content": text}]}
    found = []
    for name, path, body, end in (
        ("chat", "/v1/chat/completions", chat, b"data: [DONE]"),
        ("responses", "/v1/responses", responses, b"event: response.completed"),
        ("messages", "/v1/messages", messages, b"event: message_stop"),
    ):
        found.append((name, path, body, False, b'"output_tokens"' if name != "chat" else b'"choices"'))
        found.append((name, path, {**body, "stream": True}, True, end))
    return found


def timed(client: httpx.Client, path: str, body: dict[str, Any], end: bytes) -> float:
    started = time.perf_counter()
    response = client.post(path, json=body)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200 or end not in response.content:
        raise RuntimeError(f"{path}: {response.status_code} {response.content[-300:]!r}")
    return elapsed


def litellm_ready(port: int, timeout: float) -> str | None:
    """Wait until the proxy's /health says litellm is imported (requests wait for it, and would time out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = servers.http_get(port, "/health")
        if status == 200 and orjson.loads(body).get("litellm") == "ready":
            return None
        time.sleep(0.5)
    return f"litellm was not imported within {timeout:.0f} s"


def run(upstream_port: int, p: dict[str, Any], args: Any) -> dict[str, Any]:
    port = servers.free_port()
    server = servers.this_proxy(port, upstream_port, args.proxy_arg, name="this_proxy_formats")
    why = servers.wait_healthy(server, "/health", 90)
    if why:
        server.stop()
        return {"ok": False, "error": why}
    why = litellm_ready(port, 180)
    if why:
        server.stop()
        return {"ok": False, "error": why}
    rows: dict[str, Any] = {}
    headers = {"authorization": "Bearer bench-client-key", "x-api-key": "bench-client-key"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client:
            for name, path, body, stream, end in cases(p["stream_chunks"]):
                for _ in range(p["warmup"]):
                    timed(client, path, body, end)
                times = [timed(client, path, body, end) for _ in range(p["requests"])]
                key = f"{name}_{'stream' if stream else 'plain'}"
                rows[key] = {"p50": percentile(times, 50), "p99": percentile(times, 99), "requests": len(times)}
                log(f"formats: {key}: p50 {rows[key]['p50']:.2f} ms")
    except (RuntimeError, httpx.HTTPError) as e:
        return {"ok": False, "error": str(e), "rows": rows}
    finally:
        server.stop()
    return {"ok": True, "rows": rows}


def table(result: dict[str, Any], p: dict[str, Any]) -> str:
    if not result.get("ok"):
        return f"client formats: FAILED: {result.get('error')}"
    rows = result["rows"]
    lines = [
        f"Client formats: {p['requests']} requests each, one connection; streams of {p['stream_chunks']} chunks.",
        "",
        "| format | plain p50 | plain p99 | vs chat | streamed p50 | streamed p99 | vs chat |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("chat", "responses", "messages"):
        plain, streamed = rows[f"{name}_plain"], rows[f"{name}_stream"]
        extra_plain = plain["p50"] - rows["chat_plain"]["p50"]
        extra_stream = streamed["p50"] - rows["chat_stream"]["p50"]
        lines.append(
            f"| {name} | {plain['p50']:.2f} ms | {plain['p99']:.2f} ms | {extra_plain:+.2f} ms "
            f"| {streamed['p50']:.2f} ms | {streamed['p99']:.2f} ms | {extra_stream:+.2f} ms |"
        )
    return "\n".join(lines)
