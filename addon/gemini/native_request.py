"""An OpenAI chat body translated into a Gemini `generateContent` body, by litellm's own transformation code.

Pure: no mitmproxy, no network. Media that litellm would fetch (http(s) image or file URLs, extension-less gs://
URIs) is refused first with a ValueError saying what to send instead; the proxy forwards bytes, it does not go
and get them. Thought summaries are asked for (`includeThoughts`) on models that think, so the client sees the
reasoning as `reasoning_content`.
"""

from __future__ import annotations

from typing import Any

from ..formats import litellm_bridge

# What the native path does not send: the stream flag becomes the URL, the rest has no Gemini counterpart.
NOT_PARAMS = frozenset({"model", "messages", "stream", "stream_options", "user", "metadata", "store"})
# OpenAI parameters litellm maps for Gemini; anything else a client sends is dropped (and noted).
MAPPED = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "tools",
        "tool_choice",
        "functions",
        "response_format",
        "n",
        "stop",
        "logprobs",
        "top_logprobs",
        "frequency_penalty",
        "presence_penalty",
        "seed",
        "modalities",
        "parallel_tool_calls",
        "reasoning_effort",
        "thinking",
        "web_search_options",
        "service_tier",
        "audio",
    }
)
FILES_API = "https://generativelanguage.googleapis.com/"


def native_path(model: str, stream: bool) -> str:
    """The path after the API base: `models/M:generateContent` or `models/M:streamGenerateContent?alt=sse`."""
    model = model.removeprefix("models/")
    return f"models/{model}:streamGenerateContent?alt=sse" if stream else f"models/{model}:generateContent"


def translate(body: dict[str, Any], model: str, api: str) -> tuple[dict[str, Any], list[str]]:
    """The generateContent body for an OpenAI chat body (messages decoded) and notes on what changed.

    Raises ValueError with a message for the client when the request cannot be translated.
    """
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise ValueError("The request needs `messages`, a list of message objects.")
    check_media(messages)
    vertex = api == "vertex"
    params = {k: v for k, v in body.items() if k not in NOT_PARAMS and v is not None}
    notes = [f"dropped {name} (no Gemini counterpart)" for name in sorted(set(params) - MAPPED)]
    optional = litellm_bridge.gemini_generation_params({k: v for k, v in params.items() if k in MAPPED}, model, vertex)
    optional.pop("stream", None)
    native = litellm_bridge.gemini_request_body(messages, optional, model, vertex)
    if _ask_for_thoughts(native, model):
        notes.append("includeThoughts on: thought summaries become reasoning_content")
    notes.append(f"translated to Gemini's native API by litellm {litellm_bridge.PINNED_LITELLM}")
    return native, notes


def _ask_for_thoughts(native: dict[str, Any], model: str) -> bool:
    """Turn thought summaries on unless the request said otherwise (reasoning_effort "none" says no)."""
    config = native.setdefault("generationConfig", {})
    thinking = config.get("thinkingConfig")
    if thinking is None and not litellm_bridge.supports_reasoning(model):
        if not config:
            del native["generationConfig"]
        return False
    thinking = config.setdefault("thinkingConfig", thinking or {})
    if "includeThoughts" in thinking:
        return False
    thinking["includeThoughts"] = True
    return True


def check_media(messages: list[Any]) -> None:
    """ValueError for media the proxy would have to download: it forwards what it got, nothing more."""
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else ():
            url = _media_url(part)
            if url and _needs_fetch(url):
                raise ValueError(
                    f"messages[{i}] has media at {url[:100]!r}; the native Gemini path does not download media: "
                    "send it inline as a data: URL (base64), or as a Gemini Files API URI."
                )


def _media_url(part: Any) -> str | None:
    if not isinstance(part, dict):
        return None
    kind = part.get("type")
    value = part.get(kind) if isinstance(kind, str) else None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        url = value.get("url") or value.get("file_id")
        return url if isinstance(url, str) else None
    return None


def _needs_fetch(url: str) -> bool:
    if url.startswith(("http://", "https://")):
        return not url.startswith(FILES_API)
    if url.startswith("gs://"):
        return "." not in url.rsplit("/", 1)[-1]
    return False
