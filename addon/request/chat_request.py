"""Validation of a client's chat-completion request body, before anything is resolved or forwarded.

Bad input is answered by the proxy itself with a 4xx that names the problem; nothing reaches the upstream.

The conversation (`messages`) is most of a long opencode request, often a megabyte, and only needs checking,
not changing. So the body is first split into its top-level values without decoding them (msgspec.Raw): every
value but `messages` is decoded; `messages` is checked and split in place (formats/conversation.py: each a role string
and a content of the right kind, the text valid UTF-8; a turn that repeats an earlier request's messages checks
only those it adds) and stays raw, to be written out as it came. Anything that path does not accept is parsed
the plain way, which says exactly what is wrong.
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec
import orjson

from ..config.model_name import check_model_name
from ..formats.conversation import Conversations, Split, split_messages


class ClientError(ValueError):
    """A request the proxy refuses, with the HTTP status and OpenAI error code to answer with."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class ChatRequest(NamedTuple):
    body: dict  # body["messages"] is a msgspec.Raw while the conversation is still undecoded (see load_messages)
    model: str
    stream: bool
    # While messages are raw: their raw `tool_calls` and `tool_call_id` values, one per line (what a repair
    # of tool-call ids would look at). None once messages are decoded.
    call_refs: bytes | None = None
    # The client's messages as they came, split (conversation.py): kept even when a repair decodes them.
    split: Split | None = None


def _check_model(model: object) -> str:
    if not isinstance(model, str):
        raise ClientError('The request needs a `model` string, e.g. "local-model".', code="invalid_model")
    try:
        check_model_name(model)
    except ValueError as e:
        raise ClientError(str(e), code="invalid_model") from None
    return model


NUMBER = (int, float)
# The types OpenAI's API takes for the fields a client commonly sends; null is always accepted (= not set).
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "temperature": NUMBER,
    "top_p": NUMBER,
    "presence_penalty": NUMBER,
    "frequency_penalty": NUMBER,
    "max_tokens": (int,),
    "max_completion_tokens": (int,),
    "n": (int,),
    "seed": (int,),
    "top_logprobs": (int,),
    "logprobs": (bool,),
    "parallel_tool_calls": (bool,),
    "tools": (list,),
    "tool_choice": (str, dict),
    "stop": (str, list),
    "stream_options": (dict,),
    "response_format": (dict,),
    "reasoning_effort": (str,),
    "user": (str,),
    "metadata": (dict,),
}
TYPE_NAMES = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "an object",
    str: "a string",
}


def _check_fields(body: dict) -> None:
    for name, types in FIELD_TYPES.items():
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            wanted = "a number" if types == NUMBER else " or ".join(TYPE_NAMES[t] for t in types)
            raise ClientError(
                f"`{name}` must be {wanted}, not {type(value).__name__} {str(value)[:40]!r}.", code="invalid_type"
            )
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
            raise ClientError(
                f"messages[{i}].content must be a string, a list of parts or null.", code="invalid_messages"
            )


def parse_chat_request(content: bytes, max_bytes: int, conversations: Conversations | None = None) -> ChatRequest:
    """Parse and check a chat-completion body; raises ClientError with what is wrong. `conversations` keeps
    recent requests' splits, so that a turn checks only the messages it adds."""
    if len(content) > max_bytes:
        raise ClientError(
            f"The request body is {len(content):,} bytes; the proxy accepts at most {max_bytes:,}.",
            status=413,
            code="request_too_large",
        )
    return _parse_leaving_messages_raw(content, conversations) or _parse_all(content)


def _parse_all(content: bytes) -> ChatRequest:
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError as e:
        raise ClientError(f"The request body is not valid UTF-8 JSON: {e}.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ClientError("The request body must be a JSON object.", code="invalid_json")
    _check_model(body.get("model"))
    _check_messages(body.get("messages"))
    return _checked(body)


def _checked(body: dict) -> ChatRequest:
    model = _check_model(body.get("model"))
    _check_fields(body)
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise ClientError("`stream` must be true or false.", code="invalid_stream")
    return ChatRequest(body, model, bool(stream))


_TOP_LEVEL = msgspec.json.Decoder(dict[str, msgspec.Raw])


def _parse_leaving_messages_raw(content: bytes, conversations: Conversations | None) -> ChatRequest | None:
    """The request with `messages` checked but left raw; None when it needs the plain parse (any problem,
    so that the plain parse can say what it is)."""
    try:
        top = _TOP_LEVEL.decode(content)
        if "messages" not in top:
            return None
        messages = top["messages"]
        raw = bytes(messages)
        split = conversations.split(raw) if conversations is not None else split_messages(raw)
        body = {key: messages if key == "messages" else orjson.loads(memoryview(value)) for key, value in top.items()}
    except (ValueError, RecursionError):  # msgspec's, orjson's and UTF-8's errors are ValueErrors
        return None
    return _checked(body)._replace(call_refs=split.call_refs(), split=split)


def load_messages(chat: ChatRequest) -> ChatRequest:
    """The request with its messages decoded (in chat.body too), for a repair that changes them."""
    if chat.call_refs is None:
        return chat
    chat.body["messages"] = orjson.loads(memoryview(chat.body["messages"]))
    return chat._replace(call_refs=None)


def encode_body(body: dict) -> bytes:
    """The body as JSON; messages still raw are written as they came. Copied to its own length: msgspec hands back
    its growing buffer, up to half as large again as the JSON, and the flow keeps these bytes as long as it lives
    (a 200 kB request held 300 kB; one memcpy costs microseconds)."""
    return bytes(memoryview(msgspec.json.encode(body)))
