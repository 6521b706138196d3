"""Anthropic's Messages API (`POST /v1/messages`, what opencode's `anthropic` provider sends) read as OpenAI chat
(pure).

`system` becomes a system message; `tool_use` blocks tool calls, `tool_result` blocks tool messages, `thinking`
blocks reasoning; tools' `input_schema` their parameters. A streamed answer's content blocks are keyed by their
index; the usage of `message_start` (input) and `message_delta` (output) is reported together at the end.
"""

from __future__ import annotations

from typing import Any

from . import _shape

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "refusal": "content_filter",
}


def chat_request(body: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(body.get("messages"), list):
        raise ValueError("Not an Anthropic Messages request: it has no 'messages' list.")
    messages: list[dict[str, Any]] = []
    if body.get("system"):
        messages.append({"role": "system", "content": _shape.text_of(body["system"])})
    for message in body["messages"]:
        if isinstance(message, dict):
            messages += _messages(message)
    tools = [_tool(t) for t in body.get("tools") or () if isinstance(t, dict)]
    rest = {k: v for k, v in body.items() if k not in ("messages", "system", "tools")}
    return {"messages": messages, "tools": tools, **rest}


def _messages(message: dict[str, Any]) -> list[dict[str, Any]]:
    """One Anthropic message as chat messages: tool results each a tool message, the rest one message."""
    role, content = message.get("role", "user"), message.get("content")
    if not isinstance(content, list):
        return [{"role": role, "content": content}]
    results, parts, calls, thoughts = [], [], [], []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "tool_result":
            results.append({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": _result(block)})
        elif kind == "tool_use":
            calls.append(_shape.tool_call(str(block.get("id") or ""), str(block.get("name")), block.get("input")))
        elif kind == "thinking":
            thoughts.append(str(block.get("thinking") or ""))
        elif kind == "redacted_thinking":
            thoughts.append("[redacted thinking]")
        elif kind == "text":
            parts.append({"type": "text", "text": block.get("text") or ""})
        else:
            parts.append(block)
    out = results
    if parts or calls or thoughts:
        rest: dict[str, Any] = {"role": role, "content": parts or None}
        rest |= {"reasoning_content": "".join(thoughts)} if thoughts else {}
        out = [*results, rest | ({"tool_calls": calls} if calls else {})]
    return out


def _result(block: dict[str, Any]) -> Any:
    content = block.get("content")
    text = content if isinstance(content, str) else _shape.text_of(content)
    return f"(error) {text}" if block.get("is_error") else text


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    if "input_schema" in tool:
        return _shape.function_tool(tool.get("name"), tool.get("description"), tool.get("input_schema"))
    return {**tool, "name": tool.get("name") or tool.get("type")}  # server tools (web search, ...)


def completion(body: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(body.get("content"), list):
        raise ValueError("Not an Anthropic message: it has no 'content' list.")
    [message] = _messages({"role": "assistant", "content": body["content"]}) or [{"content": None}]
    message.pop("role", None)
    if isinstance(message.get("content"), list):
        message["content"] = _shape.text_of(message["content"])
    finish = STOP_REASONS.get(str(body.get("stop_reason")), "stop")
    result = _shape.completion(answer_model(body), message, finish, usage(body.get("usage")))
    return result | ({"error": body["error"]} if isinstance(body.get("error"), dict) else {})


def answer_model(body: dict[str, Any]) -> str | None:
    return body.get("model") if isinstance(body.get("model"), str) else None


def usage(counted: Any, output: int | None = None) -> dict[str, Any] | None:
    if not isinstance(counted, dict):
        return None
    cached = _shape.number(counted.get("cache_read_input_tokens"))
    prompt = (
        _shape.number(counted.get("input_tokens")) + cached + _shape.number(counted.get("cache_creation_input_tokens"))
    )
    return _shape.usage(prompt, output if output is not None else _shape.number(counted.get("output_tokens")), cached)


class Stream:
    """Messages API stream events in, chat.completion.chunk dicts out."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.counted: dict[str, Any] = {}

    def chunks(self, data: bytes) -> list[dict[str, Any]]:
        event = _shape.loads(data)
        if event is None:
            return []
        kind, index = event.get("type"), event.get("index")
        if kind == "message_start" and isinstance(event.get("message"), dict):
            self.model = answer_model(event["message"])
            self.counted = event["message"].get("usage") or {}
            return [_shape.chunk(self.model, {"role": "assistant"})]
        if kind == "content_block_start" and isinstance(event.get("content_block"), dict):
            return self._start(index, event["content_block"])
        if kind == "content_block_delta" and isinstance(event.get("delta"), dict):
            return self._delta(index, event["delta"])
        if kind == "message_delta":
            output = _shape.number((event.get("usage") or {}).get("output_tokens"))
            finish = STOP_REASONS.get(str((event.get("delta") or {}).get("stop_reason")), "stop")
            return [_shape.chunk(self.model, {}, finish, usage=usage(self.counted, output))]
        if kind == "error" and isinstance(event.get("error"), dict):
            return [{"error": {"message": event["error"].get("message"), "code": event["error"].get("type")}}]
        return []

    def _start(self, index: Any, block: dict[str, Any]) -> list[dict[str, Any]]:
        if block.get("type") == "tool_use":
            given = block.get("input")
            arguments = _shape.tool_call("", "", given)["function"]["arguments"] if given else ""
            fragment = {"index": index, "id": str(block.get("id") or ""), "type": "function"}
            fragment["function"] = {"name": str(block.get("name") or ""), "arguments": arguments}
            return [_shape.chunk(self.model, {"tool_calls": [fragment]})]
        if block.get("type") == "text" and block.get("text"):
            return [_shape.chunk(self.model, {"content": block["text"]})]
        if block.get("type") == "thinking" and block.get("thinking"):
            return [_shape.chunk(self.model, {"reasoning_content": block["thinking"]})]
        return []

    def _delta(self, index: Any, delta: dict[str, Any]) -> list[dict[str, Any]]:
        kind = delta.get("type")
        if kind == "text_delta":
            return [_shape.chunk(self.model, {"content": str(delta.get("text") or "")})]
        if kind == "thinking_delta":
            return [_shape.chunk(self.model, {"reasoning_content": str(delta.get("thinking") or "")})]
        if kind == "input_json_delta" and isinstance(index, int):
            fragment = {"index": index, "function": {"arguments": str(delta.get("partial_json") or "")}}
            return [_shape.chunk(self.model, {"tool_calls": [fragment]})]
        return []
