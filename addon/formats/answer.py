"""The assistant's answer, assembled from a chat.completion or from chat.completion.chunk events as they pass.

Built incrementally, so a flow's answer is complete even when the stored stream body was cut at its cap.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ToolCall:
    id: str = ""
    name: str = ""
    argument_parts: list[str] = field(default_factory=list)

    @property
    def arguments(self) -> str:
        return "".join(self.argument_parts)


@dataclass
class Answer:
    # Text arrives in thousands of small pieces: kept as lists and joined once, not re-copied per piece.
    content_parts: list[str] = field(default_factory=list)
    reasoning_parts: list[str] = field(default_factory=list)
    tool_calls: dict[int, ToolCall] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: dict | None = None
    chunks: int = 0

    @property
    def content(self) -> str:
        return "".join(self.content_parts)

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_parts)

    def add_chunk(self, chunk: dict) -> None:
        """Fold one parsed chat.completion.chunk in (only choice 0: what a chat client shows)."""
        self.chunks += 1
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return
        choice = choices[0]
        if finish_reason := choice.get("finish_reason"):
            self.finish_reason = finish_reason
        delta = choice.get("delta")
        if isinstance(delta, dict):
            self._add_message(delta, fragments=True)

    def add_completion(self, body: dict) -> None:
        """Take a whole (non-streamed) chat.completion."""
        if isinstance(body.get("usage"), dict):
            self.usage = body["usage"]
        choices = body.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            self.finish_reason = choices[0].get("finish_reason")
            if isinstance(choices[0].get("message"), dict):
                self._add_message(choices[0]["message"], fragments=False)

    def _add_message(self, message: dict, fragments: bool) -> None:
        content = message.get("content")
        if isinstance(content, str):
            self.content_parts.append(content)
        if "reasoning_content" in message or "reasoning" in message:
            for key in ("reasoning_content", "reasoning"):
                if isinstance(message.get(key), str):
                    self.reasoning_parts.append(message[key])
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            for position, call in enumerate(calls):
                if isinstance(call, dict):
                    self._add_call(call, position if not fragments else None)

    def _add_call(self, call: dict, position: int | None) -> None:
        index = call.get("index", position)
        if not isinstance(index, int):
            index = len(self.tool_calls)
        entry = self.tool_calls.setdefault(index, ToolCall())
        entry.id = call.get("id") or entry.id
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        entry.name = function.get("name") or entry.name
        if isinstance(function.get("arguments"), str):
            entry.argument_parts.append(function["arguments"])

    def to_dict(self) -> dict:
        calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for _, c in sorted(self.tool_calls.items())]
        return {
            "content": self.content,
            "reasoning": self.reasoning,
            "tool_calls": calls,
            "finish_reason": self.finish_reason,
            "usage": self.usage,
        }
