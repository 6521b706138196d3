"""Gemini's native answers translated back into OpenAI's shape: a whole generateContent response into a
chat.completion, each streamGenerateContent event into one chat.completion.chunk, as it passes.

Pure, no mitmproxy. Text parts become `content`, thought parts (`thought: true`) `reasoning_content`, function
calls `tool_calls` with ids stable for the answer and indexes counted across the stream; a call's thought
signature travels in its id (thought_signatures.SEPARATOR, the encoding the OpenAI-compatible path uses), and
litellm reads it back from there on the next request. Finish reasons that mean "the model failed to make a
tool call" raise NativeAnswerError, so the client gets an error instead of an empty `stop` that ends its task.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson

from .thought_signatures import SEPARATOR

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "LANGUAGE": "content_filter",
    "OTHER": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
}
# Finishes where the model tried to call a tool and produced nothing usable.
FAILED_FINISHES = {
    "MALFORMED_FUNCTION_CALL": "Gemini produced a malformed function call",
    "UNEXPECTED_TOOL_CALL": "Gemini called a tool that was not offered",
    "TOO_MANY_TOOL_CALLS": "Gemini made too many tool calls in a row",
}


class NativeAnswerError(ValueError):
    """Gemini answered, but with something the client must see as an error (status and code for the answer)."""

    def __init__(self, message: str, code: str, status: int = 502) -> None:
        super().__init__(message)
        self.code, self.status = code, status


def finish_reason(native: str | None, made_calls: bool, detail: str | None = None) -> str | None:
    """OpenAI's finish_reason for Gemini's; NativeAnswerError for the failed-tool-call ones."""
    if native is None:
        return None
    if native in FAILED_FINISHES:
        more = f": {detail}" if detail else ""
        raise NativeAnswerError(
            f"{FAILED_FINISHES[native]} (finishReason {native}){more}. Retry the request.", native.lower()
        )
    mapped = FINISH_REASONS.get(native, "stop")
    return "tool_calls" if made_calls and mapped == "stop" else mapped


def usage(metadata: Any) -> dict[str, Any] | None:
    """OpenAI usage from usageMetadata: cached prompt tokens and thinking tokens in the detail objects."""
    if not isinstance(metadata, dict):
        return None
    count = {k: v for k, v in metadata.items() if isinstance(v, int)}
    prompt = count.get("promptTokenCount", 0) + count.get("toolUsePromptTokenCount", 0)
    thoughts = count.get("thoughtsTokenCount", 0)
    completion = count.get("candidatesTokenCount", 0) + thoughts
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": count.get("totalTokenCount", prompt + completion),
        "prompt_tokens_details": {"cached_tokens": count.get("cachedContentTokenCount", 0)},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


class Translator:
    """One answer's translation: ids, the creation time and the tool-call count are kept across its events."""

    def __init__(self, client_model: str) -> None:
        self.model = client_model
        self.id = "chatcmpl-" + secrets.token_hex(12)
        self.call_prefix = "call_" + secrets.token_hex(6)
        self.created = int(time.time())
        self.calls = 0
        self.started = False
        self.finished = False

    def chunk(self, native: dict[str, Any]) -> dict[str, Any]:
        """The chat.completion.chunk for one streamed GenerateContentResponse."""
        candidate = _candidate(native)
        delta = self._message(candidate.get("content"))
        if not self.started:
            delta = {"role": "assistant", **delta}
            self.started = True
        choice = {"index": 0, "delta": delta, "finish_reason": self._finish(native, candidate)}
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}
        chunk["choices"] = [choice]
        if choice["finish_reason"] and (counted := usage(native.get("usageMetadata"))):
            chunk["usage"] = counted
        return chunk

    def completion(self, native: dict[str, Any]) -> dict[str, Any]:
        """The chat.completion for a whole GenerateContentResponse."""
        candidate = _candidate(native)
        message = {"role": "assistant", "content": None, **self._message(candidate.get("content"))}
        finish = self._finish(native, candidate) or "stop"
        body = {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model}
        body["choices"] = [{"index": 0, "message": message, "finish_reason": finish}]
        if counted := usage(native.get("usageMetadata")):
            body["usage"] = counted
        return body

    def _finish(self, native: dict[str, Any], candidate: dict[str, Any]) -> str | None:
        blocked = (native.get("promptFeedback") or {}).get("blockReason") if not candidate else None
        if blocked:
            self.finished = True
            return "content_filter"
        reason = candidate.get("finishReason")
        mapped = finish_reason(reason, self.calls > 0, candidate.get("finishMessage"))
        self.finished = self.finished or mapped is not None
        return mapped

    def _message(self, content: Any) -> dict[str, Any]:
        parts = content.get("parts") if isinstance(content, dict) else None
        text: list[str] = []
        thoughts: list[str] = []
        calls: list[dict[str, Any]] = []
        for part in parts if isinstance(parts, list) else ():
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("functionCall"), dict):
                calls.append(self._call(part["functionCall"], part.get("thoughtSignature")))
            elif isinstance(part.get("text"), str):
                (thoughts if part.get("thought") else text).append(part["text"])
        message: dict[str, Any] = {}
        if text:
            message["content"] = "".join(text)
        if thoughts:
            message["reasoning_content"] = "".join(thoughts)
        if calls:
            message["tool_calls"] = calls
        return message

    def _call(self, call: dict[str, Any], signature: Any) -> dict[str, Any]:
        index = self.calls
        self.calls += 1
        call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else None
        call_id = call_id or f"{self.call_prefix}_{index}"
        if isinstance(signature, str) and signature:
            call_id += SEPARATOR + signature
        arguments = orjson.dumps(call.get("args") or {}).decode()
        function = {"name": str(call.get("name") or ""), "arguments": arguments}
        return {"index": index, "id": call_id, "type": "function", "function": function}


def _candidate(native: dict[str, Any]) -> dict[str, Any]:
    candidates = native.get("candidates")
    first = candidates[0] if isinstance(candidates, list) and candidates else None
    return first if isinstance(first, dict) else {}
