"""OpenAI Chat Completions read as itself: the shape every other reader translates into (pure)."""

from __future__ import annotations

from typing import Any

import orjson


def chat_request(body: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(body.get("messages"), list):
        raise ValueError("Not a chat completions request: it has no 'messages' list.")
    return body


def completion(body: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(body.get("choices"), list):
        raise ValueError("Not a chat completion: it has no 'choices' list.")
    return body


def answer_model(body: dict[str, Any]) -> str | None:
    return body.get("model") if isinstance(body.get("model"), str) else None


class Stream:
    """chat.completion.chunk events pass as they are; `[DONE]` and non-objects add nothing."""

    def __init__(self) -> None:
        self.model: str | None = None

    def chunks(self, data: bytes) -> list[dict[str, Any]]:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(chunk, dict):
            return []
        self.model = self.model or answer_model(chunk)
        return [chunk]
