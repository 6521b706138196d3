"""The real opencode CLI for end-to-end tests: installed from npm at a pinned version, run headless.

install()                 npm install opencode-ai@PIN into .cache/opencode, once (a file lock keeps parallel test
                          runs apart); raises InstallError with npm's own words when that is not possible
make_project(dir, config) a git repository with opencode.json (and files) committed: opencode's project
run(binary, project, ...) `opencode run --format json -m MODEL WORDS...` with a fresh HOME; the parsed events

Facts about opencode 1.18.33 these helpers rely on:
- It finds its project from the PWD environment variable, not the process's working directory.
- `opencode run` joins its message arguments with spaces, but wraps an argument that contains a space in double
  quotes and backslash-escapes the quotes inside it. A prompt therefore goes one word per argument, and the JSON
  of a fake script marker must be compact (no spaces).
- Without --title it sends an extra, tool-less request to name the session; run() passes --title unless told not.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "opencode-ai"
PIN = "1.18.33"
CACHE = ROOT / ".cache" / "opencode"
INSTALL_TIMEOUT = 600.0
# Set for every run: no self-update, no models.dev download, no downloads of LSP servers or default plugins.
QUIET_ENV = {
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
    "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
    "OPENCODE_DISABLE_CLAUDE_CODE": "1",
    "OPENCODE_DISABLE_SHARE": "1",
}
# A developer's own settings must not reach the run: opencode reads its config, data and cache from these.
STRIPPED_PREFIXES = ("OPENCODE_", "XDG_")


class InstallError(RuntimeError):
    """opencode could not be installed or does not run; the message says why and what to do."""


def install(cache: Path = CACHE, pin: str = PIN) -> Path:
    """The opencode binary at `pin`, installed into `cache` by npm unless it is there already."""
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".install.lock"):
        found = _working_binary(cache, pin)
        if found:
            return found
        npm = shutil.which("npm")
        if npm is None:
            raise InstallError(
                f"npm is not on PATH: install Node.js (npm) so the tests can install "
                f"{PACKAGE}@{pin}, or install it yourself with "
                f"`npm install --prefix {cache} {PACKAGE}@{pin}`."
            )
        command = [
            npm,
            "install",
            "--prefix",
            str(cache),
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            f"{PACKAGE}@{pin}",
        ]
        try:
            done = subprocess.run(
                command, check=False, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as e:
            raise InstallError(
                f"`{' '.join(command)}` did not finish within {INSTALL_TIMEOUT:.0f} s; "
                "check that the npm registry is reachable."
            ) from e
        if done.returncode != 0:
            raise InstallError(
                f"`{' '.join(command)}` failed with exit code {done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}"
            )
        found = _working_binary(cache, pin)
        if found is None:
            raise InstallError(
                f"npm installed {PACKAGE}@{pin} into {cache}, but no opencode binary there "
                f"answers `--version` with {pin}. npm said:\n{(done.stdout + done.stderr)[-3000:]}"
            )
        return found


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _working_binary(cache: Path, pin: str) -> Path | None:
    """The package's launcher, else the platform package's binary (when npm skipped the postinstall script)."""
    modules = cache / "node_modules"
    candidates = [modules / ".bin" / "opencode", *sorted(modules.glob("opencode-*/bin/opencode"))]
    return next((c for c in candidates if c.is_file() and version(c) == pin), None)


def version(binary: Path) -> str | None:
    try:
        done = subprocess.run(
            [str(binary), "--version"],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **QUIET_ENV},
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def make_project(directory: Path, config: dict[str, Any], files: dict[str, str] | None = None) -> Path:
    """`directory` as a git repository holding opencode.json and `files`, all committed."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "opencode.json").write_text(json.dumps(config, indent=2))
    for name, text in (files or {}).items():
        (directory / name).write_text(text)
    git = [
        "git",
        "-c",
        "user.name=opencode test",
        "-c",
        "user.email=test@example.invalid",
        "-c",
        "commit.gpgsign=false",
        "-c",
        "init.defaultBranch=main",
    ]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "test project"]):
        subprocess.run([*git, *args], cwd=directory, check=True, capture_output=True, timeout=60)
    return directory


@dataclass
class OpencodeRun:
    command: list[str]
    returncode: int | None  # None: killed at the timeout
    stdout: str
    stderr: str
    home: Path
    seconds: float

    @property
    def events(self) -> list[dict[str, Any]]:
        """The JSON events of `--format json`, one a line (anything else on stdout is skipped)."""
        events = []
        for line in self.stdout.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)
        return events

    @property
    def text(self) -> str:
        """The assistant's text, all steps."""
        return "".join(e["part"].get("text", "") for e in self.events if e.get("type") == "text")

    @property
    def tool_uses(self) -> list[dict[str, Any]]:
        """The tool parts opencode ran: tool, callID, state (status, input, output)."""
        return [e["part"] for e in self.events if e.get("type") == "tool_use"]

    @property
    def errors(self) -> list[str]:
        """The messages of the error events (an API error's message as opencode shows it)."""
        found = []
        for event in self.events:
            if event.get("type") == "error":
                error = event.get("error") or {}
                found.append(str((error.get("data") or {}).get("message") or error.get("name") or error))
        return found

    @property
    def step_reasons(self) -> list[str]:
        return [e["part"].get("reason", "") for e in self.events if e.get("type") == "step_finish"]

    def log_tail(self, size: int = 4000) -> str:
        logs = sorted((self.home / ".local" / "share" / "opencode" / "log").glob("*.log"))
        return logs[-1].read_text(errors="replace")[-size:] if logs else "(no opencode log)"

    def describe(self) -> str:
        """Everything needed to see why a run went wrong, for assertion messages."""
        return (
            f"$ {' '.join(self.command)}\nexit {self.returncode} after {self.seconds:.1f} s\n"
            f"--- stdout (tail)\n{self.stdout[-6000:]}\n--- stderr (tail)\n{self.stderr[-3000:]}\n"
            f"--- opencode log (tail)\n{self.log_tail()}"
        )


def run(
    binary: Path,
    project: Path,
    prompt: str,
    model: str,
    home: Path,
    timeout: float = 120.0,
    env: dict[str, str] | None = None,
    options: tuple[str, ...] = (),
    title: str | None = "test",
) -> OpencodeRun:
    """`opencode run --format json -m MODEL --title test OPTIONS... WORDS...` in `project`, HOME=`home` (created).
    title None: no --title, so opencode sends its title request (the title agent) beside the first turn."""
    home.mkdir(parents=True, exist_ok=True)
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(STRIPPED_PREFIXES)}
    run_env.update(
        QUIET_ENV,
        HOME=str(home),
        PWD=str(project),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        **(env or {}),
    )
    command = [
        str(binary),
        "run",
        "--format",
        "json",
        "-m",
        model,
        *(("--title", title) if title is not None else ()),
        *options,
        *prompt.split(),
    ]
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=project,
        env=run_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        code: int | None = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        code = None
    return OpencodeRun(command, code, stdout, stderr, home, time.monotonic() - started)
