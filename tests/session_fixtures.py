"""Real-shaped opencode requests for the session tests.

tests/data/opencode_turns.json holds three requests the real opencode CLI (1.18.33) sent through the proxy to the
fake Gemini in one `opencode run` with two read steps: a system prompt of about 9,600 characters, 10 tools (bash, edit,
glob, grep, read, skill, task, todowrite, webfetch, write), then +assistant tool call +tool result per turn. The
headers kept are the ones opencode sends for sessions (and the user agent); the project path is neutral.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson

TURNS: list[dict[str, Any]] = json.loads((Path(__file__).parent / "data" / "opencode_turns.json").read_text())
SESSION_ID = TURNS[0]["headers"]["x-session-affinity"]


def body(turn: int) -> dict[str, Any]:
    """A deep copy of the request body of turn `turn` (1, 2 or 3)."""
    return copy.deepcopy(TURNS[turn - 1]["body"])


def encoded(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data)


def next_turn(data: dict[str, Any], result: str, call_id: str, tool: str = "read") -> dict[str, Any]:
    """`data` extended as opencode extends it: the answer's tool call, then its result."""
    out = copy.deepcopy(data)
    call = {"id": call_id, "type": "function", "function": {"name": tool, "arguments": '{"filePath":"/work/x"}'}}
    out["messages"] += [
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call_id, "content": result},
    ]
    return out
