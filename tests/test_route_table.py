"""route_table.py: the start-up table of routes, built without litellm."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from addon.config import route_table
from addon.config.opencode_config import parse_config
from addon.config.resolution import Settings

SEED = {
    "provider": {
        "KTDS Model": {
            "options": {
                "baseURL": "https://generativelanguage.googleapis.com/v1beta/openai/",
                "apiKey": "your-api-key-here",
            },
            "models": {"gemini-3-flash-preview": {}},
        },
        "local": {
            "name": "Local Provider",
            "options": {"baseURL": "http://localhost:8000/v1", "proxy": {"models": {"local-fast": "gemini-2.5-flash"}}},
            "models": {"local-model": {}, "gemini-3-flash-preview": {}},
        },
        "groq": {"options": {}, "models": {"llama": {}}},
    }
}


def table(settings: Settings, env: dict | None = None) -> list[tuple[int, str]]:
    return route_table.lines(parse_config(json.dumps(SEED), "/cfg/opencode.json", env or {}), settings)


def test_each_declared_model_with_its_host_and_key_source() -> None:
    (level, text), *warnings = table(Settings(None, "AIzaSyA1234567890abcdefghijklmnopqx9"), {"GROQ_API_KEY": "g" * 20})
    assert level == logging.INFO
    assert text.splitlines() == [
        "Routes from /cfg/opencode.json (5 models):",
        '  gemini-3-flash-preview -> gemini-3-flash-preview @ generativelanguage.googleapis.com, key provider["KTDS Model"].options.apiKey (your...re)',
        "  local-model -> gemini-2.5-flash @ generativelanguage.googleapis.com, key GEMINI_API_KEY (AIza...x9)",
        "  local/gemini-3-flash-preview -> gemini-2.5-flash @ generativelanguage.googleapis.com, key GEMINI_API_KEY (AIza...x9)",
        "  local-fast -> gemini-2.5-flash @ generativelanguage.googleapis.com, key GEMINI_API_KEY (AIza...x9)",
        "  llama -> llama @ litellm's base for 'groq', key GROQ_API_KEY (gggg...gg)",
    ]
    assert [w for _, w in warnings] == [
        'gemini-3-flash-preview: the key from provider["KTDS Model"].options.apiKey (your...re) looks like a '
        "placeholder, not a key; put the real key there."
    ]
    assert all(level == logging.WARNING for level, _ in warnings)


def test_missing_keys_are_warnings_naming_what_to_set() -> None:
    _, *warnings = table(Settings("http://127.0.0.1:9000/v1", None))
    assert (
        logging.WARNING,
        "local-model: no key for 127.0.0.1:9000; set GEMINI_API_KEY if the upstream needs one.",
    ) in warnings
    assert (
        logging.WARNING,
        "llama: no key for litellm's base for 'groq'; set provider.groq.options.apiKey or GROQ_API_KEY if the upstream needs one.",
    ) in warnings


def test_an_empty_file_says_where_names_go() -> None:
    lines = route_table.lines(parse_config("{}", "/cfg/opencode.json", {}), Settings(None, "k"))
    assert lines == [
        (
            logging.INFO,
            "Routes from /cfg/opencode.json (0 models):\n  (none declared: every name goes to the default upstream)",
        )
    ]


@pytest.mark.e2e  # a fresh Python process
def test_building_the_table_does_not_import_litellm() -> None:
    code = (
        "import json, sys; from addon.config import route_table, opencode_config, resolution;"
        f"cfg = opencode_config.parse_config({json.dumps(json.dumps(SEED))}, 'x', {{}});"
        "route_table.lines(cfg, resolution.Settings(None, 'k')); print('litellm' in sys.modules)"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root).stdout
    assert out.strip() == "False"


def test_native_and_vertex_routes_are_marked() -> None:
    """An alias for gemini/<model> or vertex_ai/<model> (or a google provider) speaks Gemini's native API: the
    table says so, where an OpenAI-compatible route to the same host reads as before."""
    config = {
        "provider": {
            "local": {
                "options": {
                    "baseURL": "http://localhost:8000/v1",
                    "proxy": {"models": {"fast": "gemini/gemini-2.5-flash", "vx": "vertex_ai/gemini-2.5-pro"}},
                },
                "models": {"fast": {}, "vx": {}, "plain": {}},
            }
        }
    }
    env = {"VERTEXAI_PROJECT": "p", "VERTEXAI_LOCATION": "us-central1"}
    settings = Settings("http://127.0.0.1:9102/v1beta/openai/", "AIzaSyA1234567890abcdefghijklmnopqx9")
    (_, text), *_ = route_table.lines(parse_config(json.dumps(config), "/c/opencode.json", env), settings)
    assert text.splitlines()[1:] == [
        "  fast -> gemini-2.5-flash @ generativelanguage.googleapis.com (Gemini's native API), key GEMINI_API_KEY (AIza...x9)",
        "  vx -> gemini-2.5-pro @ us-central1-aiplatform.googleapis.com (Vertex AI, native API), key none",
        "  plain -> gemini-2.5-flash @ 127.0.0.1:9102, key GEMINI_API_KEY (AIza...x9)",
    ]
