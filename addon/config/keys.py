"""Upstream keys: which key may go to which base URL, where it came from, and how logs show it.

A key travels with the base URL it was configured for: GEMINI_API_KEY with GEMINI_API_BASE or Google's own
endpoints, a provider's `options.apiKey` with that provider's URL, GROQ_API_KEY and the like with litellm's base
for that provider. An alias provider's apiKey is the client's key for this proxy: it never goes upstream.

Pure functions, no mitmproxy.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import urlsplit

GEMINI_ENV = "GEMINI_API_KEY"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# What example configs ship instead of a key: "your-api-key-here", "<your key>", "xxxxxxxx", "sk-...", "...".
_PLACEHOLDER = re.compile(
    r"(?i)(.*\byour[-_ ]?(api[-_ ]?)?key\b.*|<.*>|x{3,}.*|sk-[.x*…]*|\.\.\.|…|changeme|change-me|placeholder|todo)"
)


class Key(NamedTuple):
    """The key a request carries (None: none applies), where it came from, and what to set to give it one."""

    value: str | None
    source: str | None  # "GEMINI_API_KEY", 'provider["KTDS Model"].options.apiKey', None without a key
    hint: str  # the env var or config field to set (or check, when the upstream refuses the key)


def field_path(provider_id: str) -> str:
    """Where a provider's key lives in opencode.json, as a user would look for it."""
    at = f".{provider_id}" if _IDENTIFIER.fullmatch(provider_id) else f'["{provider_id}"]'
    return f"provider{at}.options.apiKey"


def is_google(base: str | None) -> bool:
    """Google's own OpenAI-compatible endpoints (Gemini API, Vertex AI), where GEMINI_API_KEY belongs."""
    host = urlsplit(base or "").hostname or ""
    return host == "generativelanguage.googleapis.com" or host.endswith("aiplatform.googleapis.com")


def origin(base: str | None) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of a base URL; None when it has no host."""
    parts = urlsplit(base or "")
    if not parts.hostname:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = None
    return parts.scheme, parts.hostname, port


def host_of(base: str | None) -> str:
    """host[:port] of a base URL, as "no key for <host>" names it."""
    return urlsplit(base or "").netloc.rpartition("@")[2] or str(base)


def gemini_key(base: str, api_key: str | None, api_base: str | None) -> Key | None:
    """GEMINI_API_KEY when it may go to `base` (GEMINI_API_BASE's origin or Google's), else None."""
    if not (is_google(base) or (api_base and origin(base) == origin(api_base))):
        return None
    return Key(api_key, GEMINI_ENV if api_key else None, GEMINI_ENV)


def choose(*candidates: Key | None) -> Key:
    """The first candidate with a value; else no key, with every candidate's hint."""
    usable = [c for c in candidates if c is not None]
    found = next((c for c in usable if c.value), None)
    if found:
        return found
    hints = list(dict.fromkeys(c.hint for c in usable))
    return Key(None, None, " or ".join(hints) or "a key in opencode.json")


def is_placeholder(key: str | None) -> bool:
    """True for the stand-ins example configs ship instead of a real key."""
    return bool(key and _PLACEHOLDER.fullmatch(key.strip()))


def shown(key: str | None, base: str) -> str:
    """What the flow and the log say of the key a request to `base` carries: masked, or "no key for <host>"."""
    return mask_key(key) if key else f"no key for {host_of(base)}"


def refusal_hint(key: Key, base: str) -> str:
    """The sentence added to a 401/403 from the upstream: which key went to which host, or what to set."""
    if key.value:
        return f"The proxy sent the key from {key.source} ({mask_key(key.value)}) to {host_of(base)}; check it."
    return f"The proxy sent no key to {host_of(base)}: set {key.hint}."


def mask_key(key: str | None) -> str:
    """A key as logs may show it, ASCII only: 'AIza...x9' (at most 6 characters of it), '...' for short keys."""
    if not key:
        return "(none)"
    return "..." if len(key) < 16 else f"{key[:4]}...{key[-2:]}"
