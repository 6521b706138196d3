"""What counts as "the same request" when answers are played back from a recording (offline_replay.py).

Two runs of the same opencode task differ in what the client or the upstream makes up each time: tool-call ids, the
thought signatures packed into them (and restored as `extra_content`), dates and times, UUIDs, and request fields
that carry session or user ids. `normalized` removes exactly those from an upstream request body; `request_key`
hashes what is left with the method and the upstream path. `difference` says, in one sentence, how a request differs
from the closest recorded one. Pure functions: no mitmproxy.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

# Request fields that name a session, a user or a cache entry, not what is asked.
VOLATILE_FIELDS = frozenset(("user", "metadata", "prompt_cache_key", "safety_identifier", "store"))
_VOLATILE_TEXT = (
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"), "<date>"),
    (
        re.compile(
            r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\w* (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\w* \d{1,2},? \d{4}"
        ),
        "<date>",
    ),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}\b"), "<time>"),
)


def normalized_text(text: str) -> str:
    for pattern, placeholder in _VOLATILE_TEXT:
        text = pattern.sub(placeholder, text)
    return text


def _content(content: Any) -> Any:
    if isinstance(content, str):
        return normalized_text(content)
    if isinstance(content, list):
        return [
            {k: _content(v) for k, v in part.items()} if isinstance(part, dict) else _content(part) for part in content
        ]
    return content


def _message(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    out = {k: _content(v) for k, v in message.items() if k not in ("tool_calls", "tool_call_id", "extra_content")}
    calls = message.get("tool_calls")
    if isinstance(calls, list):  # ids and signatures dropped; the name and the arguments are what was asked
        out["tool_calls"] = [
            [str(fn.get("name")), normalized_text(str(fn.get("arguments")))]
            for call in calls
            if isinstance(call, dict) and isinstance(fn := call.get("function"), dict)
        ]
    return out


def normalized(body: bytes) -> Any:
    """The body without what changes between runs of the same task; non-JSON bodies stay as they are."""
    try:
        parsed = orjson.loads(body or b"null")
    except orjson.JSONDecodeError:
        return body.hex()
    if not isinstance(parsed, dict):
        return parsed
    out = {k: v for k, v in parsed.items() if k not in VOLATILE_FIELDS}
    if isinstance(out.get("messages"), list):
        out["messages"] = [_message(m) for m in out["messages"]]
    return out


def request_key(method: str, scheme: str, path: str, form: Any) -> str:
    """The recording's key for a request: method, scheme, upstream path (with its query) and the normalized body."""
    data = orjson.dumps([method, scheme, path, form], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()[:32]


def _clip(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def difference(form: Any, path: str, recorded: list[tuple[str, Any]]) -> str:
    """Why no recorded request (path, normalized body) is this one, said against the closest."""
    same_path = [f for p, f in recorded if p == path]
    if not same_path:
        return f"the recording has no request to {path}"
    if not isinstance(form, dict):
        return f"the recording has {len(same_path)} request(s) to {path}, none with this body"
    model = form.get("model")
    same_model = [f for f in same_path if isinstance(f, dict) and f.get("model") == model]
    if not same_model:
        models = sorted({str(f.get("model")) for f in same_path if isinstance(f, dict)})
        return f"the recording has no request for model {model!r} (it has {', '.join(models)})"
    mine = form.get("messages") or []

    def agreed(other: dict) -> int:
        theirs, n = other.get("messages") or [], 0
        while n < min(len(mine), len(theirs)) and mine[n] == theirs[n]:
            n += 1
        return n

    closest = max(same_model, key=agreed)
    n, theirs = agreed(closest), closest.get("messages") or []
    if n < len(mine) or n < len(theirs):
        now = _clip(mine[n]) if n < len(mine) else "(no message)"
        then = _clip(theirs[n]) if n < len(theirs) else "(no message)"
        return f"the closest recorded request agrees on {n} message(s); messages[{n}] is now {now}, recorded {then}"
    fields = sorted(k for k in set(form) | set(closest) if k != "messages" and form.get(k) != closest.get(k))
    return f"the closest recorded request has the same messages but differs in {', '.join(fields)}"
