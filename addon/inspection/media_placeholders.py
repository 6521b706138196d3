"""Attachments opencode replaced with text before sending: found in a chat request, with the setting that fixes it.

opencode (1.18) sends an image, PDF, audio or video file only to models whose config says they take it. For a custom
provider's model it has no such facts unless the model's entry in opencode.json has `modalities`, so it replaces
the file with text: `ERROR: Cannot read "shot.png" (this model does not support image input). Inform the user.`
(its message transform), or `[Attached image/png: shot.png]` (when it strips media from a message). The model
then never sees the file, while Gemini could have read it. Report marks such flows and the LLM chat view says so.
"""

from __future__ import annotations

import re

from ..formats.answer import text

# How each of opencode's texts starts; the bytes test is the cheap first look at every request.
MARKERS = (b"[Attached ", b"ERROR: Cannot read ")
_PLACEHOLDER = re.compile(
    r"\[Attached (?:(?:image|audio|video)/[\w.+-]+|application/pdf): [^\]\n]{0,300}\]"
    r"|ERROR: Cannot read [^\n]{1,300}? \(this model does not support (?:image|audio|video|pdf) input\)\."
    r" Inform the user\."
)
MODALITIES = '"modalities": {"input": ["text", "image", "pdf"], "output": ["text"]}'
LIMIT = 5


CANDIDATES = 512  # places a marker's first byte is looked at before one substring search of the rest


def may_have(raw: bytes) -> bool:
    """Whether either of opencode's texts may be in `raw` (a whole request body, often megabytes).

    Each marker starts with a byte that is rare in JSON text (`[`, `E`): finding that byte is memchr-fast, and a
    compare at each place it occurs settles most bodies; a body with more of them than CANDIDATES gets one
    substring search from there. CPython's substring search skips poorly on these markers (their last byte is a
    space): about 0.7 ms per MB each, on the way of every response."""
    return any(_contains(raw, marker) for marker in MARKERS)


def _contains(raw: bytes, marker: bytes) -> bool:
    first = marker[:1]
    at = raw.find(first)
    for _ in range(CANDIDATES):
        if at < 0:
            return False
        if raw.startswith(marker, at):
            return True
        at = raw.find(first, at + 1)
    return at >= 0 and raw.find(marker, at) >= 0


def find(body: object) -> list[str]:
    """opencode's placeholders in the user messages of a chat request body (at most LIMIT, each once)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    found: list[str] = []
    for message in messages if isinstance(messages, list) else ():
        if isinstance(message, dict) and message.get("role") == "user":
            for hit in _PLACEHOLDER.findall(text(message.get("content"))):
                if hit not in found and len(found) < LIMIT:
                    found.append(hit)
    return found


def advice(model: object) -> str:
    """What to write in opencode.json so opencode sends the file itself."""
    name = str(model or "the model").rpartition("/")[2]
    return (
        f"opencode sent an attachment as text because it thinks {name!r} cannot read it: give the model's entry in "
        f"opencode.json (provider.<id>.models.{name}) {MODALITIES} (the kinds it takes)"
    )
