"""The assistant's answer, folded from a chat.completion or from chat.completion.chunk events: the one fold.

Built incrementally as a stream passes (stream_rewrite), so a flow's answer is complete even when the stored
stream body was cut at its cap; the LLM chat view (inspection/chat_assembly) replays stored bodies through the
same fold, so the flow's answer and the view always agree.

Only choice 0 counts (what a chat client shows). Tool-call fragments merge as OpenAI clients merge them:
- a fragment with an `index` continues the call at that index: its id fills in once, its arguments are appended,
  its name is appended unless it repeats the whole name (some servers send it on every fragment);
- a fragment whose non-empty id differs from the (non-empty) id of the call at its index starts a new call there
  (Gemini sends parallel calls complete, each at index 0); a repeated id or an empty id continues the call;
- a fragment without an index (Gemini) starts a new call when it has an id or a name (two parallel calls never
  merge) and otherwise continues the call started last; the same rule as gemini/stream_toolcalls' repair.
Calls are listed in the order they started.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson


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
    tool_calls: list[ToolCall] = field(default_factory=list)  # in the order they started
    finish_reason: str | None = None
    usage: dict | None = None
    chunks: int = 0
    _slots: dict[int, int] = field(
        default_factory=dict, init=False, repr=False
    )  # fragment index -> position in tool_calls
    _last: int | None = field(default=None, init=False, repr=False)  # position of the call started last

    @property
    def content(self) -> str:
        return "".join(self.content_parts)

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_parts)

    def add_chunk(self, chunk: dict) -> None:
        """Fold one parsed chat.completion.chunk in. This is on the streaming hot path: keep it lean."""
        self.chunks += 1
        usage = chunk.get("usage")
        if usage.__class__ is dict:
            self.usage = usage
        choices = chunk.get("choices")
        if not choices or choices.__class__ is not list:
            return
        choice = choices[0]
        if choice.__class__ is not dict or choice.get("index", 0) != 0:
            choice = first_choice(choices)
        if finish_reason := choice.get("finish_reason"):
            self.finish_reason = finish_reason
        delta = choice.get("delta")
        if delta.__class__ is not dict:
            return
        if content := delta.get("content"):
            if content.__class__ is not str:
                content = text(content)
            if content:
                self.content_parts.append(content)
        if ("reasoning_content" in delta or "reasoning" in delta) and (thought := _reasoning(delta)):
            self.reasoning_parts.append(thought)
        if (calls := delta.get("tool_calls")) and calls.__class__ is list:
            for call in calls:
                if call.__class__ is dict:
                    self.add_fragment(call)

    def add_fragment(self, fragment: dict) -> int:
        """Merge one streamed tool-call fragment (rules in the module docstring); its call's position."""
        function = fragment.get("function")
        if function.__class__ is not dict:
            function = {}
        call_id, name, index = fragment.get("id"), function.get("name"), fragment.get("index")
        call_id = call_id if call_id.__class__ is str else ""
        name = name if name.__class__ is str else ""
        if index.__class__ is int and index >= 0:  # (bool is not int by class)
            position = self._slots.get(index)
            if position is None or (call_id and self.tool_calls[position].id not in ("", call_id)):
                position = self._slots[index] = self._start()
        elif call_id or name or self._last is None:
            position = self._start()
        else:
            position = self._last
        call = self.tool_calls[position]
        if call_id and not call.id:
            call.id = call_id
        if name and name != call.name:
            call.name += name
        arguments = function.get("arguments")
        if arguments and arguments.__class__ is str:
            call.argument_parts.append(arguments)
        return position

    def _start(self) -> int:
        self.tool_calls.append(ToolCall())
        self._last = len(self.tool_calls) - 1
        return self._last

    def add_completion(self, body: dict) -> None:
        """Take a whole (non-streamed) chat.completion: each of its tool calls is a call of its own."""
        if isinstance(body.get("usage"), dict):
            self.usage = body["usage"]
        choice = first_choice(body["choices"]) if isinstance(body.get("choices"), list) else {}
        self.finish_reason = choice.get("finish_reason")
        message = choice.get("message")
        if not isinstance(message, dict):
            return
        if content := text(message.get("content")):
            self.content_parts.append(content)
        if thought := _reasoning(message):
            self.reasoning_parts.append(thought)
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict):
                fields = call_fields(call)
                self.tool_calls.append(ToolCall(fields["id"], fields["name"], [fields["arguments"]]))

    def to_dict(self) -> dict[str, Any]:
        """The `Exchange.answer` (formats/exchange.py) shape."""
        return {
            "content": self.content,
            "reasoning": self.reasoning,
            "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in self.tool_calls],
            "finish_reason": self.finish_reason,
            "usage": self.usage,
        }


# Finish reasons that explain an answer without text: cut at max_tokens, filtered, or calls made.
_EXPLAINED_FINISHES = frozenset({"length", "content_filter", "tool_calls", "function_call"})


def is_empty(answer: dict) -> bool:
    """An answer (the to_dict shape) with no text and no tool calls that does not say why: what Gemini's
    OpenAI-compatible endpoint sends for MALFORMED_FUNCTION_CALL / UNEXPECTED_TOOL_CALL (finish_reason "stop"),
    and what makes opencode end its task. Thinking alone does not count as an answer."""
    content = answer.get("content")
    if answer.get("tool_calls") or isinstance(content, str) and content.strip():
        return False
    return str(answer.get("finish_reason") or "").lower() not in _EXPLAINED_FINISHES


def first_choice(choices: list) -> dict:
    """Choice 0 of a `choices` list (the one with index 0, or without an index); {} when there is none."""
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return {}


def call_fields(call: dict) -> dict[str, str]:
    """{"id", "name", "arguments": str} from an OpenAI tool call (or a flat dict of those keys)."""
    function = call.get("function")
    fn = function if isinstance(function, dict) else call
    args = fn.get("arguments")
    if not isinstance(args, str):
        args = "" if args is None else orjson.dumps(args).decode()
    return {"id": text(call.get("id")), "name": text(fn.get("name")), "arguments": args}


def text(value: Any) -> str:
    """Strings as they are; OpenAI content-part lists joined; anything else empty."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(p["text"] for p in value if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _reasoning(message: dict) -> str:
    """A message's or delta's thinking: `reasoning_content`, else `reasoning` (never both: some servers send the
    same text under each)."""
    return text(message.get("reasoning_content")) or text(message.get("reasoning"))
