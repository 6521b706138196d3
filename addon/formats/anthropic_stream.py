"""A chat-completions stream as Anthropic Messages events, written as the chat chunks pass.

message_start, then one content block per run of thinking, text or a tool call (content_block_start,
content_block_delta with thinking_delta / text_delta / input_json_delta, content_block_stop), then message_delta
with stop_reason and usage, then message_stop. A stream that fails or stops short ends with an `error` event.
Tool-use ids are the chat answer's tool-call ids, so a Gemini 3 thought signature packed into them comes back.
"""

from __future__ import annotations

import time
from typing import Any

from .chat_stream_in import ChatStreamReader, token_counts
from .client_formats import anthropic_error, sse

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}


def stop_reason(finish_reason: str | None, tools_called: bool) -> str:
    if tools_called:
        return "tool_use"
    return STOP_REASONS.get(finish_reason or "stop", "end_turn")


class AnthropicStream(ChatStreamReader):
    def __init__(self, model: str, message_id: str | None = None) -> None:
        super().__init__()
        self.model = model
        self.message_id = message_id or f"msg_{int(time.time() * 1000):x}"
        self.started = False
        self.index = -1
        self.block: tuple[str, int] | None = None  # ("thinking" | "text" | "tool", tool index)
        self.tools_called = False

    def start(self) -> bytes:
        if self.started:
            return b""
        self.started = True
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return sse("message_start", {"type": "message_start", "message": message})

    def open(self, kind: tuple[str, int], block: dict[str, Any]) -> bytes:
        out = self.close()
        self.index += 1
        self.block = kind
        return out + sse(
            "content_block_start", {"type": "content_block_start", "index": self.index, "content_block": block}
        )

    def close(self) -> bytes:
        if self.block is None:
            return b""
        self.block = None
        return sse("content_block_stop", {"type": "content_block_stop", "index": self.index})

    def delta(self, delta: dict[str, Any]) -> bytes:
        return sse("content_block_delta", {"type": "content_block_delta", "index": self.index, "delta": delta})

    def on_reasoning(self, text: str) -> bytes:
        out = (
            b""
            if self.block == ("thinking", 0)
            else self.open(("thinking", 0), {"type": "thinking", "thinking": "", "signature": ""})
        )
        return out + self.delta({"type": "thinking_delta", "thinking": text})

    def on_text(self, text: str) -> bytes:
        out = b"" if self.block == ("text", 0) else self.open(("text", 0), {"type": "text", "text": ""})
        return out + self.delta({"type": "text_delta", "text": text})

    def on_tool(self, index: int, call_id: object, name: object, arguments: str) -> bytes:
        out = b""
        if self.block != ("tool", index):
            self.tools_called = True
            block = {"type": "tool_use", "id": str(call_id or f"toolu_{index}"), "name": str(name or ""), "input": {}}
            out = self.open(("tool", index), block)
        if arguments:
            out += self.delta({"type": "input_json_delta", "partial_json": arguments})
        return out

    def complete(self) -> bytes:
        prompt, completion, cached, _ = token_counts(self.usage)
        usage = {"input_tokens": prompt - cached, "output_tokens": completion}
        if cached:
            usage["cache_read_input_tokens"] = cached
        delta = {"stop_reason": stop_reason(self.finish_reason, self.tools_called), "stop_sequence": None}
        return (
            self.start()
            + self.close()
            + sse("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
            + sse("message_stop", {"type": "message_stop"})
        )

    def failed(self, message: str, status: int, code: str | None) -> bytes:
        return sse("error", anthropic_error(message, status))
