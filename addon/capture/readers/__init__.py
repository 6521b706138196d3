"""Readers for the LLM formats capture mode recognises, each turning its format into OpenAI chat's shape (pure).

Every reader module has the same four names: `chat_request(body) -> dict` (the request as an OpenAI chat body:
model, messages, tools, the other parameters), `completion(body) -> dict` (a whole answer as a chat.completion),
`Stream` (a class whose `chunks(data)` turns one SSE event's data into chat.completion.chunk dicts) and
`answer_model(body) -> str | None`. The views, the comment and the tool checks then read every format alike.
"""

from __future__ import annotations

from types import ModuleType

from . import anthropic, gemini_native, openai_chat, openai_responses

READERS: dict[str, ModuleType] = {
    "openai_chat": openai_chat,
    "openai_responses": openai_responses,
    "anthropic": anthropic,
    "gemini_native": gemini_native,
}
TITLES = {
    "openai_chat": "OpenAI Chat Completions",
    "openai_responses": "OpenAI Responses",
    "anthropic": "Anthropic Messages",
    "gemini_native": "Gemini generateContent",
}
