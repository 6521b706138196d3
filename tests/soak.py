"""Soak: thousands of chat requests through the real proxy (mitmweb, or mitmdump -w FILE), memory sampled as it runs.

    python -m tests.soak --requests 20000 --ui web|dump [--keep-flows 2000] [--concurrency 4] [--json PATH]

From code (the benchmark's memory row): `soak(ui="web", requests=20000) -> SoakResult`, then `result.to_dict()`.
Everything runs on loopback: a fake Gemini in this process, the proxy started exactly as mitm_run.sh starts it
(plus tests/flow_census.py, which counts the flow objects the proxy still holds). The request mix is an agent's:
streamed answers, streamed tool calls, plain answers, 1 MB requests (a long history) and 1 MB streamed answers.
The resident memory (VmRSS) of the proxy's process is read every `requests / samples` requests.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.conftest import ProxyProcess, start_proxy  # noqa: E402
from tests.fake_gemini import FakeGemini  # noqa: E402

CENSUS = ROOT / "tests" / "flow_census.py"
MB = 1024 * 1024
READ_TOOL = {
    "type": "function",
    "function": {
        "name": "read",
        "description": "Read a file",
        "parameters": {"type": "object", "properties": {"filePath": {"type": "string"}}, "required": ["filePath"]},
    },
}
HISTORY_SIZES = (1_000, 8_000, 32_000)  # bytes of earlier conversation in most requests


def chat_request(i: int, big_every: int = 100, body_kb: int = 0) -> tuple[bytes, bool]:
    """Request number i of the mix: (JSON body, streamed?). 1 in `big_every` has a 1 MB history, 1 in
    `big_every` a 1 MB streamed answer; of the rest, half streamed text, a fifth streamed tool calls, a tenth
    unstreamed, a fifth streamed in 10 chunks. With `body_kb`, every request has a history of that many kB and
    every other one is streamed (the replay soak: 200 kB requests, streamed and not)."""
    if body_kb:
        return uniform_request(i, body_kb)
    history = MB if i % big_every == 0 else HISTORY_SIZES[i % len(HISTORY_SIZES)]
    kind = i % 10
    body: dict[str, Any] = {"model": "local-model", "stream": kind != 7}
    if i % big_every == big_every // 2:
        text = f"request {i}: a long answer please [big:{MB}]"
    elif kind in (5, 6):
        text = f'request {i}: read it [tool:read {{"filePath": "src/file_{i}.py"}}]'
        body["tools"] = [READ_TOOL]
    elif kind in (8, 9):
        text = f"request {i} [chunks:10:0]"
    else:
        text = f"request {i}: hello"
    body["messages"] = [{"role": "system", "content": "x" * history}, {"role": "user", "content": text}]
    return json.dumps(body).encode(), body["stream"]


def uniform_request(i: int, body_kb: int) -> tuple[bytes, bool]:
    """Request i of the uniform mix: a `body_kb` kB history, streamed when i is even, tools offered every
    third."""
    body: dict[str, Any] = {"model": "local-model", "stream": i % 2 == 0}
    if i % 3 == 0:
        body["tools"] = [READ_TOOL]
    history = "x" * (body_kb * 1024)
    body["messages"] = [{"role": "system", "content": history}, {"role": "user", "content": f"request {i}: hello"}]
    return json.dumps(body).encode(), body["stream"]


def answer_ok(status: int, data: bytes, stream: bool) -> bool:
    if status != 200:
        return False
    if stream:
        return data.rstrip().endswith(b"data: [DONE]")
    return json.loads(data).get("model") == "local-model"


def rss_mb(pid: int) -> float | None:
    """The process's resident memory in MiB (VmRSS), None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class SoakResult:
    ui: str
    requests: int
    keep_flows: int
    body_kb: int = 0  # 0: the agent mix; else every request carries this many kB (uniform_request)
    seconds: float = 0.0
    failures: int = 0
    failure_examples: list[str] = field(default_factory=list)
    samples: list[tuple[int, float]] = field(default_factory=list)  # (requests done, RSS MiB)
    flows_held: int | None = None  # flow objects alive in the proxy at the end (flow_census)
    finished_flows_held: int | None = None
    web_flows: int | None = None  # flows in mitmweb's list (GET /flows), the dropped-flows placeholder aside
    web_dropped: int | None = None  # the count the placeholder shows
    saved_flows: int | None = None  # flows in the -w file (mitmdump)

    @property
    def rss_final_mb(self) -> float:
        return self.samples[-1][1]

    @property
    def rss_peak_mb(self) -> float:
        return max(rss for _, rss in self.samples)

    def growth_after(self, fraction: float) -> float:
        """RSS growth (MiB) from the first sample at or after `fraction` of the requests to the end."""
        start = next(rss for done, rss in self.samples if done >= fraction * self.requests)
        return self.rss_final_mb - start

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "rss_final_mb": self.rss_final_mb,
            "rss_peak_mb": self.rss_peak_mb,
            "growth_second_half_mb": self.growth_after(0.5),
        }

    def table(self) -> str:
        rows = [f"| {done} | {rss:.0f} |" for done, rss in self.samples]
        return "\n".join(["| requests | RSS MiB |", "|---:|---:|", *rows])


class Load:
    """`concurrency` keep-alive clients sending requests 0..total-1 of the mix; RSS sampled as they go."""

    def __init__(
        self, proxy: ProxyProcess, result: SoakResult, concurrency: int, samples: int, progress: Callable[[str], None]
    ) -> None:
        self.proxy, self.result, self.progress = proxy, result, progress
        self.concurrency = concurrency
        self.body_kb = result.body_kb
        self.every = max(1, result.requests // samples)
        self.lock = threading.Lock()
        self.next_index = itertools.count()
        self.done = 0

    def run(self) -> None:
        self.result.samples.append((0, rss_mb(self.proxy.process.pid) or 0.0))
        threads = [threading.Thread(target=self.client, daemon=True) for _ in range(self.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def client(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.proxy.port, timeout=120)
        while (i := next(self.next_index)) < self.result.requests:
            body, stream = chat_request(i, body_kb=self.body_kb)
            try:
                conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
                response = conn.getresponse()
                ok, detail = answer_ok(response.status, data := response.read(), stream), data[:200]
            except (OSError, http.client.HTTPException, ValueError) as e:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.proxy.port, timeout=120)
                ok, detail = False, repr(e).encode()
            self.finished(i, ok, detail)
        conn.close()

    def finished(self, i: int, ok: bool, detail: bytes) -> None:
        with self.lock:
            self.done += 1
            if not ok:
                self.result.failures += 1
                if len(self.result.failure_examples) < 5:
                    self.result.failure_examples.append(f"request {i}: {detail.decode(errors='replace')}")
            if self.done % self.every == 0 or self.done == self.result.requests:
                rss = rss_mb(self.proxy.process.pid) or 0.0
                self.result.samples.append((self.done, rss))
                self.progress(f"{self.done} requests, RSS {rss:.0f} MiB, {self.result.failures} failures")


def get_json(proxy: ProxyProcess, port: int, path: str, token: str | None = None) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", path, headers={"authorization": f"Bearer {token}"} if token else {})
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}: {data[:300]!r}")
        return json.loads(data)
    finally:
        conn.close()


def web_list(proxy: ProxyProcess) -> tuple[int, int | None]:
    """mitmweb's flow list: (flows in it other than the placeholder, the dropped count the placeholder shows)."""
    flows = get_json(proxy, proxy.web_port, "/flows", proxy.web_token())
    markers = [f for f in flows if f["request"]["method"] == "INFO" and f["request"]["host"] == "translate-proxy"]
    dropped = int(markers[0]["request"]["path"].split()[0].lstrip("/")) if markers else None
    return len(flows) - len(markers), dropped


def count_saved(path: Path) -> int:
    from mitmproxy import io

    with path.open("rb") as f:
        return sum(1 for _ in io.FlowReader(f).stream())


def soak(
    ui: str = "web",
    requests: int = 20_000,
    keep_flows: int = 2000,
    concurrency: int = 4,
    samples: int = 20,
    workdir: Path | None = None,
    extra_args: tuple[str, ...] = (),
    read_back: bool = True,
    body_kb: int = 0,
    progress: Callable[[str], None] = lambda line: None,
) -> SoakResult:
    """Run the soak against a fresh proxy (ui "web": mitmweb; "dump": mitmdump -w FILE) and stop it."""
    if ui not in ("web", "dump"):
        raise ValueError(f"ui must be 'web' or 'dump', not {ui!r}.")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="soak-"))
    saved = workdir / "soak.mitm"
    args = ["-s", str(CENSUS), "--set", f"translate_keep_flows={keep_flows}", *extra_args]
    if ui == "dump":
        args += ["-w", str(saved), "--set", "flow_detail=0"]
    result = SoakResult(ui, requests, keep_flows, body_kb)
    with FakeGemini(record_limit=20) as fake:
        proxy = start_proxy(fake, workdir, *args, web=ui == "web")
        try:
            started = time.monotonic()
            Load(proxy, result, concurrency, samples, progress).run()
            result.seconds = round(time.monotonic() - started, 1)
            census = get_json(proxy, proxy.port, "/_census")
            result.flows_held, result.finished_flows_held = census["flows"], census["finished"]
            if ui == "web":
                result.web_flows, result.web_dropped = web_list(proxy)
        finally:
            proxy.stop()
    if ui == "dump" and read_back:
        result.saved_flows = count_saved(saved)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="Soak the proxy with chat requests and sample its memory.")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--ui", choices=["web", "dump"], default="web")
    parser.add_argument("--keep-flows", type=int, default=2000, help="translate_keep_flows for the run")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--body-kb", type=int, default=0, help="every request this many kB (0: the agent mix)")
    parser.add_argument("--max-rss-mb", type=float, help="fail (exit 1) when the final RSS is above this")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    result = soak(
        args.ui,
        args.requests,
        args.keep_flows,
        args.concurrency,
        args.samples,
        body_kb=args.body_kb,
        progress=lambda line: print(f"soak: {line}", file=sys.stderr, flush=True),
    )
    print(result.table())
    summary = {k: v for k, v in result.to_dict().items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result.to_dict(), indent=2))
    problem = rss_problem(result, args.max_rss_mb)
    if problem:
        sys.exit(f"soak: {problem}")


def rss_problem(result: SoakResult, max_rss_mb: float | None) -> str | None:
    """What is wrong with a finished soak's memory and answers, or None: failed requests, or a final RSS above
    `max_rss_mb` (the replay soak's budget: 720 MiB after 6,000 requests of 200 kB through mitmweb)."""
    if result.failures:
        return f"{result.failures} requests failed: {result.failure_examples}"
    if max_rss_mb is not None and result.rss_final_mb > max_rss_mb:
        return f"RSS after {result.requests} requests is {result.rss_final_mb:.0f} MiB, above {max_rss_mb:.0f} MiB"
    return None


if __name__ == "__main__":
    main()
