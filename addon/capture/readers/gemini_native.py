"""Gemini's native API (`models/M:generateContent` and `:streamGenerateContent?alt=sse`, what opencode's `google`
provider sends) read as OpenAI chat (pure). Answers go through the native path's own translator
(gemini/native_stream.Translator), so both paths read Gemini alike; requests are read here.

Gemini's calls carry no ids (newer ones may): a call is named by what it is (`call_` and a hash of its name and
arguments, _shape.content_id), so the same call has the same id in the answer that made it and in each later
request, and a functionResponse answers the oldest unanswered call of its name. A call's thought signature is left
out of the id the view shows (it would be hundreds of characters).
"""

from __future__ import annotations

from typing import Any

import orjson

from ...gemini.native_stream import NativeAnswerError, Translator
from ...gemini.thought_signatures import SEPARATOR
from . import _shape


def chat_request(body: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(body.get("contents"), list):
        raise ValueError("Not a Gemini generateContent request: it has no 'contents' list.")
    messages: list[dict[str, Any]] = []
    system = body.get("systemInstruction") or body.get("system_instruction")
    if isinstance(system, dict):
        messages.append({"role": "system", "content": _shape.text_of(system.get("parts"))})
    calls = _Calls()
    for content in body["contents"]:
        if isinstance(content, dict):
            messages += _messages(content, calls)
    tools = [tool for group in body.get("tools") or () if isinstance(group, dict) for tool in _tools(group)]
    rest = {k: v for k, v in body.items() if k not in ("contents", "systemInstruction", "system_instruction", "tools")}
    return {"messages": messages, "tools": tools, **rest}


class _Calls:
    """Ids for the conversation's calls, and which are still waiting for their response."""

    def __init__(self) -> None:
        self.open: list[tuple[str, str]] = []  # (name, id)

    def call(self, call: dict[str, Any]) -> str:
        given = call.get("id")
        call_id = (
            given if isinstance(given, str) and given else _shape.content_id(str(call.get("name")), call.get("args"))
        )
        self.open.append((str(call.get("name")), call_id))
        return call_id

    def answer(self, result: dict[str, Any]) -> str:
        if isinstance(result.get("id"), str) and result["id"]:
            return result["id"]
        for i, (name, call_id) in enumerate(self.open):
            if name == result.get("name"):
                del self.open[i]
                return call_id
        return f"(no call named {result.get('name')})"


def _messages(content: dict[str, Any], calls: _Calls) -> list[dict[str, Any]]:
    role = "assistant" if content.get("role") == "model" else str(content.get("role") or "user")
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    made: list[dict[str, Any]] = []
    thoughts: list[dict[str, Any]] = []
    for part in content.get("parts") or ():
        if not isinstance(part, dict):
            continue
        call = part.get("functionCall") or part.get("function_call")
        result = part.get("functionResponse") or part.get("function_response")
        if isinstance(call, dict):
            made.append(_shape.tool_call(calls.call(call), str(call.get("name")), call.get("args")))
        elif isinstance(result, dict):
            text = orjson.dumps(result.get("response")).decode()
            results.append({"role": "tool", "tool_call_id": calls.answer(result), "content": text})
        elif isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else parts).append({"type": "text", "text": part["text"]})
        else:
            parts.append({"type": next(iter(part), "part")})  # inlineData, fileData, ...: shown by kind
    out = results
    if parts or made or thoughts:
        message: dict[str, Any] = {"role": role, "content": parts or None}
        message |= {"reasoning_content": _shape.text_of(thoughts)} if thoughts else {}
        out = [*results, message | ({"tool_calls": made} if made else {})]
    return out


def _tools(group: dict[str, Any]) -> list[dict[str, Any]]:
    declarations = group.get("functionDeclarations") or group.get("function_declarations")
    if not isinstance(declarations, list):
        return [{"name": next(iter(group), "tool"), **group}]  # googleSearch, codeExecution, ...
    return [
        _shape.function_tool(
            d.get("name"), d.get("description"), _schema(d.get("parametersJsonSchema") or d.get("parameters"))
        )
        for d in declarations
        if isinstance(d, dict)
    ]


def _schema(schema: Any) -> Any:
    """Gemini's OpenAPI-style schema with its upper-case type names (STRING, OBJECT) as JSON Schema's."""
    if isinstance(schema, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else _schema(v)) for k, v in schema.items()}
    return [_schema(v) for v in schema] if isinstance(schema, list) else schema


def completion(body: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(body.get("candidates"), list) and "promptFeedback" not in body:
        raise ValueError("Not a Gemini answer: it has no 'candidates' list.")
    try:
        result = _translator().completion(body)
    except NativeAnswerError as e:
        return _shape.completion(answer_model(body), {"content": None}, "stop", None) | {"error": _error(e)}
    _plain_ids(result["choices"][0]["message"].get("tool_calls"))
    return result | {"model": answer_model(body)}


SYNTHETIC = "\x00call"  # the translator's prefix for calls Gemini gave no id: _plain_ids names them by content


def _translator() -> Translator:
    """The native path's translator; the ids it makes up are replaced with content ids (_plain_ids)."""
    translator = Translator("")
    translator.call_prefix = SYNTHETIC
    return translator


def answer_model(body: dict[str, Any]) -> str | None:
    return body.get("modelVersion") if isinstance(body.get("modelVersion"), str) else None


def _error(error: NativeAnswerError) -> dict[str, Any]:
    return {"message": str(error), "code": error.code}


def _plain_ids(calls: Any) -> None:
    """Each call's id without its thought signature; a made-up one as the request that repeats the call names it."""
    for call in calls or ():
        if isinstance(call, dict) and isinstance(call.get("id"), str):
            call["id"] = call["id"].split(SEPARATOR)[0]
            if call["id"].startswith(SYNTHETIC):
                function = call.get("function") or {}
                call["id"] = _shape.content_id(str(function.get("name")), function.get("arguments"))


class Stream:
    """streamGenerateContent events in, chat.completion.chunk dicts out (one each)."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.translator = _translator()

    def chunks(self, data: bytes) -> list[dict[str, Any]]:
        event = _shape.loads(data)
        if event is None:
            return []
        if isinstance(event.get("error"), dict):
            return [{"error": {"message": event["error"].get("message"), "code": event["error"].get("status")}}]
        self.model = answer_model(event) or self.model
        try:
            chunk = self.translator.chunk(event)
        except NativeAnswerError as e:
            return [_shape.chunk(self.model, {}, "stop") | {"error": _error(e)}]
        chunk["model"] = self.model
        for choice in chunk["choices"]:
            _plain_ids(choice["delta"].get("tool_calls"))
        return [chunk]
