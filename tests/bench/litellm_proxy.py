"""LiteLLM Proxy, the alternative most users would pick, in its own virtual environment under .bench/.

The environment is made once (uv, the machine's own Python >= 3.12, no interpreter downloads) and reused while
its stamp names the pinned version. Nothing is added to the project's pyproject. The proxy gets the same alias
(`local-model` -> `gemini-2.5-flash`) and the same fake upstream as this proxy.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from . import servers

VERSION = "1.106.12"
INSTALL_TIMEOUT = 900
# LiteLLM refuses to start without a master key (as a real deployment has one); clients send it as a bearer token.
MASTER_KEY = "sk-bench-" + secrets.token_hex(16)


def venv_dir() -> Path:
    return servers.bench_dir() / "litellm-venv"


def _python() -> str | None:
    """An interpreter >= 3.12: the one under this project's .venv first, then the ones mitm_run.sh looks for."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [str(Path(sys.base_prefix) / "bin" / f"python{version}")]
    candidates += [shutil.which(name) or "" for name in ("python3.12", "python3.13", "python3")]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(str(p) for p in pyenv.glob("3.1[2-9]*/bin/python3"))
    for candidate in candidates:
        if candidate and Path(candidate).exists() and _at_least_312(candidate):
            return candidate
    return None


def _at_least_312(python: str) -> bool:
    argv = [python, "-c", "import sys; sys.exit(sys.version_info < (3, 12))"]
    return subprocess.run(argv, check=False, capture_output=True, timeout=30).returncode == 0


def _uv() -> str | None:
    return shutil.which("uv") or next((str(p) for p in [servers.ROOT / ".tools" / "bin" / "uv"] if p.exists()), None)


def ensure_installed(log=print) -> tuple[Path | None, str | None]:
    """(path of the `litellm` command, None), or (None, why it could not be installed)."""
    venv = venv_dir()
    litellm = venv / "bin" / "litellm"
    stamp = venv / ".bench-version"
    if litellm.exists() and stamp.exists() and stamp.read_text().strip() == VERSION:
        return litellm, None
    python, uv = _python(), _uv()
    if python is None or uv is None:
        return None, f"cannot create the LiteLLM environment: {'Python >= 3.12' if python is None else 'uv'} not found"
    log(f"installing litellm[proxy]=={VERSION} into {venv} (once; up to {INSTALL_TIMEOUT // 60} minutes)")
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": str(venv)}
    env.pop("UV_PROJECT_ENVIRONMENT", None)
    steps = [
        [uv, "venv", "--quiet", "--clear", "--python", python, str(venv)],
        [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), f"litellm[proxy]=={VERSION}"],
    ]
    for step in steps:
        try:
            done = subprocess.run(step, env=env, check=False, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        except subprocess.TimeoutExpired:
            return None, f"installing LiteLLM timed out after {INSTALL_TIMEOUT} s: {' '.join(step)}"
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
            return None, f"installing LiteLLM failed ({' '.join(step[:3])}):\n{tail}"
    if not litellm.exists():
        return None, f"installing LiteLLM left no {litellm}"
    stamp.write_text(VERSION + "\n")
    return litellm, None


def write_config(upstream_port: int) -> Path:
    config = servers.run_dir() / "litellm.yaml"
    config.write_text(f"""model_list:
  - model_name: local-model
    litellm_params:
      model: openai/gemini-2.5-flash
      api_base: http://127.0.0.1:{upstream_port}/v1beta/openai
      api_key: bench-key
    model_info:  # priced at 0, or LiteLLM logs a warning on every request
      input_cost_per_token: 0
      output_cost_per_token: 0
general_settings:
  master_key: {MASTER_KEY}
""")
    return config


def start(litellm: Path, port: int, upstream_port: int) -> servers.Server:
    argv = [str(litellm), "--config", str(write_config(upstream_port)), "--host", "127.0.0.1", "--port", str(port)]
    env = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "VIRTUAL_ENV": str(venv_dir()),
        "PATH": f"{venv_dir() / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return servers.start("litellm_proxy", port, argv, env)
