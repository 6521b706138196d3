"""OpenAI-shaped errors: the bodies the proxy answers with, and Gemini's errors reshaped into them.

OpenAI clients (the openai SDKs, opencode's AI SDK) read `{"error": {"message", "type", "code"}}`. Gemini's
OpenAI-compatible endpoint wraps its errors in a list (`[{"error": {"code", "message", "status", "details"}}]`),
which those clients cannot read, so every error that reaches a client goes through here.
"""

from __future__ import annotations

import orjson
from mitmproxy import http

# OpenAI's error types by HTTP status (what the openai SDK maps to its exception classes).
TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
}


def error_type(status: int, types: dict[int, str] = TYPE_BY_STATUS) -> str:
    """The error type for an HTTP status: OpenAI's by default, or from another API's table (client_formats.py)."""
    if status in types:
        return types[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def error_body(message: str, status: int, code: str | int | None = None, type_: str | None = None) -> bytes:
    """An OpenAI-shaped error body."""
    error = {"message": message, "type": type_ or error_type(status), "code": code}
    return orjson.dumps({"error": error})


def error_response(
    message: str, status: int, code: str | int | None = None, headers: dict[str, str] | None = None
) -> http.Response:
    """An OpenAI-shaped error response, as the proxy answers a client itself."""
    return http.Response.make(
        status, error_body(message, status, code), {"content-type": "application/json", **(headers or {})}
    )


def sse_error_event(message: str, status: int, code: str | None = None) -> bytes:
    """A final SSE event that tells a streaming client the stream failed, in the shape OpenAI streams use."""
    return b"data: " + error_body(message, status, code) + b"\n\n"


def _google_error(parsed: object) -> dict | None:
    """The inner `error` object of a Google error body (list-wrapped or not), else None."""
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        return parsed["error"]
    return None


def normalize_upstream_error(status: int, body: bytes) -> bytes | None:
    """Reshape an upstream error body into OpenAI's shape; None when it already has that shape.

    Google's `status` text (e.g. INVALID_ARGUMENT) becomes the `code`, and its message is kept as is. A body that
    is not JSON at all (an HTML error page from a gateway) becomes a message quoting its start.
    """
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body[:500].decode("utf-8", "replace").strip() or "(empty body)"
        return error_body(f"Upstream answered {status} with a non-JSON body: {text}", status, "upstream_error")
    error = _google_error(parsed)
    if error is None:
        return error_body(f"Upstream answered {status}: {body[:500].decode('utf-8', 'replace')}", status)
    if isinstance(parsed, dict) and "type" in error and "status" not in error:
        return None  # already OpenAI-shaped
    message = str(error.get("message") or f"Upstream answered {status}.")
    code = error.get("status") or error.get("code")
    if isinstance(parsed, dict) and isinstance(error.get("code"), str):
        code = error["code"]
    return error_body(message, status, code if isinstance(code, (str, int)) else None)


def with_hint(body: bytes, hint: str) -> bytes:
    """An OpenAI-shaped error body with `hint` added to its message; other bodies unchanged."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return body
    error["message"] = f"{error.get('message') or ''} ({hint})".lstrip()
    return orjson.dumps(parsed)
