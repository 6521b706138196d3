"""Assemble an OpenAI chat-completion answer from a JSON body or a chunk stream (pure).

`assemble_sse(body)` replays a `text/event-stream` of `chat.completion.chunk` events into the final
assistant message; `assemble_json(body)` reads a `chat.completion`. Both return an `Assembly`, which
also lists what each chunk added (for the chunk table of the contentview and the chunk log).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ..formats import sse

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
        """The `flow.metadata["llm"]["answer"]` shape."""
        return {
            "content": self.content,
            "reasoning": self.reasoning,
            "tool_calls": [dict(c) for c in self.tool_calls],
            "finish_reason": self.finish_reason,
            "usage": self.usage,
        }


def from_answer(answer: dict) -> Assembly:
    """An Assembly from a stored `flow.metadata["llm"]["answer"]` dict (tolerates missing keys)."""
    calls = [call_fields(c) for c in answer.get("tool_calls") or [] if isinstance(c, dict)]
    usage = answer.get("usage")
    return Assembly(
        content=_text(answer.get("content")),
        reasoning=_text(answer.get("reasoning")),
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
    asm = Assembly(done=True, model=_str_or_none(obj.get("model")))
    asm.usage = obj["usage"] if isinstance(obj.get("usage"), dict) else None
    choice = _first_choice(obj["choices"])
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    asm.content = _text(message.get("content"))
    asm.reasoning = _text(message.get("reasoning_content") or message.get("reasoning"))
    asm.tool_calls = [call_fields(c) for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    asm.finish_reason = choice.get("finish_reason")
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


class _Replay:
    """Folds events into an Assembly; text is gathered in lists (joined once) since answers
    can come in tens of thousands of chunks. Each step returns what it added, for the chunk table."""

    def __init__(self) -> None:
        self.asm = Assembly()
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.calls: list[dict[str, Any]] = []  # {"id", "name", "arguments": list[str]}
        self.slots: dict[Any, int] = {}  # tool-call index -> position in self.calls

    def result(self) -> Assembly:
        self.asm.content, self.asm.reasoning = "".join(self.content), "".join(self.reasoning)
        self.asm.tool_calls = [{**c, "arguments": "".join(c["arguments"])} for c in self.calls]
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
        choice = _first_choice(obj["choices"] if isinstance(obj.get("choices"), list) else [])
        added += self.delta(choice["delta"] if isinstance(choice.get("delta"), dict) else {})
        if choice.get("finish_reason"):
            self.asm.finish_reason = choice["finish_reason"]
            added.append(f"finish={choice['finish_reason']}")
        if isinstance(obj.get("usage"), dict):
            self.asm.usage = obj["usage"]
            added.append("usage")
        return added

    def delta(self, delta: dict) -> list[str]:
        added = [f"role={delta['role']}"] if delta.get("role") else []
        if thought := _text(delta.get("reasoning_content") or delta.get("reasoning")):
            self.reasoning.append(thought)
            added.append(f"+reasoning {_quote(thought)}")
        if text := _text(delta.get("content")):
            self.content.append(text)
            added.append(f"+text {_quote(text)}")
        for frag in delta.get("tool_calls") or []:
            if isinstance(frag, dict):
                added += self.tool_fragment(frag)
        return added

    def tool_fragment(self, frag: dict) -> list[str]:
        """Merge one index-keyed tool-call fragment. A new id at a used index starts a new call
        (Gemini sends parallel calls all at index 0, each complete)."""
        fn = frag["function"] if isinstance(frag.get("function"), dict) else {}
        call_id, key = _text(frag.get("id")), frag.get("index", len(self.calls))
        pos = self.slots.get(key)
        if pos is None or (call_id and self.calls[pos]["id"] not in ("", call_id)):
            pos = self.slots[key] = len(self.calls)
            self.calls.append({"id": "", "name": "", "arguments": []})
        call, added = self.calls[pos], []
        call["id"] = call["id"] or call_id
        if (name := _text(fn.get("name"))) and name != call["name"]:
            call["name"] += name  # streamed in pieces; some servers repeat the whole name instead
            added.append(f"+tool_call[{pos}] {name}")
        if args := _text(fn.get("arguments")):
            call["arguments"].append(args)
            added.append(f"+args {len(args)} chars")
        return added or [f"tool_call[{pos}] (nothing)"]


def call_fields(call: dict) -> dict[str, str]:
    """{"id", "name", "arguments": str} from an OpenAI tool call (or a flat dict of those keys)."""
    fn = call.get("function") if isinstance(call.get("function"), dict) else call
    args = fn.get("arguments")
    if not isinstance(args, str):
        args = "" if args is None else orjson.dumps(args).decode()
    return {"id": _text(call.get("id")), "name": _text(fn.get("name")), "arguments": args}


def _first_choice(choices: list) -> dict:
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return {}


def _text(value: Any) -> str:
    """Strings as they are; OpenAI content-part lists joined; anything else empty."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(p["text"] for p in value if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


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


def _preview(text: str, limit: int = PREVIEW) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _quote(text: str) -> str:
    return orjson.dumps(_preview(text)).decode()
