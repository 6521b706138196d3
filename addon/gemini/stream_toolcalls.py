"""Repair streamed tool calls of Gemini's OpenAI-compatible endpoint, one stream at a time.

Gemini streams each tool call whole in one delta without ``index`` (parallel calls arrive as separate
deltas, again without ``index``), sometimes with an empty ``id``, and ends such a stream with
``finish_reason: "stop"``. OpenAI-style clients merge deltas by ``index``, so two calls without one end up
glued together. Servers that stream a call in fragments (id and name first, then ``arguments`` pieces with
the same index) pass through unchanged.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeGuard

__all__ = ["ToolCallFixer", "fix_message_response", "new_call_id"]


def new_call_id() -> str:
    """A fresh OpenAI-style tool-call id: ``call_`` and 24 hex digits."""
    return "call_" + uuid.uuid4().hex[:24]


def _is_index(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class _ChoiceCalls:
    """The tool calls seen so far in one choice of a stream."""

    def __init__(self) -> None:
        self.count = 0  # calls seen; the next new call gets this index unless the server said otherwise
        self.last: int | None = None  # index of the call that arguments-only deltas continue
        self.upstream: dict[int, int] = {}  # index the server sent -> index the client sees
        self.ids: dict[int, str] = {}  # index the client sees -> id the client sees

    def place(self, call: dict[str, Any]) -> tuple[int, bool]:
        """The index ``call`` belongs to, and whether it starts a new call."""
        cid, index = call.get("id"), call.get("index")
        function = call.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if _is_index(index):
            known = self.upstream.get(index)
            if known is not None and (not cid or self.ids.get(known) == cid):  # the same call continues
                return known, False
            ours = index if index >= self.count else self.count  # a reused index is another call
            self.upstream[index] = ours
            return self._start(ours), True
        if cid or name or self.last is None:
            return self._start(self.count), True
        return self.last, False

    def _start(self, index: int) -> int:
        self.count = max(self.count, index + 1)
        self.last = index
        return index


class ToolCallFixer:
    """State for one stream: feed every parsed ``chat.completion.chunk`` to :meth:`fix`, in order."""

    def __init__(self) -> None:
        self._choices: dict[int, _ChoiceCalls] = {}

    @property
    def call_ids(self) -> dict[int, dict[int, str]]:
        """Per choice index: tool-call index -> the id the client saw."""
        return {choice: dict(calls.ids) for choice, calls in self._choices.items()}

    def fix(self, chunk: dict[str, Any]) -> list[str]:
        """Repair ``chunk`` in place; return notes of what was repaired, empty exactly when nothing changed."""
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        if not isinstance(choices, list):
            return []
        notes: list[str] = []
        for position, choice in enumerate(choices):
            if isinstance(choice, dict):
                key = choice.get("index")
                notes += self._fix_choice(choice, key if _is_index(key) else position)
        return notes

    def _fix_choice(self, choice: dict[str, Any], key: int) -> list[str]:
        notes: list[str] = []
        delta = choice.get("delta")
        tool_calls = delta.get("tool_calls") if isinstance(delta, dict) else None
        if isinstance(tool_calls, list) and tool_calls:
            calls = self._choices.setdefault(key, _ChoiceCalls())
            for call in tool_calls:
                if isinstance(call, dict):
                    notes += _fix_call(calls, call)
        if choice.get("finish_reason") == "stop" and self._choices.get(key):
            choice["finish_reason"] = "tool_calls"
            notes.append("finish_reason stop -> tool_calls")
        return notes


def _fix_call(calls: _ChoiceCalls, call: dict[str, Any]) -> list[str]:
    notes: list[str] = []
    sent = call.get("index")
    index, is_new = calls.place(call)
    if sent != index:
        call["index"] = index
        change = f"index {index} assigned" if sent is None else f"index {sent} -> {index}"
        notes.append(f"tool call {index}: {change}" + ("" if is_new else " (fragment)"))
    if not is_new:
        return notes  # a fragment of a call already started: leave id and type alone (clients concatenate)
    cid = call.get("id")
    if not isinstance(cid, str) or not cid:
        cid = call["id"] = new_call_id()
        notes.append(f"tool call {index}: id generated")
    calls.ids[index] = cid
    if call.get("type") is None:  # the AI SDK refuses a new call without it
        call["type"] = "function"
        notes.append(f"tool call {index}: type function added")
    return notes


def fix_message_response(body: dict[str, Any]) -> list[str]:
    """Repair a non-streamed ``chat.completion`` in place: missing ids, ``finish_reason`` stop with tool calls."""
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list):
        return []
    notes: list[str] = []
    for choice in choices:
        message = choice.get("message") if isinstance(choice, dict) else None
        tool_calls = message.get("tool_calls") if isinstance(message, dict) else None
        if not isinstance(tool_calls, list) or not tool_calls:
            continue
        for position, call in enumerate(tool_calls):
            if isinstance(call, dict) and not (isinstance(call.get("id"), str) and call["id"]):
                call["id"] = new_call_id()
                notes.append(f"tool call {position}: id generated")
        if choice.get("finish_reason") == "stop":
            choice["finish_reason"] = "tool_calls"
            notes.append("finish_reason stop -> tool_calls")
    return notes
