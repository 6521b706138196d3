"""End to end under load, loopback only: 200 concurrent streams and 2,000 sequential requests through one proxy.
Every answer complete and correct, no error, and the proxy's memory flat once it has warmed up."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ProxyProcess, start_proxy

pytestmark = pytest.mark.e2e

CONCURRENT, SEQUENTIAL = 200, 2000


@pytest.fixture(scope="module")
def loaded_proxy(fake_gemini, tmp_path_factory) -> Iterator[ProxyProcess]:
    proxy = start_proxy(fake_gemini, tmp_path_factory.mktemp("load"), "--set", "flow_detail=0")
    yield proxy
    proxy.stop()


def rss_mb(proxy: ProxyProcess) -> float:
    with open(f"/proc/{proxy.process.pid}/status") as f:
        line = next(line for line in f if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def body(text: str, stream: bool) -> dict:
    return {"model": "local-model", "stream": stream, "messages": [{"role": "user", "content": text}]}


def expected(text: str) -> str:
    return f"Hello from fake Gemini. You said: {text}"


def stream_content(raw: bytes) -> tuple[str, set[str], bool]:
    content, models, done = "", set(), False
    for line in raw.split(b"\n"):
        if not line.startswith(b"data: "):
            continue
        if line == b"data: [DONE]":
            done = True
            continue
        chunk = json.loads(line[6:])
        assert "error" not in chunk, chunk
        models.add(chunk["model"])
        content += "".join(c["delta"].get("content") or "" for c in chunk["choices"])
    return content, models, done


async def concurrent_streams(proxy: ProxyProcess, count: int) -> list[str]:
    """Start `count` streams at once; the problems found (empty when every stream was complete and right)."""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=proxy.base_url, limits=limits, timeout=60, trust_env=False) as client:

        async def one(n: int) -> str | None:
            text = f"stream {n} [chunks:5:100]"
            response = await client.post("/chat/completions", json=body(text, True))
            content, models, done = stream_content(response.content)
            wanted = "".join(f"chunk {i} " for i in range(5))
            if response.status_code != 200 or content != wanted or models != {"local-model"} or not done:
                return f"#{n}: {response.status_code} {content!r} {models} done={done}"
            return None

        results = await asyncio.gather(*(one(n) for n in range(count)))
    return [r for r in results if r]


def sequential(proxy: ProxyProcess, start: int, count: int) -> list[str]:
    problems = []
    with httpx.Client(base_url=proxy.base_url, timeout=30, trust_env=False) as client:
        for n in range(start, start + count):
            text, stream = f"request {n}", n % 2 == 0
            response = client.post("/chat/completions", json=body(text, stream))
            if stream:
                content, models, done = stream_content(response.content)
            else:
                answer = response.json()
                content, models, done = answer["choices"][0]["message"]["content"], {answer["model"]}, True
            if response.status_code != 200 or content != expected(text) or models != {"local-model"} or not done:
                problems.append(f"#{n}: {response.status_code} {content!r} {models} done={done}")
    return problems


def test_200_concurrent_streams(loaded_proxy, fake):
    started = time.monotonic()
    problems = asyncio.run(concurrent_streams(loaded_proxy, CONCURRENT))
    took = time.monotonic() - started
    assert problems == [], problems[:5]
    assert len(fake.chat_requests()) == CONCURRENT
    # 200 streams of 0.5 s each at once: far less than one after another would take (100 s).
    assert took < 30, took


def test_2000_sequential_requests_with_flat_memory(loaded_proxy, fake):
    assert sequential(loaded_proxy, 0, 400) == []  # warm-up: caches, pools, first-use allocations
    before = rss_mb(loaded_proxy)
    started = time.monotonic()
    problems = sequential(loaded_proxy, 400, SEQUENTIAL - 400)
    took = time.monotonic() - started
    after = rss_mb(loaded_proxy)
    assert problems == [], problems[:5]
    assert took < 90, took
    assert after - before < 25, f"RSS grew from {before:.0f} MB to {after:.0f} MB over {SEQUENTIAL - 400} requests"
    assert "Traceback" not in loaded_proxy.log_text() and " error" not in loaded_proxy.log_text().lower()
