"""Shared fixtures: the fake Gemini upstream, and the real proxy started exactly as mitm_run.sh starts it.

fake_gemini (session) / fake (per test, reset)   tests.fake_gemini.FakeGemini
proxy (session)                                  a ProxyProcess in front of the fake, default options
proxy_factory (per test)                         start_proxy(...) for tests that need their own options
openai_client (per test)                         the openai SDK pointed at the session proxy
opencode_bin (session)                           the real opencode CLI, installed once at its pinned version

Two tiers, split by marker: a test that starts real processes (mitmdump/mitmweb, browsers, CLIs, nginx) is in a
module marked `pytestmark = pytest.mark.e2e`; `./mitm_run.sh test --quick` runs the rest (`-m "not e2e"`). Both
checks below keep that true as tests are added: using a process fixture without the marker fails collection, and
an unmarked test that starts a process fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from hypothesis import settings

# Property tests check behaviour, not speed (speed is measured in tests/bench): no per-example deadline, which a
# machine busy with other work would otherwise turn into a failure.
settings.register_profile("no_deadline", deadline=None)
settings.load_profile("no_deadline")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests import opencode_cli  # noqa: E402
from tests.fake_gemini import FakeGemini  # noqa: E402
from tests.fake_gemini_native import FakeNativeGemini  # noqa: E402
from tests.support import DIRECT  # noqa: E402

RUN_SH = ROOT / "mitm_run.sh"
ALIASES = {"local-model": "gemini-2.5-flash", "local-3": "gemini-3-pro-preview"}
# Variables of mitm_run.sh's contract: a developer's own values must not leak into the tests.
CONTRACT_ENV = (
    "OPENCODE_CONFIG",
    "PROXY_HOST",
    "PROXY_PORT",
    "GEMINI_API_BASE",
    "GEMINI_API_KEY",
    "GEMINI_MODEL",
    "PROXY_API_KEY",
    "WEB_HOST",
    "WEB_PORT",
)
# Loopback traffic must never go through a proxy a developer's environment names.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


# Fixtures that start real processes: a test using one must carry the e2e marker.
PROCESS_FIXTURES = frozenset({"proxy", "proxy_factory", "openai_client", "opencode_bin", "mitmweb"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = sorted(
        {
            item.nodeid.split("::")[0]
            for item in items
            if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("e2e")
        }
    )
    if unmarked:
        raise pytest.UsageError(
            f"These modules use a fixture that starts processes ({', '.join(sorted(PROCESS_FIXTURES))}) but are not "
            f"marked end-to-end: add `pytestmark = pytest.mark.e2e` to {', '.join(unmarked)}."
        )


@contextlib.contextmanager
def _no_processes(item: pytest.Item) -> Iterator[None]:
    """For a test without the e2e marker: starting a process is an error that names the fix."""
    if item.get_closest_marker("e2e"):
        yield
        return
    original = subprocess.Popen._execute_child  # type: ignore[attr-defined]

    def refuse(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        raise RuntimeError(
            f"{item.nodeid} starts a process ({args!r}) but is not marked end-to-end: add "
            "`pytestmark = pytest.mark.e2e` to its module (or @pytest.mark.e2e to the test)."
        )

    subprocess.Popen._execute_child = refuse  # type: ignore[attr-defined]
    try:
        yield
    finally:
        subprocess.Popen._execute_child = original  # type: ignore[attr-defined]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with _no_processes(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with _no_processes(item):
        return (yield)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def opencode_config(port: int, aliases: dict[str, str] = ALIASES) -> dict[str, Any]:
    """An opencode.json with the alias provider "local" pointing at the proxy on this port."""
    return {
        "$schema": "https://opencode.ai/config.json",
        "model": "local/local-model",
        "provider": {
            "local": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Local proxy",
                "options": {
                    "baseURL": f"http://127.0.0.1:{port}/v1",
                    "apiKey": "anything",
                    "proxy": {"models": dict(aliases)},
                },
                "models": {name: {"name": name} for name in aliases},
            }
        },
    }


class ProxyProcess:
    """A running `mitm_run.sh` (mitmdump, or mitmweb with web=True) and its combined stdout/stderr log."""

    def __init__(
        self, process: subprocess.Popen[bytes], port: int, log_path: Path, config_path: Path, web_port: int | None
    ) -> None:
        self.process, self.port, self.log_path = process, port, log_path
        self.config_path, self.web_port = config_path, web_port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_size(self) -> int:
        """A mark for log_text(since=...): what a session-wide proxy logged during one test."""
        return self.log_path.stat().st_size

    def log_text(self, since: int = 0) -> str:
        with self.log_path.open("rb") as f:
            f.seek(since)
            return f.read().decode(errors="replace")

    def web_token(self) -> str | None:
        """mitmweb's access token, as printed in its start-up line."""
        found = re.search(r"[?&]token=([0-9A-Za-z_-]+)", self.log_text())
        return found[1] if found else None

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after `grace` seconds; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


SPEED_ENV = "TRANSLATE_SPEED_PATCHES"  # "1": every proxy the tests start runs with the speed patches (CI's second mode)


def speed_mode() -> list[str]:
    """The mitmdump arguments of the mode the tests run in: the default, or the speed patches on (SPEED_ENV)."""
    return ["--set", "translate_speed_patches=true"] if os.environ.get(SPEED_ENV) == "1" else []


def start_proxy(
    fake: FakeGemini,
    workdir: Path,
    *args: str,
    web: bool = False,
    port: int | None = None,
    config: dict[str, Any] | str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120.0,
) -> ProxyProcess:
    """Run mitm_run.sh (ARGS go to mitmdump/mitmweb) against the fake; return once GET /health answers 200.

    config: the opencode.json contents (a dict, or text for JSONC); default opencode_config(port).
    env: extra environment variables (for example PROXY_API_KEY).
    """
    port = port or free_port()
    web_port = free_port() if web else None
    config_path = workdir / f"opencode-{port}.json"
    config = opencode_config(port) if config is None else config
    config_path.write_text(config if isinstance(config, str) else json.dumps(config, indent=2))
    run_env = {k: v for k, v in os.environ.items() if k not in CONTRACT_ENV}
    run_env.update(
        PROXY_HOST="127.0.0.1",
        PROXY_PORT=str(port),
        GEMINI_API_BASE=fake.base_url,
        GEMINI_API_KEY=fake.key,
        OPENCODE_CONFIG=str(config_path),
    )
    if web_port:
        run_env.update(WEB_HOST="127.0.0.1", WEB_PORT=str(web_port))
    run_env.update(env or {})
    log_path = workdir / f"proxy-{port}.log"
    command = [str(RUN_SH), *(["web"] if web else []), *speed_mode(), *args]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=run_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proxy = ProxyProcess(process, port, log_path, config_path, web_port)
    try:
        _wait_until_ready(proxy, timeout)
    except BaseException:
        proxy.stop()
        raise
    return proxy


class Mitmweb:
    """mitmweb's HTTP API as its UI uses it: the token, and an XSRF cookie echoed in a header (tornado's check)."""

    XSRF = "test-xsrf"

    def __init__(self, proxy: ProxyProcess) -> None:
        token = proxy.web_token()
        assert token, proxy.log_text()[-3000:]
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{proxy.web_port}", timeout=30, trust_env=False)
        self.http.get("/", params={"token": token}).raise_for_status()
        self.http.cookies.set("_mitmproxy_xsrf", self.XSRF)

    def flows(self) -> list[dict]:
        return self.http.get("/flows").raise_for_status().json()

    def post(self, path: str, **kwargs) -> httpx.Response:
        return self.http.post(path, headers={"X-XSRFToken": self.XSRF}, **kwargs)

    def put(self, path: str, data: dict) -> httpx.Response:
        return self.http.put(path, json=data, headers={"X-XSRFToken": self.XSRF})

    def clear(self) -> None:
        """Empty the flow list (the start-up's GET /health polls), so a test sees only its own flows."""
        self.post("/clear").raise_for_status()


def _wait_until_ready(proxy: ProxyProcess, timeout: float) -> None:
    deadline, pause = time.monotonic() + timeout, 0.05
    while time.monotonic() < deadline:
        if not proxy.alive():
            raise RuntimeError(
                f"The proxy exited with code {proxy.process.returncode} before answering "
                f"GET /health. Log tail:\n{proxy.log_text()[-4000:]}"
            )
        if _health_ok(proxy.root_url) and (proxy.web_port is None or _listening(proxy.web_port)):
            return
        time.sleep(pause)
        pause = min(pause * 1.5, 1.0)  # litellm loads for seconds: each poll is a flow in mitmweb's list
    raise RuntimeError(
        f"The proxy did not answer GET /health with 200 within {timeout} s. Log tail:\n{proxy.log_text()[-4000:]}"
    )


def _health_ok(root_url: str) -> bool:
    """/health answers 200 and litellm is loaded (before, chat requests wait for it, which would skew timings)."""
    try:
        with DIRECT.open(root_url + "/health", timeout=2) as response:
            return response.status == 200 and json.loads(response.read()).get("litellm", "ready") == "ready"
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def start_capture(work: Path, args: list[str], timeout: float = 120) -> ProxyProcess:
    """`mitm_run.sh capture ARGS` on free ports (CAPTURE_PORT, WEB_PORT), returned once it has printed its start
    line and both ports listen; its log is work/capture.log."""
    port, web_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("CAPTURE_PORT", "WEB_PORT", "WEB_HOST")}
    env.update(CAPTURE_PORT=str(port), WEB_PORT=str(web_port))
    log_path = work / "capture.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(RUN_SH), "capture", *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    proxy = ProxyProcess(process, port, log_path, work / "unused", web_port)
    deadline = time.monotonic() + timeout
    while not ("capture mode: run opencode" in proxy.log_text() and _listening(port) and _listening(web_port)):
        if not proxy.alive() or time.monotonic() > deadline:
            proxy.stop()
            raise AssertionError(f"capture mode did not start:\n{proxy.log_text()[-3000:]}")
        time.sleep(0.1)
    return proxy


@pytest.fixture(scope="session")
def fake_gemini() -> Iterator[FakeGemini]:
    fake = FakeGemini().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def native() -> Iterator[FakeNativeGemini]:
    """A fake of Gemini's native API (tests/fake_gemini_native.py), one per test module."""
    fake = FakeNativeGemini().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(fake_gemini: FakeGemini) -> FakeGemini:
    """The session's fake Gemini, with its records and error counts cleared."""
    return fake_gemini.reset()


@pytest.fixture(scope="session")
def proxy(fake_gemini: FakeGemini, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    started = start_proxy(fake_gemini, tmp_path_factory.mktemp("proxy"))
    yield started
    started.stop()


@pytest.fixture
def proxy_factory(fake_gemini: FakeGemini, tmp_path: Path) -> Iterator[Callable[..., ProxyProcess]]:
    """start_proxy(fake_gemini, tmp_path, ...) for this test; every proxy it started is stopped afterwards."""
    started: list[ProxyProcess] = []

    def factory(*args: str, **kwargs: Any) -> ProxyProcess:
        started.append(start_proxy(fake_gemini, tmp_path, *args, **kwargs))
        return started[-1]

    yield factory
    for each in started:
        each.stop()


@pytest.fixture(scope="session")
def opencode_bin() -> Path:
    try:
        return opencode_cli.install()
    except opencode_cli.InstallError as e:
        pytest.fail(f"These tests need the real opencode CLI, and it could not be installed: {e}", pytrace=False)


@pytest.fixture
def openai_client(proxy: ProxyProcess, fake: FakeGemini) -> openai.OpenAI:
    assert proxy.alive(), f"The session proxy has exited. Log tail:\n{proxy.log_text()[-4000:]}"
    return openai.OpenAI(base_url=proxy.base_url, api_key="anything", max_retries=0, timeout=30)


def repairs_off(*names: str) -> list[str]:
    """mitmdump arguments that turn these Gemini repairs off (e.g. "schemas", "signatures")."""
    return [arg for name in names for arg in ("--set", f"translate_repair_{name}=false")]


def reloaded(proxy: ProxyProcess) -> bool:
    """Whether mitmproxy reloaded addon/proxy.py (it does when the file changes during a run): a test that relies
    on the proxy's start-up options can say so instead of failing obscurely."""
    return proxy.log_text().count("Loading script") > 1


def proxies_by_repairs(
    fake: FakeGemini, tmp_path_factory: pytest.TempPathFactory, *args: str
) -> Iterator[Callable[..., ProxyProcess]]:
    """For a module-scoped fixture: get(*names) is a proxy with those repairs off (none: all on), started once per
    set of names with these extra mitmdump args, restarted if it died or reloaded its script; all stopped after."""
    started: dict[tuple[str, ...], ProxyProcess] = {}

    def get(*off: str) -> ProxyProcess:
        key = tuple(sorted(off))
        if key in started and (reloaded(started[key]) or not started[key].alive()):
            started.pop(key).stop()
        if key not in started:
            started[key] = start_proxy(fake, tmp_path_factory.mktemp("repairs"), *args, *repairs_off(*key))
        return started[key]

    yield get
    for proxy in started.values():
        proxy.stop()
