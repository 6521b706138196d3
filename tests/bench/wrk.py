"""Plain non-streaming load through wrk (Debian's `wrk` package), when it is on PATH.

Same spec and result keys as load.py's "requests" scenario (duration mode only). wrk counts whole seconds,
so durations are rounded up to at least 1 s; a Lua `done` hook prints exact numbers for parsing.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from . import bodies

_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(headers)s
local f = io.open("%(body)s", "rb")
wrk.body = f:read("*a")
f:close()

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %%d %%d %%f %%f %%f %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.mean,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def requests(spec: dict[str, Any]) -> dict[str, Any]:
    body = bodies.opencode_conversation() if spec.get("body") == "1mb" else bodies.small(stream=False)
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        body_file, script_file = Path(tmp) / "body.json", Path(tmp) / "post.lua"
        body_file.write_bytes(body)
        headers = "\n".join(
            f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in (spec.get("headers") or {}).items()
        )
        script_file.write_text(_SCRIPT % {"headers": headers, "body": body_file})
        duration = max(1, math.ceil(spec["duration"]))
        url = f"http://{spec['host']}:{spec['port']}{spec['path']}"
        argv = [
            "wrk",
            "-t1",
            f"-c{spec['connections']}",
            f"-d{duration}s",
            "--timeout",
            "30s",
            "-s",
            str(script_file),
            url,
        ]
        done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=duration + 60)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        return {
            "requests": 0,
            "errors": 1,
            "error_samples": [(done.stderr or done.stdout)[-300:]],
            "rps": 0,
            "p50_ms": None,
            "p99_ms": None,
            "client": "wrk",
        }
    count, micros, p50, p99, mean, socket_errors, status_errors = line.split()[1:]
    seconds = int(micros) / 1e6
    return {
        "requests": int(count),
        "errors": int(socket_errors) + int(status_errors),
        "error_samples": [],
        "seconds": round(seconds, 3),
        "rps": int(count) / seconds if seconds else 0,
        "p50_ms": float(p50) / 1000,
        "p99_ms": float(p99) / 1000,
        "mean_ms": float(mean) / 1000,
        "body_bytes": len(body),
        "client": "wrk",
    }
