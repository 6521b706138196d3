"""Reading a chat-completions SSE stream as it passes, for a translator that writes another format's events.

`ChatStreamReader.feed(bytes)` takes any pieces of the chat stream the proxy sends a chat client (chunk
boundaries mean nothing), decodes each `chat.completion.chunk` and calls the subclass for reasoning text, answer
text and tool-call pieces in order; `[DONE]` or an OpenAI error event ends it. `end()` is the upstream's end:
a stream that never finished ends with the format's error. Whatever happens, exactly one terminal sequence
(`complete()` or `failed()`) is written, and nothing after it.
"""

from __future__ import annotations

from typing import Any

import orjson

from .sse import SSEDecoder

INCOMPLETE = "The upstream's stream ended before its answer was finished."


class ChatStreamReader:
    def __init__(self) -> None:
        self.decoder = SSEDecoder()
        self.ended = False
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.upstream_id: str | None = None

    def feed(self, data: bytes) -> bytes:
        return b"".join([self.event(event.data) for event in self.decoder.decode(data)])

    def end(self) -> bytes:
        """The upstream's stream is over: the rest of it, and a terminal sequence if none was written."""
        out = b"".join([self.event(event.data) for event in self.decoder.flush()])
        if self.ended:
            return out
        if self.finish_reason is not None:
            return out + self.finish()
        return out + self.fail(INCOMPLETE, 502, "incomplete_stream")

    def finish(self) -> bytes:
        if self.ended:
            return b""
        self.ended = True
        return self.complete()

    def fail(self, message: str, status: int, code: str | None) -> bytes:
        """End the stream with the format's error (nothing when it has ended already)."""
        if self.ended:
            return b""
        self.ended = True
        return self.failed(message, status, code)

    def event(self, data: bytes | None) -> bytes:
        if data is None or self.ended:
            return b""
        if data.strip() == b"[DONE]":
            return self.finish()
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return b""
        if not isinstance(chunk, dict):
            return b""
        error = chunk.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            return self.fail(str(error.get("message") or "The upstream failed."), 502, str(code) if code else None)
        return self.chunk(chunk)

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        out = [self.start()]
        if self.upstream_id is None and isinstance(chunk.get("id"), str):
            self.upstream_id = chunk["id"]
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        choices = chunk.get("choices")
        choice: dict[str, Any] = (
            choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        )
        delta: dict[str, Any] = choice["delta"] if isinstance(choice.get("delta"), dict) else {}
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            out.append(self.on_reasoning(reasoning))
        if isinstance(delta.get("content"), str) and delta["content"]:
            out.append(self.on_text(delta["content"]))
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                function: dict[str, Any] = call["function"] if isinstance(call.get("function"), dict) else {}
                index: int = call["index"] if isinstance(call.get("index"), int) else 0
                out.append(self.on_tool(index, call.get("id"), function.get("name"), function.get("arguments") or ""))
        if isinstance(choice.get("finish_reason"), str):
            self.finish_reason = choice["finish_reason"]
        return b"".join(out)

    # What a format writes (subclasses).
    def start(self) -> bytes:
        raise NotImplementedError

    def on_reasoning(self, text: str) -> bytes:
        raise NotImplementedError

    def on_text(self, text: str) -> bytes:
        raise NotImplementedError

    def on_tool(self, index: int, call_id: object, name: object, arguments: str) -> bytes:
        raise NotImplementedError

    def complete(self) -> bytes:
        raise NotImplementedError

    def failed(self, message: str, status: int, code: str | None) -> bytes:
        raise NotImplementedError


def token_counts(usage: dict[str, Any] | None) -> tuple[int, int, int, int]:
    """(prompt, completion, cached prompt, reasoning) tokens of a chat usage object; 0 for what it lacks."""
    usage = usage or {}
    prompt: int = usage["prompt_tokens"] if isinstance(usage.get("prompt_tokens"), int) else 0
    completion: int = usage["completion_tokens"] if isinstance(usage.get("completion_tokens"), int) else 0
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return prompt, completion, int(cached), int(reasoning)
