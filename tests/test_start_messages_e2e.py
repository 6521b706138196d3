"""What `./mitm_run.sh` says when it cannot start: a port in use names the variable to set (not mitmproxy's
`--mode reverse:…@PORT`, which this wrapper sets itself), and a broken opencode.json is told with no "listening"
line before the exit."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CONTRACT_ENV, ROOT, RUN_SH, free_port

pytestmark = pytest.mark.e2e


def run(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in (*CONTRACT_ENV, "CAPTURE_PORT")}
    return subprocess.run(
        [str(RUN_SH), *args], cwd=ROOT, env=clean | env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        yield taken.getsockname()[1]


@pytest.mark.parametrize(
    "args, variable",
    [((), "PROXY_PORT"), (("web",), "PROXY_PORT"), (("web",), "WEB_PORT"), (("capture",), "CAPTURE_PORT")],
)
def test_a_port_in_use_names_the_variable_to_set(busy_port, args, variable):
    ports = {name: str(free_port()) for name in ("PROXY_PORT", "WEB_PORT", "CAPTURE_PORT")}
    done = run(*args, env={**ports, variable: str(busy_port)}, timeout=60)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert f"port {busy_port} on 127.0.0.1 is in use" in out and f"set {variable} to a free port" in out, out
    assert "--mode" not in out and "listening at" not in out


def test_a_port_the_arguments_name_is_left_to_them(busy_port, tmp_path: Path):
    """`--listen-port` in ARGS is the user's choice over PROXY_PORT: a taken PROXY_PORT does not stop the start."""
    config = tmp_path / "opencode.json"
    config.write_text('{"provider": {}}')
    port = free_port()
    with subprocess.Popen(
        [str(RUN_SH), "--listen-port", str(port)],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k not in CONTRACT_ENV}
        | {"PROXY_PORT": str(busy_port), "OPENCODE_CONFIG": str(config)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            assert process.stdout is not None
            for line in process.stdout:
                if "listening at" in line or "Error" in line:
                    break
            assert f"listening at 127.0.0.1:{port}" in line, line
        finally:
            process.terminate()
            process.wait(30)


def test_a_broken_config_stops_the_start_with_no_listening_line(tmp_path: Path):
    config = tmp_path / "opencode.json"
    config.write_text('{"provider": {\n  "local": {"options": }\n}')
    done = run(env={"PROXY_PORT": str(free_port()), "OPENCODE_CONFIG": str(config)})
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert f"Cannot start the translation proxy: Config file {config} is not valid JSON" in out, out
    assert "listening" not in out, out
