"""Assemble an OpenAI chat-completion answer from a stored JSON body or chunk stream, for the view (pure).

`assemble_sse(body)` replays a `text/event-stream` of `chat.completion.chunk` events into the final
assistant message; `assemble_json(body)` reads a `chat.completion`. The answer itself comes from the one fold
the streaming path uses (formats.answer.Answer), so the view and Exchange.answer agree; this
module adds what only the view shows: an `Assembly` also lists what each chunk added (the chunk table of the
contentview and the chunk log), the model, error objects and unreadable events, and whether [DONE] came.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ..formats import sse
from ..formats.answer import Answer, call_fields, first_choice, text

PREVIEW = 24  # characters of text shown per chunk in the chunk summaries


@dataclass
class Chunk:
    """One SSE event: its raw bytes and a one-line summary of what it added."""

    raw: bytes
    added: str


@dataclass
class Assembly:
    """The final assistant message (choice 0) of one response, and how the body delivered it."""

    content: str = ""
    reasoning: str = ""
    tool_calls: list[dict[str, str]] = field(default_factory=list)  # {"id", "name", "arguments"}
    finish_reason: str | None = None
    usage: dict | None = None
    model: str | None = None
    chunks: list[Chunk] = field(default_factory=list)
    done: bool = False  # JSON body, or a stream that ended with `data: [DONE]`
    errors: list[str] = field(default_factory=list)  # error objects and unreadable events in the body

    def answer(self) -> dict[str, Any]:
        """The `Exchange.answer` (formats/exchange.py) shape."""
        return {
            "content": self.content,
            "reasoning": self.reasoning,
            "tool_calls": [dict(c) for c in self.tool_calls],
            "finish_reason": self.finish_reason,
            "usage": self.usage,
        }


def from_answer(answer: dict) -> Assembly:
    """An Assembly from a stored `Exchange.answer` (formats/exchange.py) dict (tolerates missing keys)."""
    calls = [call_fields(c) for c in answer.get("tool_calls") or [] if isinstance(c, dict)]
    usage = answer.get("usage")
    return Assembly(
        content=text(answer.get("content")),
        reasoning=text(answer.get("reasoning")),
        tool_calls=calls,
        finish_reason=answer.get("finish_reason"),
        usage=usage if isinstance(usage, dict) else None,
        done=True,
    )


def assemble_json(body: bytes) -> Assembly:
    """Read a `chat.completion` JSON body. Raises ValueError if it is not one."""
    obj = _loads(body)
    if not isinstance(obj, dict) or not isinstance(obj.get("choices"), list):
        raise ValueError("The body is not a chat completion: it has no 'choices' list.")
    fold = Answer()
    fold.add_completion(obj)
    asm = Assembly(**fold.to_dict(), done=True, model=_str_or_none(obj.get("model")))
    if isinstance(obj.get("error"), dict):
        asm.errors.append(_error_text(obj["error"]))
    return asm


def assemble_sse(body: bytes) -> Assembly:
    """Replay a stream of `chat.completion.chunk` SSE events. Never raises on odd events."""
    replay = _Replay()
    for event in split_events(body):
        replay.asm.chunks.append(Chunk(event.raw, replay.event(event.data)))
    return replay.result()


def split_events(body: bytes) -> list[sse.Event]:
    """All SSE events of a complete body, including an unterminated last one."""
    decoder = sse.SSEDecoder()
    return decoder.decode(body) + decoder.flush()


class _Fold(Answer):
    """The answer fold (formats.answer), noting what each tool-call fragment added, for the chunk table."""

    def __init__(self) -> None:
        super().__init__()
        self.notes: list[str] = []

    def add_fragment(self, fragment: dict) -> int:
        names = [call.name for call in self.tool_calls]
        position = super().add_fragment(fragment)
        function = fragment["function"] if isinstance(fragment.get("function"), dict) else {}
        added = []
        if self.tool_calls[position].name != (names[position] if position < len(names) else ""):
            added.append(f"+tool_call[{position}] {text(function.get('name'))}")
        if (arguments := function.get("arguments")) and isinstance(arguments, str):
            added.append(f"+args {len(arguments)} chars")
        self.notes += added or [f"tool_call[{position}] (nothing)"]
        return position


class _Replay:
    """Feeds events to the fold and says, for each, what it added (the chunk table); keeps what only the view
    shows: the model, error objects and unreadable events, whether the stream ended with [DONE]."""

    def __init__(self) -> None:
        self.asm = Assembly()
        self.fold = _Fold()

    def result(self) -> Assembly:
        for key, value in self.fold.to_dict().items():
            setattr(self.asm, key, value)
        return self.asm

    def event(self, data: bytes | None) -> str:
        if data is None:
            return "(no data)"
        if data.strip() == b"[DONE]":
            self.asm.done = True
            return "[DONE]"
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.asm.errors.append(f"unreadable event: {_preview(data.decode('utf-8', 'replace'))}")
            return f"not JSON: {_preview(data.decode('utf-8', 'replace'))}"
        if not isinstance(obj, dict):
            return "not a chunk object"
        return " ".join(self.chunk(obj)) or "(empty)"

    def chunk(self, obj: dict) -> list[str]:
        added = []
        if isinstance(obj.get("error"), dict):
            self.asm.errors.append(_error_text(obj["error"]))
            added.append(f"error: {_preview(_error_text(obj['error']))}")
        self.asm.model = self.asm.model or _str_or_none(obj.get("model"))
        fold, texts = self.fold, (len(self.fold.reasoning_parts), len(self.fold.content_parts))
        fold.notes = []
        fold.add_chunk(obj)
        choice = first_choice(obj["choices"]) if isinstance(obj.get("choices"), list) else {}
        delta = choice["delta"] if isinstance(choice.get("delta"), dict) else {}
        if delta.get("role"):
            added.append(f"role={delta['role']}")
        if len(fold.reasoning_parts) > texts[0]:
            added.append(f"+reasoning {_quote(fold.reasoning_parts[-1])}")
        if len(fold.content_parts) > texts[1]:
            added.append(f"+text {_quote(fold.content_parts[-1])}")
        added += fold.notes
        if choice.get("finish_reason"):
            added.append(f"finish={choice['finish_reason']}")
        if isinstance(obj.get("usage"), dict):
            added.append("usage")
        return added


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _error_text(error: dict) -> str:
    message = error.get("message")
    code = error.get("code") or error.get("status") or error.get("type")
    return f"{code}: {message}" if code else str(message)


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ValueError(f"The body is not JSON: {e}.") from e


def _preview(value: str, limit: int = PREVIEW) -> str:
    return value if len(value) <= limit else value[:limit] + "…"


def _quote(value: str) -> str:
    return orjson.dumps(_preview(value)).decode()
