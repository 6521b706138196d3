"""Which session a chat request belongs to: opencode's session headers, else a fingerprint of the conversation.

opencode (1.18.x) sends `x-session-affinity: <sessionID>` and `X-Session-Id: <sessionID>` with every request to a
provider that is not opencode's own, and `x-parent-session-id: <parentID>` when the session is a subagent started
by the parent's `task` tool. Claude Code sends `X-Claude-Code-Session-Id`, Codex CLI `session-id`. Clients that send none of these (the openai SDK) are grouped by a fingerprint: a
hash of the system prompt and the first user message, which stay the same while a chat grows turn by turn.

Pure functions: no mitmproxy, no state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import NamedTuple

# opencode's two, then Claude Code's and Codex's (the Anthropic Messages and Responses clients, docs/formats.md).
SESSION_HEADERS = ("x-session-affinity", "x-session-id", "x-claude-code-session-id", "session-id")
PARENT_HEADER = "x-parent-session-id"
MAX_ID = 128  # longer header values are cut: an id is a label here, never trusted for anything else
FINGERPRINT_PREFIX = "fp-"


class SessionKey(NamedTuple):
    id: str
    parent_id: str | None
    source: str  # "header" or "fingerprint"


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()[:MAX_ID]
    return value if value and value.isprintable() else None


def from_headers(headers: Mapping[str, str]) -> SessionKey | None:
    """The session the client named in its headers (case-insensitive names), or None."""
    session = next((v for name in SESSION_HEADERS if (v := _clean(headers.get(name)))), None)
    if session is None:
        return None
    return SessionKey(session, _clean(headers.get(PARENT_HEADER)), "header")


def fingerprint(system_digest: int, first_user_digest: int) -> SessionKey:
    """A session for a client without session headers: the same system prompt and first user message."""
    data = system_digest.to_bytes(8, "little") + first_user_digest.to_bytes(8, "little")
    return SessionKey(FINGERPRINT_PREFIX + hashlib.blake2b(data, digest_size=8).hexdigest(), None, "fingerprint")


def tag(session_id: str, digits: int = 4) -> str:
    """A short label for the flow list, e.g. `s:3f2a`; the same for the same id on every run."""
    return "s:" + hashlib.blake2b(session_id.encode("utf-8", "replace"), digest_size=4).hexdigest()[:digits]
