"""Local stand-ins for three providers' own APIs, for the capture-mode tests: OpenAI's Responses API
(`POST /v1/responses`, and Chat Completions), Anthropic's Messages API (`POST /v1/messages`) and Gemini's native API
(`POST /v1beta/models/M:streamGenerateContent?alt=sse` and `:generateContent`), all on one port.

Each answers one script, in its own format, streamed when asked: a conversation without a tool result gets a call
of opencode's `read` tool for the first `/....txt` path in the last user text (plain text "Hello." when there is
none); a conversation with a tool result gets the text "Tool said: " and that result. `requests` keeps what each
got (method, path, query, headers, parsed body), so tests can see that the real credential arrived.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from aiohttp import web

from tests.served_app import ServedApp

PATH = re.compile(r"/[^\s\"'\\]+\.txt")
USAGE_IN, USAGE_OUT = 1200, 30


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _script(user_text: str, tool_result: str | None) -> tuple[str | None, str]:
    """(path for a read call, or None; the text to answer otherwise)."""
    if tool_result is not None:
        return None, "Tool said: " + tool_result
    found = PATH.search(user_text)
    return (found[0], "") if found else (None, "Hello.")


def _text(value: Any) -> str:
    """All text in a content value of any of the three formats."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(_text(v) for v in value)
    if isinstance(value, dict):
        for key in ("text", "content", "output", "result"):
            if key in value:
                return _text(value[key])
        if isinstance(value.get("response"), dict):
            return _text(value["response"])
    return ""


# --- OpenAI Responses -----------------------------------------------------------------------------------------


def responses_turn(body: dict) -> tuple[str | None, str]:
    items = body.get("input") if isinstance(body.get("input"), list) else []
    results = [_text(i.get("output")) for i in items if isinstance(i, dict) and i.get("type") == "function_call_output"]
    users = [_text(i.get("content")) for i in items if isinstance(i, dict) and i.get("role") == "user"]
    return _script(users[-1] if users else "", results[-1] if results else None)


def responses_events(body: dict) -> list[dict]:
    path, text = responses_turn(body)
    base = {"id": "resp_1", "object": "response", "created_at": 1700000000, "model": "gpt-4o-2024-08-06"}
    events: list[dict] = [{"type": "response.created", "response": {**base, "status": "in_progress", "output": []}}]
    if path:
        arguments = _dumps({"filePath": path})
        item = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "read", "arguments": ""}
        events.append(
            {"type": "response.output_item.added", "output_index": 0, "item": {**item, "status": "in_progress"}}
        )
        for piece in (arguments[:12], arguments[12:]):
            events.append(
                {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 0, "delta": piece}
            )
        done = {**item, "arguments": arguments, "status": "completed"}
    else:
        item = {"type": "message", "id": "msg_1", "role": "assistant", "content": [], "status": "in_progress"}
        events.append({"type": "response.output_item.added", "output_index": 0, "item": item})
        for piece in (text[:10], text[10:]):
            events.append(
                {
                    "type": "response.output_text.delta",
                    "item_id": "msg_1",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": piece,
                    "logprobs": [],
                }
            )
        done = {**item, "status": "completed", "content": [{"type": "output_text", "text": text, "annotations": []}]}
    events.append({"type": "response.output_item.done", "output_index": 0, "item": done})
    usage = {
        "input_tokens": USAGE_IN,
        "input_tokens_details": {"cached_tokens": 200},
        "output_tokens": USAGE_OUT,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": USAGE_IN + USAGE_OUT,
    }
    final = {**base, "status": "completed", "output": [done], "usage": usage, "incomplete_details": None}
    events.append({"type": "response.completed", "response": final})
    return [{**e, "sequence_number": i} for i, e in enumerate(events)]


def responses_json(body: dict) -> dict:
    return responses_events(body)[-1]["response"]


# --- Anthropic Messages ---------------------------------------------------------------------------------------


def anthropic_turn(body: dict) -> tuple[str | None, str]:
    results, users = [], []
    for message in body.get("messages") or ():
        content = message.get("content")
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
        for block in blocks:
            if block.get("type") == "tool_result":
                results.append(_text(block.get("content")))
            elif message.get("role") == "user" and block.get("type") == "text":
                users.append(block.get("text") or "")
    return _script(users[-1] if users else "", results[-1] if results else None)


def anthropic_events(body: dict) -> list[dict]:
    path, text = anthropic_turn(body)
    usage = {"input_tokens": USAGE_IN, "output_tokens": 1, "cache_read_input_tokens": 100}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929"}
    message |= {"content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
    events: list[dict] = [{"type": "message_start", "message": message}]
    if path:
        block = {"type": "tool_use", "id": "toolu_1", "name": "read", "input": {}}
        arguments = _dumps({"filePath": path})
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in (arguments[:12], arguments[12:])]
        stop = "tool_use"
    else:
        block = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in (text[:10], text[10:])]
        stop = "end_turn"
    events.append({"type": "content_block_start", "index": 0, "content_block": block})
    events += [{"type": "content_block_delta", "index": 0, "delta": d} for d in deltas]
    events.append({"type": "content_block_stop", "index": 0})
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": USAGE_OUT},
        }
    )
    events.append({"type": "message_stop"})
    return events


# --- Gemini native --------------------------------------------------------------------------------------------


def gemini_turn(body: dict) -> tuple[str | None, str]:
    results, users = [], []
    for content in body.get("contents") or ():
        for part in content.get("parts") or ():
            if isinstance(part.get("functionResponse"), dict):
                results.append(_text(part["functionResponse"].get("response")))
            elif content.get("role") == "user" and isinstance(part.get("text"), str):
                users.append(part["text"])
    return _script(users[-1] if users else "", results[-1] if results else None)


def gemini_events(body: dict, model: str) -> list[dict]:
    path, text = gemini_turn(body)
    usage = {"promptTokenCount": USAGE_IN, "candidatesTokenCount": USAGE_OUT, "totalTokenCount": USAGE_IN + USAGE_OUT}
    if path:
        parts_list = [[{"functionCall": {"name": "read", "args": {"filePath": path}}, "thoughtSignature": "c2lnbmVk"}]]
    else:
        parts_list = [[{"text": text[:10]}], [{"text": text[10:]}]]
    events = []
    for i, parts in enumerate(parts_list):
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        event: dict[str, Any] = {"candidates": [candidate], "modelVersion": model, "responseId": "resp-1"}
        if i == len(parts_list) - 1:
            candidate["finishReason"] = "STOP"
            event["usageMetadata"] = usage
        events.append(event)
    return events


def gemini_json(body: dict, model: str) -> dict:
    events = gemini_events(body, model)
    parts = [p for e in events for p in e["candidates"][0]["content"]["parts"]]
    last = events[-1]
    candidate = {**last["candidates"][0], "content": {"role": "model", "parts": parts}}
    return {**last, "candidates": [candidate]}


# --- the server -----------------------------------------------------------------------------------------------


async def _sse(request: web.Request, frames: list[bytes]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
    await response.prepare(request)
    for frame in frames:
        await response.write(frame)
        await asyncio.sleep(0.01)
    await response.write_eof()
    return response


class Standins(ServedApp):
    """The three stand-ins on one port of 127.0.0.1, served from a background thread."""

    def __init__(self) -> None:
        self.port = 0
        self.requests: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]

    async def _record(self, request: web.Request) -> dict:
        body = await request.json()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "body": body,
            }
        )
        return body

    async def responses(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        if not body.get("stream"):
            return web.json_response(responses_json(body))
        frames = [f"event: {e['type']}\ndata: {_dumps(e)}\n\n".encode() for e in responses_events(body)]
        return await _sse(request, frames)

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        frames = [f"event: {e['type']}\ndata: {_dumps(e)}\n\n".encode() for e in anthropic_events(body)]
        return await _sse(request, frames)

    async def gemini(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        model, _, method = request.match_info["call"].partition(":")
        if method == "generateContent":
            return web.json_response(gemini_json(body, model))
        return await _sse(request, [f"data: {_dumps(e)}\r\n\r\n".encode() for e in gemini_events(body, model)])

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/responses", self.responses)
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1beta/models/{call}", self.gemini)
        return app
