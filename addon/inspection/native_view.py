"""The contentview for native Gemini requests: what the client sent (OpenAI) beside what Gemini received.

A flow of the native path holds Gemini's `generateContent` body as its request; the client's OpenAI request is
in the exchange record's `client_request` (client_request.py). "LLM native request" shows both: the client's
conversation as the LLM chat view shows it, then Gemini's contents part by part and its generationConfig.
"""

from __future__ import annotations

from typing import Any

import orjson
from mitmproxy.contentviews import Metadata

from ..formats.exchange import Exchange
from .client_body import client_body, client_body_cut
from .render import conversation
from .render.document import DEFAULT, NOT_MINE, Section, View, clip, loads

CLIP = 300
UNREADABLE = "(the client's request cannot be shown: it was cut at the cap or is not a chat request)"


class NativeRequestView(View):
    name = "LLM native request"
    not_mine = "Not a Gemini generateContent request."

    def sections(self, data: bytes, metadata: Metadata, ex: Exchange) -> list[Section | None] | None:
        native = _native_body(data)
        if native is None:
            return None
        gemini = Section("what Gemini received (generateContent):", render_native(native))
        if not (client := client_body(ex)):
            return [gemini]
        chat = conversation.chat_request(client)
        lines = [UNREADABLE] if chat is None else conversation.request(chat)
        cut = ["(cut at its cap, translate_keep_client_request)"] if chat and client_body_cut(ex) else []
        return [Section("the client's request (OpenAI):", lines + cut), gemini]

    def render_priority(self, data: bytes, metadata: Metadata) -> float:
        return DEFAULT if data[:200].lstrip().startswith(b"{") and _native_body(data) is not None else NOT_MINE


def _native_body(data: bytes) -> dict | None:
    body = loads(data)
    return body if isinstance(body, dict) and isinstance(body.get("contents"), list) else None


def render_native(body: dict) -> list[str]:
    lines = []
    system = body.get("system_instruction") or body.get("systemInstruction")
    if isinstance(system, dict):
        lines.append("system: " + " ".join(_part(p) for p in system.get("parts") or ()))
    for i, content in enumerate(body["contents"]):
        if isinstance(content, dict):
            lines += [f"[{i}] {content.get('role')}:", *(f"    {_part(p)}" for p in content.get("parts") or ())]
    for tool in body.get("tools") or ():
        for declaration in (tool or {}).get("function_declarations") or (tool or {}).get("functionDeclarations") or ():
            lines.append(f"tool offered: {declaration.get('name')}")
    for key in ("toolConfig", "generationConfig", "safetySettings", "cachedContent"):
        if key in body:
            lines.append(f"{key}: {orjson.dumps(body[key]).decode()}")
    return lines


def _part(part: Any) -> str:
    if not isinstance(part, dict):
        return repr(part)
    signed = " [thought signature]" if part.get("thoughtSignature") or part.get("thought_signature") else ""
    call = part.get("function_call") or part.get("functionCall")
    if isinstance(call, dict):
        return f"function call {call.get('name')}({clip(call.get('args'), CLIP)}){signed}"
    result = part.get("function_response") or part.get("functionResponse")
    if isinstance(result, dict):
        return f"function result {result.get('name')}: {clip(result.get('response'), CLIP)}"
    media = part.get("inline_data") or part.get("inlineData") or part.get("file_data") or part.get("fileData")
    if isinstance(media, dict):
        kind = media.get("mime_type") or media.get("mimeType")
        return f"media {kind} ({len(str(media.get('data') or media.get('file_uri') or ''))} chars){signed}"
    if isinstance(part.get("text"), str):
        return ("thought: " if part.get("thought") else "") + clip(part["text"], CLIP) + signed
    return clip(part, CLIP)
