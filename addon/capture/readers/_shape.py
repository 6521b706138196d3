"""Small builders of OpenAI chat shapes the readers share (pure)."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson


def chunk(model: str | None, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    """A chat.completion.chunk with one choice."""
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"object": "chat.completion.chunk", "model": model, "choices": [choice], **extra}


def completion(model: str | None, message: dict[str, Any], finish: str | None, usage: dict | None) -> dict[str, Any]:
    body: dict[str, Any] = {"object": "chat.completion", "model": model}
    body["choices"] = [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}]
    return body | ({"usage": usage} if usage else {})


def tool_call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    if not isinstance(arguments, str):
        arguments = orjson.dumps(arguments if arguments is not None else {}).decode()
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def content_id(name: str, arguments: Any) -> str:
    """A tool call's id made from what it is (name and arguments, key order ignored), for formats whose calls have
    none: the call gets the same id in the answer that made it and in every later request that repeats it."""
    if isinstance(arguments, str):
        try:
            arguments = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            pass
    text = orjson.dumps([name, arguments if arguments is not None else {}], option=orjson.OPT_SORT_KEYS)
    return "call_" + hashlib.sha256(text).hexdigest()[:12]


def function_tool(name: Any, description: Any, parameters: Any) -> dict[str, Any]:
    function = {"name": name, "description": description or "", "parameters": parameters}
    return {"type": "function", "function": function}


def usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def loads(data: bytes) -> dict[str, Any] | None:
    """One event's JSON object, or None (not JSON, not an object)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def text_of(parts: Any) -> str:
    """The text of a string or of a list of parts with `text` (any part type that carries text)."""
    if isinstance(parts, str):
        return parts
    if isinstance(parts, list):
        return "".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""
