"""Message content as the GenAI semantic conventions carry it on a span (pure; only on request: the standard
`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`).

Three JSON attributes, in the conventions' current form:
  gen_ai.system_instructions   [{"type": "text", "content": ...}]
  gen_ai.input.messages        [{"role", "parts": [text | tool_call | tool_call_response | ...]}]
  gen_ai.output.messages       [{"role": "assistant", "parts": [...], "finish_reason"}]
The input is read from an OpenAI chat body (what the proxy sends upstream on the OpenAI-compatible path, and
what a chat client sent); the output from the exchange's folded answer (formats/answer.py), whatever the format.
"""

from __future__ import annotations

from typing import Any

import orjson

Part = dict[str, Any]


def _arguments(text: Any) -> Any:
    """Tool-call arguments as JSON when they parse, else the text as it came."""
    if not isinstance(text, str):
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def content_parts(content: Any) -> list[Part]:
    """A message's `content` (a string, or a list of typed parts) as conventions parts; media by type only."""
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    parts: list[Part] = []
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        kind = str(part.get("type") or "")
        if kind in ("text", "input_text", "output_text") and isinstance(part.get("text"), str):
            parts.append({"type": "text", "content": part["text"]})
        elif kind:
            parts.append({"type": kind})  # an image, file or audio: named, its bytes left out
    return parts


def input_message(message: dict) -> dict | None:
    role = str(message.get("role") or "user")
    if role == "tool":
        response = message.get("content")
        if isinstance(response, list):
            response = "".join(p["content"] for p in content_parts(response) if "content" in p)
        return {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": message.get("tool_call_id"), "response": response}],
        }
    parts = content_parts(message.get("content"))
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            parts.append(
                {
                    "type": "tool_call",
                    "id": call.get("id"),
                    "name": function.get("name"),
                    "arguments": _arguments(function.get("arguments")),
                }
            )
    return {"role": role, "parts": parts}


def input_attributes(body: Any) -> dict[str, str]:
    """`gen_ai.system_instructions` and `gen_ai.input.messages` of an OpenAI chat body ({} for another shape)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return {}
    system: list[Part] = []
    chat: list[dict] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        if message.get("role") in ("system", "developer"):
            system.extend(content_parts(message.get("content")))
        elif (converted := input_message(message)) is not None:
            chat.append(converted)
    out = {"gen_ai.input.messages": orjson.dumps(chat).decode()}
    if system:
        out["gen_ai.system_instructions"] = orjson.dumps(system).decode()
    return out


def output_attributes(answer: Any) -> dict[str, str]:
    """`gen_ai.output.messages` of the exchange's answer (Exchange.answer); {} when there is none."""
    if not isinstance(answer, dict):
        return {}
    parts: list[Part] = []
    if answer.get("reasoning"):
        parts.append({"type": "reasoning", "content": answer["reasoning"]})
    if answer.get("content"):
        parts.append({"type": "text", "content": answer["content"]})
    for call in answer.get("tool_calls") or ():
        if isinstance(call, dict):
            parts.append(
                {
                    "type": "tool_call",
                    "id": call.get("id"),
                    "name": call.get("name"),
                    "arguments": _arguments(call.get("arguments")),
                }
            )
    finish = {"tool_calls": "tool_call", "function_call": "tool_call"}.get(
        str(answer.get("finish_reason")), str(answer.get("finish_reason") or "")
    )
    message = {"role": "assistant", "parts": parts, "finish_reason": finish}
    return {"gen_ai.output.messages": orjson.dumps([message]).decode()}
