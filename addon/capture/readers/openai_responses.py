"""OpenAI's Responses API (`POST /v1/responses`, what opencode's `openai` provider sends) read as OpenAI chat (pure).

Input items become messages: text items by role, `function_call` items tool calls of an assistant message,
`function_call_output` items tool messages, `reasoning` summaries the next assistant message's reasoning. Function
tools become chat tools. A response's output items fold the same way; its stream's events (output items, argument
and text deltas, the final `response.completed`) become chunks, keyed by output_index.
"""

from __future__ import annotations

from typing import Any

import orjson

from . import _shape

REASONING_DELTAS = ("response.reasoning_summary_text.delta", "response.reasoning_text.delta")
TEXT_DELTAS = ("response.output_text.delta", "response.refusal.delta")
ENDS = ("response.completed", "response.incomplete", "response.failed")


def chat_request(body: dict[str, Any]) -> dict[str, Any]:
    if "input" not in body:
        raise ValueError("Not a Responses API request: it has no 'input'.")
    messages: list[dict[str, Any]] = []
    if isinstance(body.get("instructions"), str):
        messages.append({"role": "system", "content": body["instructions"]})
    items = body["input"] if isinstance(body["input"], list) else [{"role": "user", "content": body["input"]}]
    for item in items:
        if isinstance(item, dict):
            _add_item(messages, item)
    tools = [_tool(t) for t in body.get("tools") or () if isinstance(t, dict)]
    rest = {k: v for k, v in body.items() if k not in ("input", "instructions", "tools")}
    return {"messages": messages, "tools": tools, **rest}


def _add_item(messages: list[dict[str, Any]], item: dict[str, Any]) -> None:
    kind = item.get("type", "message")
    if kind == "message" or "role" in item and kind not in ("function_call", "function_call_output", "reasoning"):
        content = item.get("content")
        messages.append({"role": item.get("role", "user"), "content": _parts(content)})
    elif kind == "function_call":
        call = _shape.tool_call(
            str(item.get("call_id") or item.get("id") or ""), str(item.get("name")), item.get("arguments")
        )
        _assistant(messages).setdefault("tool_calls", []).append(call)
    elif kind == "function_call_output":
        output = item.get("output")
        messages.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": _parts(output)})
    elif kind == "reasoning":
        messages.append({"role": "assistant", "content": None, "reasoning_content": _reasoning(item)})
    else:  # item_reference, web search calls and the like: shown as they are
        messages.append({"role": f"({kind})", "content": orjson.dumps(item).decode()})


def _assistant(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The assistant message tool calls attach to: the last one when it ends the list, else a new one."""
    if messages and messages[-1].get("role") == "assistant":
        return messages[-1]
    messages.append({"role": "assistant", "content": None})
    return messages[-1]


def _parts(content: Any) -> Any:
    if not isinstance(content, list):
        return content
    return [
        {"type": "text", "text": p["text"]} if isinstance(p, dict) and isinstance(p.get("text"), str) else p
        for p in content
    ]


def _reasoning(item: dict[str, Any]) -> str:
    return _shape.text_of(item.get("summary")) or _shape.text_of(item.get("content"))


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") == "function":
        return _shape.function_tool(tool.get("name"), tool.get("description"), tool.get("parameters"))
    return {**tool, "name": tool.get("name") or tool.get("type")}  # built-in tools (web_search, ...) by type


def completion(body: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(body.get("output"), list):
        raise ValueError("Not a Responses API answer: it has no 'output' list.")
    message: dict[str, Any] = {"content": None}
    calls, texts, thoughts = [], [], []
    for item in body["output"]:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            texts.append(_shape.text_of(item.get("content")))
        elif item.get("type") == "function_call":
            calls.append(_shape.tool_call(str(item.get("call_id") or ""), str(item.get("name")), item.get("arguments")))
        elif item.get("type") == "reasoning":
            thoughts.append(_reasoning(item))
    if texts:
        message["content"] = "".join(texts)
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    if calls:
        message["tool_calls"] = calls
    result = _shape.completion(answer_model(body), message, _finish(body, bool(calls)), usage(body.get("usage")))
    if isinstance(body.get("error"), dict):
        result["error"] = body["error"]
    return result


def answer_model(body: dict[str, Any]) -> str | None:
    return body.get("model") if isinstance(body.get("model"), str) else None


def usage(counted: Any) -> dict[str, Any] | None:
    if not isinstance(counted, dict):
        return None
    cached = _shape.number((counted.get("input_tokens_details") or {}).get("cached_tokens"))
    reasoning = _shape.number((counted.get("output_tokens_details") or {}).get("reasoning_tokens"))
    return _shape.usage(
        _shape.number(counted.get("input_tokens")), _shape.number(counted.get("output_tokens")), cached, reasoning
    )


def _finish(response: dict[str, Any], made_calls: bool) -> str:
    if response.get("status") == "incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason")
        return "length" if reason == "max_output_tokens" else "content_filter"
    return "tool_calls" if made_calls else "stop"


class Stream:
    """Responses API stream events in, chat.completion.chunk dicts out."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.calls_with_arguments: set[int] = set()
        self.made_calls = False

    def chunks(self, data: bytes) -> list[dict[str, Any]]:
        event = _shape.loads(data)
        if event is None:
            return []
        kind, index = event.get("type"), event.get("output_index")
        if isinstance(event.get("response"), dict):
            self.model = answer_model(event["response"]) or self.model
        if kind == "response.created":
            return [_shape.chunk(self.model, {"role": "assistant"})]
        if kind in TEXT_DELTAS and isinstance(event.get("delta"), str):
            return [_shape.chunk(self.model, {"content": event["delta"]})]
        if kind in REASONING_DELTAS and isinstance(event.get("delta"), str):
            return [_shape.chunk(self.model, {"reasoning_content": event["delta"]})]
        if kind == "response.function_call_arguments.delta" and isinstance(index, int):
            self.calls_with_arguments.add(index)
            return [self._call(index, {"arguments": str(event.get("delta") or "")})]
        item = given if isinstance(given := event.get("item"), dict) else {}
        if item.get("type") == "function_call" and isinstance(index, int):
            return self._call_item(kind, index, item)
        if kind in ENDS:
            return self._end(event)
        if kind == "error":
            return [{"error": {"message": event.get("message"), "code": event.get("code")}}]
        return []

    def _call_item(self, kind: Any, index: int, item: dict[str, Any]) -> list[dict[str, Any]]:
        arguments = item.get("arguments") if isinstance(item.get("arguments"), str) else ""
        if kind == "response.output_item.added":
            self.made_calls = True
            if arguments:
                self.calls_with_arguments.add(index)
            fields = {"name": str(item.get("name") or ""), "arguments": arguments}
            return [self._call(index, fields, str(item.get("call_id") or item.get("id") or ""))]
        if kind == "response.output_item.done" and arguments and index not in self.calls_with_arguments:
            self.calls_with_arguments.add(index)
            return [self._call(index, {"arguments": arguments})]  # a server that sent no argument deltas
        return []

    def _call(self, index: int, function: dict[str, Any], call_id: str = "") -> dict[str, Any]:
        fragment = {"index": index, "type": "function", "function": function} | ({"id": call_id} if call_id else {})
        return _shape.chunk(self.model, {"tool_calls": [fragment]})

    def _end(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        response = given if isinstance(given := event.get("response"), dict) else {}
        counted = usage(response.get("usage"))
        end = _shape.chunk(
            self.model, {}, _finish(response, self.made_calls), **({"usage": counted} if counted else {})
        )
        if isinstance(error := response.get("error"), dict):
            end["error"] = error
        return [end]
