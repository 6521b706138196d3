"""The contentview for native Gemini requests: what the client sent (OpenAI) beside what Gemini received.

A flow of the native path holds Gemini's `generateContent` body as its request; the client's OpenAI request is
in the exchange record's `client_request` (client_request.py). "LLM native request" shows both: the client's
conversation as the LLM chat view shows it, then Gemini's contents part by part and its generationConfig.
"""

from __future__ import annotations

from typing import Any

import orjson
from mitmproxy.contentviews import Contentview, Metadata

from ..formats.exchange import Exchange
from .chatview import render_request
from .client_body import client_body, client_body_cut

CLIP = 300


class NativeRequestView(Contentview):
    name = "LLM native request"
    syntax_highlight = "none"

    def prettify(self, data: bytes, metadata: Metadata) -> str:
        native = _native_body(data)
        if native is None:
            raise ValueError("Not a Gemini generateContent request.")
        ex = _record(metadata)
        lines = []
        client = client_body(ex)
        if client:
            lines += ["== the client's request (OpenAI) ==", _client_text(client, ex), ""]
        lines += ["== what Gemini received (generateContent) ==", render_native(native)]
        return "\n".join(lines)

    def render_priority(self, data: bytes, metadata: Metadata) -> float:
        return 2.0 if data[:200].lstrip().startswith(b"{") and _native_body(data) is not None else -1.0


def _native_body(data: bytes) -> dict | None:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) and isinstance(body.get("contents"), list) else None


def _record(metadata: Metadata) -> Exchange:
    flow = metadata.flow
    return (Exchange.find(flow) if flow is not None else None) or Exchange()


def _client_text(client: bytes, ex: Exchange) -> str:
    try:
        text = render_request(orjson.loads(client))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "(the client's request cannot be shown: it was cut at the cap or is not a chat request)"
    return text + ("\n(cut at its cap, translate_keep_client_request)" if client_body_cut(ex) else "")


def render_native(body: dict) -> str:
    lines = []
    system = body.get("system_instruction") or body.get("systemInstruction")
    if isinstance(system, dict):
        lines.append("system: " + " ".join(_part(p) for p in system.get("parts") or ()))
    for i, content in enumerate(body["contents"]):
        if not isinstance(content, dict):
            continue
        lines.append(f"[{i}] {content.get('role')}:")
        lines += [f"    {_part(p)}" for p in content.get("parts") or ()]
    for tool in body.get("tools") or ():
        for declaration in (tool or {}).get("function_declarations") or (tool or {}).get("functionDeclarations") or ():
            lines.append(f"tool offered: {declaration.get('name')}")
    for key in ("toolConfig", "generationConfig", "safetySettings", "cachedContent"):
        if key in body:
            lines.append(f"{key}: {orjson.dumps(body[key]).decode()}")
    return "\n".join(lines)


def _part(part: Any) -> str:
    if not isinstance(part, dict):
        return repr(part)
    signed = " [thought signature]" if part.get("thoughtSignature") or part.get("thought_signature") else ""
    call = part.get("function_call") or part.get("functionCall")
    if isinstance(call, dict):
        return f"function call {call.get('name')}({_clip(orjson.dumps(call.get('args')).decode())}){signed}"
    result = part.get("function_response") or part.get("functionResponse")
    if isinstance(result, dict):
        return f"function result {result.get('name')}: {_clip(orjson.dumps(result.get('response')).decode())}"
    media = part.get("inline_data") or part.get("inlineData") or part.get("file_data") or part.get("fileData")
    if isinstance(media, dict):
        kind = media.get("mime_type") or media.get("mimeType")
        return f"media {kind} ({len(str(media.get('data') or media.get('file_uri') or ''))} chars){signed}"
    if isinstance(part.get("text"), str):
        return ("thought: " if part.get("thought") else "") + _clip(part["text"]) + signed
    return _clip(orjson.dumps(part).decode())


def _clip(text: str) -> str:
    return text if len(text) <= CLIP else text[: CLIP - 1] + "…"
