"""The servers under test: start one in its own process group, wait for its health, measure it, stop it.

Every process is started here and stopped by its own id (its process group, so a wrapper's children go too).
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from tests.support import DIRECT

ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = ROOT / ".bench"
VENV_BIN = ROOT / ".venv" / "bin"


KEEP_RUNS = 5


def bench_dir() -> Path:
    """.bench/ at the repo root (git-ignored): LiteLLM's virtual environment, results, and runs/."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    return BENCH_DIR


@functools.cache
def run_dir() -> Path:
    """This run's own folder for configs and logs (.bench/runs/<time>-<pid>), so that runs at the same time
    do not rewrite each other's opencode.json (the proxy reloads it). Only the newest few are kept."""
    runs = bench_dir() / "runs"
    runs.mkdir(exist_ok=True)
    for old in sorted(runs.iterdir())[:-KEEP_RUNS]:
        shutil.rmtree(old, ignore_errors=True)
    path = runs / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    path.mkdir()
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen | None = None
    log: Path | None = None
    pids: list[int] = field(default_factory=list)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def rss_mb(self) -> float | None:
        """Resident memory of the server's process and its descendants, in MiB."""
        if not self.alive():
            return None
        assert self.proc is not None
        total = 0
        for pid in [self.proc.pid, *_descendants(self.proc.pid)]:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total / 1024


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def start(name: str, port: int, argv: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> Server:
    log = run_dir() / f"{name}.log"
    with open(log, "wb") as out:
        # Loopback only: a proxy named in the environment must not see (or break) any of this traffic.
        no_proxy = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env={**os.environ, **no_proxy, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Server(name, port, proc, log)


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with DIRECT.open(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_healthy(server: Server, path: str, timeout: float) -> str | None:
    """None once GET path answers 200, else why not (the process died, or the time ran out)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not server.alive():
            code = server.proc.returncode if server.proc else None
            return f"{server.name} exited with code {code} before it was healthy:\n{server.log_tail()}"
        try:
            status, _ = http_get(server.port, path, timeout=1.0)
            if status == 200:
                return None
            last = f"HTTP {status}"
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    return f"{server.name} was not healthy at {path} after {timeout:.0f} s ({last}):\n{server.log_tail()}"


def wait_ready(server: Server, timeout: float) -> str | None:
    """None once this proxy's /health says litellm is loaded (before, chat requests wait for it, which would
    skew timings), else why not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        why = wait_healthy(server, "/health", max(1.0, deadline - time.monotonic()))
        if why:
            return why
        try:
            if orjson.loads(http_get(server.port, "/health")[1]).get("litellm", "ready") == "ready":
                return None
        except (OSError, orjson.JSONDecodeError, AttributeError):
            pass
        time.sleep(0.2)
    return f"{server.name}: litellm was not loaded after {timeout:.0f} s:\n{server.log_tail()}"


def upstream(port: int) -> Server:
    return start("upstream", port, [str(VENV_BIN / "python"), "-m", "tests.bench.upstream", "--port", str(port)])


def bare_mitmdump(port: int, upstream_port: int) -> Server:
    """mitmdump as the issue defines the floor: reverse mode and the stream flag, nothing else. Its default output
    stays on (a line per flow), as this proxy's does: `-q` would compare a silent floor with a logging proxy."""
    argv = [
        str(VENV_BIN / "mitmdump"),
        "--mode",
        f"reverse:http://127.0.0.1:{upstream_port}",
        "--listen-host",
        "127.0.0.1",
        "--listen-port",
        str(port),
        "--set",
        "connection_strategy=lazy",
        "--set",
        "stream_large_bodies=1",
    ]
    return start("bare_mitmdump", port, argv)


def opencode_config(proxy_port: int, native_base: str | None = None, name: str = "opencode") -> Path:
    """The opencode.json this proxy reads: an alias provider `local` pointing at the proxy itself (or at the
    balancer in front of it); with native_base, `local-model` is `gemini/gemini-2.5-flash` on Gemini's native API
    there (an @ai-sdk/google provider)."""
    config = run_dir() / (f"{name}-native.json" if native_base else f"{name}.json")
    model = "gemini/gemini-2.5-flash" if native_base else "gemini-2.5-flash"
    google = (
        f""",
    "google": {{
      "npm": "@ai-sdk/google",
      "options": {{"baseURL": "{native_base}", "apiKey": "bench-key"}},
      "models": {{}}
    }}"""
        if native_base
        else ""
    )
    config.write_text(f"""{{
  "$schema": "https://opencode.ai/config.json",
  "provider": {{
    "local": {{
      "npm": "@ai-sdk/openai-compatible",
      "name": "translation proxy (benchmark)",
      "options": {{
        "baseURL": "http://127.0.0.1:{proxy_port}/v1",
        "proxy": {{"models": {{"local-model": "{model}"}}}}
      }},
      "models": {{"local-model": {{"name": "local-model"}}}}
    }}{google}
  }}
}}
""")
    return config


def this_proxy(
    port: int,
    upstream_port: int,
    extra_args: list[str],
    native: bool = False,
    name: str | None = None,
    config: Path | None = None,
    env: dict[str, str] | None = None,
) -> Server:
    """This proxy as mitm_run.sh starts it; `native`: its chat requests take Gemini's native API; `config`: an
    opencode.json of its own (replicas share the one that names their balancer)."""
    native_base = f"http://127.0.0.1:{upstream_port}/v1beta" if native else None
    env = {
        "PROXY_HOST": "127.0.0.1",
        "PROXY_PORT": str(port),
        "GEMINI_API_BASE": f"http://127.0.0.1:{upstream_port}/v1beta/openai/",
        "GEMINI_API_KEY": "bench-key",
        "OPENCODE_CONFIG": str(config or opencode_config(port, native_base)),
        **(env or {}),
    }
    name = name or ("this_proxy_native" if native else "this_proxy")
    return start(name, port, [str(ROOT / "mitm_run.sh"), *extra_args], env)


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's open-files limit (its children inherit it) toward `wanted`; the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
        soft = target
    return soft
