"""The benchmark's one table: each measure for each row, ratios to direct / bare mitmdump / LiteLLM, targets.

The table is Markdown (readable in a terminal, pasteable into the README). Targets are checked on this proxy's
row; a target whose reference row did not run is `n/a`. The native path's column is compared with this proxy's
(the OpenAI-compatible path): the delay it adds in ms, or a ratio for other units.
"""

from __future__ import annotations

import datetime
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

ROWS = (
    "direct",
    "bare_mitmdump",
    "this_proxy",
    "litellm_proxy",
    "this_proxy_native",
    "this_proxy_speed",
    "this_proxy_otel",
)
TITLES = {
    "direct": "direct",
    "bare_mitmdump": "bare mitmdump",
    "this_proxy": "this proxy",
    "this_proxy_speed": "speed patches on",
    "litellm_proxy": "LiteLLM Proxy",
    "this_proxy_native": "native path",
    "this_proxy_otel": "OTel export on",  # this proxy exporting GenAI spans to a local OTLP sink (otlp_sink.py)
}


class Metric(NamedTuple):
    key: str  # "<scenario>.<field>" in a row's results
    label: str
    unit: str


METRICS = [
    Metric("plain_c1.p50_ms", "plain p50, 1 conn", "ms"),
    Metric("plain_c1.p99_ms", "plain p99, 1 conn", "ms"),
    Metric("plain_c1.rps", "plain req/s, 1 conn", "/s"),
    Metric("plain_c10.p50_ms", "plain p50, 10 conn", "ms"),
    Metric("plain_c10.p99_ms", "plain p99, 10 conn", "ms"),
    Metric("plain_c10.rps", "plain req/s, 10 conn", "/s"),
    Metric("stream_1.ttfc_p50_ms", "first chunk, 1 stream", "ms"),
    Metric("stream_1.delay_p50_ms", "chunk delay p50, 1 stream", "ms"),
    Metric("stream_1.delay_p99_ms", "chunk delay p99, 1 stream", "ms"),
    Metric("stream_100.ttfc_p50_ms", "first chunk p50, N streams", "ms"),
    Metric("stream_100.delay_p50_ms", "chunk delay p50, N streams", "ms"),
    Metric("stream_100.delay_p99_ms", "chunk delay p99, N streams", "ms"),
    Metric("body_1mb.p50_ms", "1 MB body p50", "ms"),
    Metric("body_1mb.p99_ms", "1 MB body p99", "ms"),
    Metric("memory.rss_before_mb", "RSS before 1 MB run", "MB"),
    Metric("memory.growth_mb", "RSS growth, 1 MB run", "MB"),
]


class Target(NamedTuple):
    key: str
    how: str  # "ratio": value / reference; "added": value - reference; "value": the value itself
    reference: str | None
    op: str  # "<=" or ">="
    limit: float
    row: str = "this_proxy"  # the row checked

    def describe(self) -> str:
        ref = {"direct": "direct", "bare_mitmdump": "bare", "litellm_proxy": "LiteLLM", "this_proxy": "proxy"}.get(
            self.reference or "", ""
        )
        if self.row != "this_proxy":
            ref = f"{ref} ({TITLES[self.row]})"
        if self.how == "ratio":
            return f"{self.op}{self.limit:g}x {ref}"
        if self.how == "added":
            return f"+{self.limit:g} ms over {ref}"
        return f"{self.op}{self.limit:g}"


TARGETS = [
    Target("plain_c1.p50_ms", "ratio", "bare_mitmdump", "<=", 1.15),
    Target("plain_c10.p50_ms", "ratio", "bare_mitmdump", "<=", 1.15),
    Target("plain_c1.rps", "ratio", "bare_mitmdump", ">=", 0.85),
    Target("plain_c1.rps", "ratio", "litellm_proxy", ">=", 6),
    Target("plain_c10.rps", "ratio", "bare_mitmdump", ">=", 0.85),
    Target("plain_c10.rps", "ratio", "litellm_proxy", ">=", 6),
    Target("stream_1.ttfc_p50_ms", "added", "direct", "<=", 3),
    Target("stream_100.delay_p50_ms", "added", "direct", "<=", 1),
    Target("stream_100.delay_p99_ms", "added", "direct", "<=", 20),
    Target("body_1mb.p50_ms", "added", "bare_mitmdump", "<=", 3),
    Target("memory.growth_mb", "value", None, "<=", 20),
    Target("plain_c1.p50_ms", "added", "this_proxy", "<=", 0.2, row="this_proxy_otel"),
]


def value(rows: dict[str, Any], row: str, key: str) -> float | None:
    scenario, field = key.split(".")
    found = ((rows.get(row) or {}).get(scenario) or {}).get(field)
    return float(found) if isinstance(found, (int, float)) else None


def check(rows: dict[str, Any], target: Target) -> dict[str, Any]:
    """One target on this proxy's row: the compared quantity and PASS / MISS / n/a."""
    mine = value(rows, target.row, target.key)
    ref = value(rows, target.reference, target.key) if target.reference else None
    measured: float | None = None
    if mine is not None and target.how == "value":
        measured = mine
    elif mine is not None and ref is not None:
        measured = mine - ref if target.how == "added" else (mine / ref if ref else None)
    verdict = "n/a"
    if measured is not None:
        ok = measured <= target.limit if target.op == "<=" else measured >= target.limit
        verdict = "PASS" if ok else "MISS"
    return {"key": target.key, "target": target.describe(), "measured": measured, "verdict": verdict}


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def _native_vs_proxy(native: float | None, proxy: float | None, unit: str) -> str:
    """What the native path adds to the OpenAI-compatible one: ms for times, a ratio for the rest."""
    if native is None or proxy is None:
        return "-"
    return f"{native - proxy:+.2f} ms" if unit == "ms" else _ratio(native, proxy)


def _measured(target: Target, measured: float | None) -> str:
    if measured is None:
        return ""
    if target.how == "ratio":
        return f" ({measured:.2f}x)"
    return f" ({measured:+.2f} ms)" if target.how == "added" else f" ({measured:.1f})"


def table(rows: dict[str, Any], checks: list[dict[str, Any]]) -> str:
    header = [
        "measure",
        *(TITLES[r] for r in ROWS),
        "proxy/direct",
        "proxy/bare",
        "proxy/LiteLLM",
        "native vs proxy",
        "speed on / off",
        "target",
        "check",
    ]
    lines = [header]
    for metric in METRICS:
        values = [value(rows, r, metric.key) for r in ROWS]
        mine = values[2]
        targets = [(t, c) for t, c in zip(TARGETS, checks) if t.key == metric.key]
        lines.append(
            [
                f"{metric.label} ({metric.unit})",
                *map(_num, values),
                _ratio(mine, values[0]),
                _ratio(mine, values[1]),
                _ratio(mine, values[3]),
                _native_vs_proxy(values[4], mine, metric.unit),
                _ratio(values[5], mine),
                "; ".join(t.describe() for t, _ in targets),
                "; ".join(c["verdict"] + _measured(t, c["measured"]) for t, c in targets),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = [
        "| "
        + " | ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))
        + " |"
        for line in lines
    ]
    out.insert(1, "|" + "|".join("-" * (w + 1) + ("-" if i == 0 else ":") for i, w in enumerate(widths)) + "|")
    return "\n".join(out)


def machine(client: str, litellm: Path) -> dict[str, Any]:
    """What the run ran on (the LiteLLM version from its environment's stamp file)."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": mem_kb / 1024**2,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "mitmproxy": metadata.version("mitmproxy"),
        "litellm": litellm.read_text().strip() if litellm.exists() else None,
        "client": client,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def problems(rows: dict[str, Any]) -> list[str]:
    """One line per row that failed, answered wrongly, or had errors in a scenario."""
    lines = []
    for row, result in rows.items():
        title = TITLES[row]
        if not result.get("ok"):
            lines.append(f"{title}: FAILED: {result.get('error')}")
            continue
        if not result.get("correct"):
            lines.append(f"{title}: WRONG ANSWERS: {result.get('correct_detail')}")
        for name, scenario in result.items():
            if isinstance(scenario, dict) and (scenario.get("errors") or scenario.get("incomplete")):
                sample = (scenario.get("error_samples") or [""])[0][:200]
                lines.append(
                    f"{title}: {name}: {scenario.get('errors', 0)} errors, "
                    f"{scenario.get('incomplete', 0)} incomplete streams {sample}".rstrip()
                )
    return lines


def machine_line(machine: dict[str, Any]) -> str:
    return (
        f"Machine: {machine['cpus']} x {machine['cpu']}, {machine['memory_gb']:.0f} GB, {machine['kernel']}; "
        f"Python {machine['python']}, mitmproxy {machine['mitmproxy']}, LiteLLM {machine.get('litellm') or '-'}; "
        f"plain-request client: {machine['client']}; load average at start {machine['load_average']:.2f}"
        + (f", at end {machine['load_average_end']:.2f}" if "load_average_end" in machine else "")
        + "; "
        + f"{machine['date']}"
    )
