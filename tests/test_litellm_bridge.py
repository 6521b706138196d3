"""addon/formats/litellm_bridge.py against the installed litellm: each piece the proxy reads from litellm.

A litellm upgrade that renames, moves or changes one of them fails here, not in a request.
"""

import ast
import logging
import os
import subprocess
import sys
from concurrent.futures import Future
from pathlib import Path

import pytest

from addon.formats import litellm_bridge

ADDON = Path(__file__).resolve().parent.parent / "addon"


@pytest.fixture(scope="module")
def litellm():
    return litellm_bridge.warm().result(timeout=120)


def test_only_the_bridge_imports_litellm():
    importers = []
    for path in ADDON.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n == "litellm" or n.startswith("litellm.") for n in names):
                importers.append(path.relative_to(ADDON).as_posix())
    assert set(importers) == {"formats/litellm_bridge.py"}


WARM_IN_A_FRESH_PROCESS = """
import threading, time
t0 = time.monotonic()
from addon.formats import litellm_bridge
future = litellm_bridge.warm()
returned, was_ready = time.monotonic() - t0, litellm_bridge.ready()
module = future.result(timeout=120)
print(returned, was_ready, time.monotonic() - t0, litellm_bridge.warm() is future, litellm_bridge.ready(),
      [t.name for t in threading.enumerate()].count("litellm import"), module.__name__)
"""


@pytest.mark.e2e  # a fresh Python process
def test_warm_returns_at_once_and_imports_in_a_thread():
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_LOCAL_MODEL_COST_MAP"}
    done = subprocess.run(
        [sys.executable, "-c", WARM_IN_A_FRESH_PROCESS],
        cwd=ADDON.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    returned, was_ready, imported, same, ready, threads, name = done.stdout.split()
    assert float(imported) > 1.0  # litellm's import takes seconds: what warm() must not make its caller wait for
    assert float(returned) < float(imported) / 5
    assert (was_ready, same, ready, threads, name) == ("False", "True", "True", "0", "litellm")
    assert "model cost map fetch" not in done.stderr  # LITELLM_LOCAL_MODEL_COST_MAP was set before the import


@pytest.mark.e2e  # a fresh Python process
def test_litellm_says_nothing_while_it_imports_under_a_debug_root_logger():
    """mitmproxy sets the root logger to DEBUG; litellm's own handler printed its import-time chatter then."""
    script = "import logging; logging.getLogger().setLevel(logging.DEBUG)\n" + WARM_IN_A_FRESH_PROCESS
    done = subprocess.run([sys.executable, "-c", script], cwd=ADDON.parent, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "LiteLLM:DEBUG" not in done.stderr, done.stderr[-3000:]


def test_state_is_what_health_reports(litellm, monkeypatch):
    assert litellm_bridge.state() == "ready"
    pending = Future()
    monkeypatch.setattr(litellm_bridge, "_future", pending)
    assert litellm_bridge.state() == "loading" and not litellm_bridge.ready()
    pending.set_exception(ImportError("broken"))
    assert litellm_bridge.state() == "failed" and not litellm_bridge.ready()


def test_the_import_is_prepared(litellm):
    assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"  # else it downloads its price table
    assert litellm.suppress_debug_info is True
    for name in litellm_bridge.QUIET_LOGGERS:
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING, name


def test_model_info_reads_the_price_and_context_table(litellm):
    info = litellm_bridge.model_info(None, "no-such-model", "gemini/gemini-2.5-flash")
    assert info is litellm.model_cost["gemini/gemini-2.5-flash"]
    assert info["input_cost_per_token"] > 0 and info["output_cost_per_token"] > 0 and info["max_input_tokens"] > 0
    assert litellm_bridge.model_info("no-such-model") == {}


def test_openai_compatible_providers(litellm):
    providers = litellm_bridge.openai_compatible_providers()
    assert {"groq", "deepseek", "together_ai"} <= providers
    assert "anthropic" not in providers


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("groq/llama-3.1-8b-instant", ("llama-3.1-8b-instant", "groq", "https://api.groq.com/openai/v1")),
        ("deepseek/deepseek-chat", ("deepseek-chat", "deepseek", "https://api.deepseek.com/beta")),
        ("openrouter/meta-llama/llama-3.1-8b-instruct", ("meta-llama/llama-3.1-8b-instruct", "openrouter", None)),
    ],
)
def test_provider_route(litellm, model, expected):
    assert litellm_bridge.provider_route(model) == expected


def test_provider_route_of_a_name_litellm_cannot_place(litellm):
    assert litellm_bridge.provider_route("no-such-provider/some-model") is None


def test_gemini_supported_params(litellm):
    flash = litellm_bridge.gemini_supported_params("gemini-2.5-flash")
    assert {"temperature", "tools", "reasoning_effort", "thinking", "web_search_options"} <= flash
    assert "reasoning_effort" not in litellm_bridge.gemini_supported_params("gemini-2.0-flash")
    probe = litellm_bridge.gemini_supported_params(litellm_bridge.PROBE_GEMINI_MODEL)
    assert "reasoning_effort" in probe  # an unknown Gemini model narrows nothing


def test_openai_chat_params(litellm):
    assert {"logit_bias", "prediction", "tools", "service_tier", "store"} <= litellm_bridge.openai_chat_params()


def test_gemini_schema_fields(litellm):
    fields = litellm_bridge.gemini_schema_fields()
    assert {"type", "properties", "required", "anyOf", "propertyOrdering", "nullable", "default"} <= fields
    assert not {"$schema", "additionalProperties", "const", "$ref"} & fields


EXIT_WHILE_WARMING = """
import sys, time
from addon.formats import litellm_bridge
future = litellm_bridge.warm()
while (m := sys.modules.get("litellm")) is None or getattr(m.__spec__, "_initializing", True):
    time.sleep(0.001)
print("exiting while warming:", not future.done())
"""


@pytest.mark.e2e  # a fresh Python process
def test_the_process_exits_while_the_import_thread_still_works():
    """A SIGTERM in the first seconds: the interpreter exits with the import thread mid-way. litellm's HTTP client
    finalizers then waited for an import lock that stopped thread held, and the process never exited."""
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", EXIT_WHILE_WARMING], cwd=ADDON.parent, env=env, capture_output=True, timeout=90
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the interpreter did not exit while litellm's import thread was still at work")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == b"exiting while warming: True"
