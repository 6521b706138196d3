"""Carry Gemini 3 thought signatures through clients that drop them, inside the tool-call id.

Gemini returns ``extra_content: {"google": {"thought_signature": ...}}`` on a tool call (the first of a
parallel set) and, for Gemini 3, rejects the next request with 400 when the assistant turn comes back
without it. opencode drops ``extra_content`` but echoes tool-call ids, so responses get the signature
appended to the id (``id + "__thought__" + signature``, litellm's convention) and requests get it split
off again and put back where Gemini expects it. Stateless: everything needed travels in the ids.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["BYPASS", "SEPARATOR", "may_restore", "needs_signatures", "pack_tool_calls", "restore_request", "split_id"]

SEPARATOR = "__thought__"
SEPARATOR_BYTES = SEPARATOR.encode()
# Google's documented placeholder for function calls whose signature is unknown (history from another
# model); see https://ai.google.dev/gemini-api/docs/thought-signatures (FAQ). Degrades quality, so it is
# only used where Gemini would otherwise reject the request.
BYPASS = "skip_thought_signature_validator"

_GEMINI_MAJOR = re.compile(r"gemini-(\d{1,2})(?![\d])")


def needs_signatures(upstream_model: str) -> bool:
    """True for Gemini models (major version >= 3) that reject function calls without a signature."""
    match = _GEMINI_MAJOR.search(upstream_model.lower()) if isinstance(upstream_model, str) else None
    return match is not None and int(match.group(1)) >= 3


def split_id(call_id: str) -> tuple[str, str | None]:
    """Split a packed id into the plain id and the signature (None when there is none)."""
    plain, sep, signature = call_id.partition(SEPARATOR)
    return plain, (signature or None) if sep else None


def _signature(call: dict[str, Any]) -> str | None:
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) and signature else None


def _set_signature(call: dict[str, Any], signature: str) -> bool:
    """Put ``signature`` into ``call["extra_content"]["google"]``; False if those are not objects."""
    extra = call.get("extra_content")
    if extra is None:
        extra = call["extra_content"] = {}
    google = extra.get("google") if isinstance(extra, dict) else False
    if google is None:
        google = extra["google"] = {}
    if not isinstance(google, dict):
        return False
    google["thought_signature"] = signature
    return True


def pack_tool_calls(tool_calls: list[dict[str, Any]]) -> list[str]:
    """Outgoing (response message or stream delta): append each call's signature to its id, in place."""
    if not isinstance(tool_calls, list):
        return []
    notes: list[str] = []
    for call in tool_calls:
        if not isinstance(call, dict):
            continue
        signature, call_id = _signature(call), call.get("id")
        if signature and isinstance(call_id, str) and SEPARATOR not in call_id:
            call["id"] = call_id + SEPARATOR + signature
            notes.append(f"packed thought signature into id of call {call_id}")
    return notes


def may_restore(call_refs: bytes | None, upstream_model: str) -> bool:
    """Could restore_request change anything? `call_refs` holds the raw tool_calls / tool_call_id values of a
    request whose messages are not decoded yet (None: decoded, so look). Without a packed id (or an escape
    that could spell one) there is nothing to unpack, and only models that need signatures get the bypass."""
    if call_refs is None:
        return True
    if not call_refs:
        return False
    return needs_signatures(upstream_model) or SEPARATOR_BYTES in call_refs or b"\\u" in call_refs


def restore_request(body: dict[str, Any], upstream_model: str) -> list[str]:
    """Incoming request: unpack ids into ``extra_content`` signatures and plain ids, in place.

    Where the first tool call of an assistant message has no signature and ``upstream_model`` needs one,
    :data:`BYPASS` is set instead. Parts of unexpected shape are left alone.
    """
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return []
    bypass = needs_signatures(upstream_model)
    notes: list[str] = []
    unpacked = 0
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role == "assistant":
            notes += _restore_assistant(message, bypass)
        elif role == "tool":
            unpacked += _restore_tool(message)
    if unpacked:
        notes.append(f"restored plain tool_call_id in {unpacked} tool message(s)")
    return notes


def _restore_assistant(message: dict[str, Any], bypass: bool) -> list[str]:
    tool_calls = message.get("tool_calls")
    if not isinstance(tool_calls, list):
        return []
    notes: list[str] = []
    for position, call in enumerate(tool_calls):
        if not isinstance(call, dict):
            continue
        call_id = call.get("id")
        plain, signature = split_id(call_id) if isinstance(call_id, str) else (call_id, None)
        if plain != call_id:
            call["id"] = plain
        if signature and not _signature(call) and _set_signature(call, signature):
            notes.append(f"restored thought signature for call {plain}")
        elif position == 0 and bypass and not _signature(call) and _set_signature(call, BYPASS):
            notes.append(f"bypass signature for call {plain}")
        elif plain != call_id:
            notes.append(f"restored plain id for call {plain}")
    return notes


def _restore_tool(message: dict[str, Any]) -> int:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or SEPARATOR not in call_id:
        return 0
    message["tool_call_id"] = split_id(call_id)[0]
    return 1
