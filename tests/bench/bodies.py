"""Request bodies for the benchmark: a small chat request and a ~1 MB opencode conversation.

The last user message carries the fake upstream's instructions (`bench chunks=N interval_ms=X`): it is the one
part of a request that every proxy forwards unchanged.
"""

from __future__ import annotations

import random

import orjson

MODEL = "local-model"
MB = 1024 * 1024

_TOOLS = {
    "bash": (
        "Executes a bash command in a persistent shell session with optional timeout.",
        {"command": "string", "timeout": "number", "description": "string"},
    ),
    "read": (
        "Reads a file from the local filesystem. Returns up to 2000 lines by default.",
        {"filePath": "string", "offset": "number", "limit": "number"},
    ),
    "write": (
        "Writes a file to the local filesystem, overwriting any existing file.",
        {"filePath": "string", "content": "string"},
    ),
    "edit": (
        "Performs exact string replacements in files.",
        {"filePath": "string", "oldString": "string", "newString": "string", "replaceAll": "boolean"},
    ),
    "glob": (
        "Fast file pattern matching tool that works with any codebase size.",
        {"pattern": "string", "path": "string"},
    ),
    "grep": (
        "Fast content search tool that works with any codebase size.",
        {"pattern": "string", "path": "string", "include": "string"},
    ),
    "list": ("Lists files and directories in a given path.", {"path": "string", "ignore": "array"}),
    "webfetch": ("Fetches content from a specified URL.", {"url": "string", "format": "string", "timeout": "number"}),
    "todowrite": ("Use this tool to create and manage a structured task list.", {"todos": "array"}),
    "task": (
        "Launch a new agent to handle complex, multi-step tasks autonomously.",
        {"description": "string", "prompt": "string", "subagent_type": "string"},
    ),
}


def _tool(name: str, description: str, params: dict[str, str]) -> dict:
    properties = {}
    for key, kind in params.items():
        prop: dict = {"type": kind, "description": f"The {key} argument of {name}."}
        if kind == "array":
            prop["items"] = {
                "type": "object",
                "properties": {"id": {"type": "string"}, "content": {"type": "string"}},
                "required": ["id"],
                "additionalProperties": False,
            }
        properties[key] = prop
    schema = {
        "type": "object",
        "properties": properties,
        "required": [next(iter(params))],
        "additionalProperties": False,
        "$schema": "http://json-schema.org/draft-07/schema#",
    }
    return {"type": "function", "function": {"name": name, "description": description, "parameters": schema}}


def tools() -> list[dict]:
    """opencode's tool list (names, descriptions and schemas shaped like the ones it sends)."""
    return [_tool(name, description, params) for name, (description, params) in _TOOLS.items()]


def instruction(chunks: int = 0, interval_ms: float = 0) -> str:
    return f"bench chunks={chunks} interval_ms={interval_ms}"


def small(stream: bool, chunks: int = 20, interval_ms: float = 10, model: str = MODEL) -> bytes:
    """A small chat request; streamed answers have `chunks` chunks `interval_ms` apart."""
    body: dict = {
        "model": model,
        "messages": [{"role": "user", "content": instruction(chunks, interval_ms)}],
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


def _source_file(rng: random.Random, lines: int) -> str:
    words = ["flow", "request", "response", "stream", "model", "config", "chunk", "event", "token", "value"]
    out = []
    for i in range(lines):
        a, b, c = rng.choice(words), rng.choice(words), rng.choice(words)
        out.append(f'{i + 1:5}\t    def {a}_{b}(self, {c}: dict) -> str:  # naïve {a} → {b} "quoted"\n')
    return "".join(out)


def _turn(rng: random.Random, n: int) -> list[dict]:
    call_id = f"call_{n:04}_{rng.getrandbits(48):012x}"
    path = f"/home/dev/project/src/module_{n}.py"
    arguments = orjson.dumps({"filePath": path, "offset": 0, "limit": 400}).decode()
    return [
        {"role": "user", "content": [{"type": "text", "text": f"Look at {path} and fix the failing test {n}."}]},
        {
            "role": "assistant",
            "content": f"Reading {path} first.",
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": "read", "arguments": arguments}}],
        },
        {"role": "tool", "tool_call_id": call_id, "content": _source_file(rng, rng.randint(60, 140))},
    ]


def opencode_conversation(size: int = MB, stream: bool = False, model: str = MODEL, question: str = "") -> bytes:
    """A long opencode conversation (system prompt, tools, read-file turns) of at least `size` bytes; `question`,
    when given, is a last user message before the instruction."""
    rng = random.Random(1234)
    system = "You are opencode, an interactive CLI tool that helps users with software engineering tasks.\n" * 120
    messages: list[dict] = [{"role": "system", "content": system}]
    body = {
        "model": model,
        "messages": messages,
        "tools": tools(),
        "tool_choice": "auto",
        "max_tokens": 32000,
        "stream": stream,
    }
    # Each turn is ~7 KB; add turns until the body is large enough, then close with the instruction.
    while len(orjson.dumps(body)) < size:
        for _ in range(16):
            messages.extend(_turn(rng, len(messages)))
    if question:
        messages.append({"role": "user", "content": question})
    messages.append({"role": "user", "content": instruction(3, 0)})
    return orjson.dumps(body)


FOLLOW_UPS = 16


def follow_up_turns(size: int = MB, count: int = FOLLOW_UPS) -> list[bytes]:
    """One long conversation asked `count` different last questions: requests as a session's turns send them,
    every earlier message again byte for byte and then new ones (sent in turn, each differs from the one before
    in its last messages, as a follow-up turn does)."""
    return [
        opencode_conversation(size, question=f"Follow-up {i}: what changed in module_{i}.py?") for i in range(count)
    ]
