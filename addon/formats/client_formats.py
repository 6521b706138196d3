"""The client formats besides chat completions: which paths speak them, what they refuse, how their errors look.

OpenAI Responses (`POST /v1/responses`, `/responses`) and Anthropic Messages (`POST /v1/messages`, `/messages`,
any query such as `?beta=true`; `/v1/messages/count_tokens` answered by the proxy). Pure functions: the request
side (request/ingress.py) and the response side (response/egress.py) use them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from .errors import error_body, error_type

RESPONSES = "openai_responses"
ANTHROPIC = "anthropic"
COUNT_TOKENS = "anthropic_count_tokens"

_PATHS = {
    "/v1/responses": RESPONSES,
    "/responses": RESPONSES,
    "/v1/messages": ANTHROPIC,
    "/messages": ANTHROPIC,
    "/v1/messages/count_tokens": COUNT_TOKENS,
    "/messages/count_tokens": COUNT_TOKENS,
}
# Responses tool types litellm turns into chat tools (web_search into web_search_options, which Gemini's
# OpenAI-compatible endpoint does not take: dropped there, with a note).
RESPONSES_TOOL_TYPES = frozenset(("function", "custom", "namespace", "web_search", "web_search_preview"))
# Anthropic's server tools run on Anthropic's side; no other upstream can run them.
ANTHROPIC_SERVER_TOOL_PREFIXES = ("web_search_", "web_fetch_", "code_execution_", "computer_", "memory_")


def client_format(path: str) -> str | None:
    """The format a request path speaks (RESPONSES, ANTHROPIC, COUNT_TOKENS), None for any other path."""
    return _PATHS.get(path.split("?", 1)[0].rstrip("/") or "/")


class Refusal(NamedTuple):
    status: int
    message: str
    code: str


def check_responses(body: dict[str, Any]) -> Refusal | None:
    """What the proxy cannot do for a Responses request, or None."""
    if body.get("previous_response_id"):
        return Refusal(
            400,
            "previous_response_id is not supported: this proxy keeps no responses. Send the whole conversation "
            "in `input` (Codex does; with the openai SDK, send store=false and the earlier items).",
            "previous_response_id_unsupported",
        )
    for i, tool in enumerate(body.get("tools") or ()):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind not in RESPONSES_TOOL_TYPES:
            return Refusal(
                400,
                f"tools[{i}] has type {kind!r}, which the proxy cannot give the model; it takes "
                f"{', '.join(sorted(RESPONSES_TOOL_TYPES))}.",
                "unsupported_tool_type",
            )
    return None


def check_anthropic(body: dict[str, Any]) -> Refusal | None:
    """What the proxy cannot do for an Anthropic Messages request, or None."""
    if not isinstance(body.get("messages"), list):
        return Refusal(400, "messages: a list of message objects is required.", "invalid_request_error")
    for i, tool in enumerate(body.get("tools") or ()):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if isinstance(kind, str) and kind.startswith(ANTHROPIC_SERVER_TOOL_PREFIXES):
            return Refusal(
                400,
                f"tools[{i}] is Anthropic's server tool {kind!r}, which only Anthropic's API runs; the proxy's "
                "upstream cannot.",
                "unsupported_tool_type",
            )
    return None


# Anthropic's error types by HTTP status (https://docs.anthropic.com/en/api/errors).
ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def anthropic_error_type(status: int) -> str:
    return error_type(status, ANTHROPIC_TYPES)


def anthropic_error(message: str, status: int) -> dict[str, Any]:
    return {"type": "error", "error": {"type": anthropic_error_type(status), "message": message}}


def error_in_format(fmt: str | None, message: str, status: int, code: str | None = None) -> bytes:
    """An error body in the client's format (OpenAI's shape for chat and Responses)."""
    if fmt in (ANTHROPIC, COUNT_TOKENS):
        return orjson.dumps(anthropic_error(message, status))
    return error_body(message, status, code)


def openai_error_message(body: bytes) -> tuple[str, str | None] | None:
    """(message, code) of an OpenAI-shaped error body, else None."""
    try:
        error = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return None
    code = error.get("code")
    return error["message"], str(code) if code is not None else None


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One named SSE event (both formats name their events)."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
