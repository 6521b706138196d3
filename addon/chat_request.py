"""Validation of a client's chat-completion request body, before anything is resolved or forwarded.

Bad input is answered by the proxy itself with a 4xx that names the problem; nothing reaches the upstream.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import orjson

MAX_MODEL_NAME = 256


class ClientError(ValueError):
    """A request the proxy refuses, with the HTTP status and OpenAI error code to answer with."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class ChatRequest(NamedTuple):
    body: dict
    model: str
    stream: bool


def _check_model(model: object) -> str:
    if not isinstance(model, str) or not model.strip():
        raise ClientError("The request needs a `model` string, e.g. \"local-model\".", code="invalid_model")
    if len(model) > MAX_MODEL_NAME:
        raise ClientError(f"The model name is {len(model)} characters long; at most {MAX_MODEL_NAME} are allowed.",
                          code="invalid_model")
    if any(c in model for c in "\\?#") or ".." in model or not model.isprintable():
        raise ClientError(f"The model name {model[:80]!r} contains characters a model name cannot have.",
                          code="invalid_model")
    return model


NUMBER = (int, float)
# The types OpenAI's API takes for the fields a client commonly sends; null is always accepted (= not set).
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "temperature": NUMBER, "top_p": NUMBER, "presence_penalty": NUMBER, "frequency_penalty": NUMBER,
    "max_tokens": (int,), "max_completion_tokens": (int,), "n": (int,), "seed": (int,), "top_logprobs": (int,),
    "logprobs": (bool,), "parallel_tool_calls": (bool,), "tools": (list,), "tool_choice": (str, dict),
    "stop": (str, list), "stream_options": (dict,), "response_format": (dict,), "reasoning_effort": (str,),
    "user": (str,), "metadata": (dict,),
}
TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", list: "a list", dict: "an object",
              str: "a string"}


def _check_fields(body: dict) -> None:
    for name, types in FIELD_TYPES.items():
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            wanted = "a number" if types == NUMBER else " or ".join(TYPE_NAMES[t] for t in types)
            raise ClientError(f"`{name}` must be {wanted}, not {type(value).__name__} {str(value)[:40]!r}.",
                              code="invalid_type")
    for i, tool in enumerate(body.get("tools") or ()):
        if not isinstance(tool, dict):
            raise ClientError(f"tools[{i}] is not an object.", code="invalid_type")


def _check_messages(messages: object) -> None:
    if not isinstance(messages, list):
        raise ClientError("The request needs `messages`, a list of message objects.", code="invalid_messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ClientError(f"messages[{i}] is not an object.", code="invalid_messages")
        if not isinstance(message.get("role"), str):
            raise ClientError(f"messages[{i}] needs a `role` string.", code="invalid_messages")
        if not isinstance(message.get("content"), (str, list, type(None))):
            raise ClientError(f"messages[{i}].content must be a string, a list of parts or null.",
                              code="invalid_messages")


def parse_chat_request(content: bytes, max_bytes: int) -> ChatRequest:
    """Parse and check a chat-completion body; raises ClientError with what is wrong."""
    if len(content) > max_bytes:
        raise ClientError(f"The request body is {len(content):,} bytes; the proxy accepts at most {max_bytes:,}.",
                          status=413, code="request_too_large")
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError as e:
        raise ClientError(f"The request body is not valid UTF-8 JSON: {e}.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ClientError("The request body must be a JSON object.", code="invalid_json")
    model = _check_model(body.get("model"))
    _check_messages(body.get("messages"))
    _check_fields(body)
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise ClientError("`stream` must be true or false.", code="invalid_stream")
    return ChatRequest(body, model, bool(stream))


_FIRST_KEY_MODEL = re.compile(rb'\s*\{\s*("model"\s*:\s*)')


def rename_model(raw: bytes, old: str, new: str) -> bytes | None:
    """The raw body with its `model` value replaced, without re-encoding the rest; None when not certain.

    Re-encoding a 1 MB conversation costs milliseconds, and most requests need no change but the model name.
    The splice is made where the body starts with `{"model": "<old>"` (opencode writes it first), or else where
    the body holds exactly one `"model"` token (inside JSON strings quotes are escaped, so a conversation that
    mentions "model" does not count) written as `"model": "<old>"`. Counting scans the whole body, so the first
    case is checked first.
    """
    value = orjson.dumps(old)
    first = _FIRST_KEY_MODEL.match(raw)
    if first is not None and raw.startswith(value, first.end()):
        start, end = first.start(1), first.end() + len(value)
    elif raw.count(b'"model"') == 1 and (match := re.search(rb'"model"\s*:\s*' + re.escape(value), raw)):
        start, end = match.start(), match.end()
    else:
        return None
    return b"".join((raw[:start], b'"model":', orjson.dumps(new), raw[end:]))
