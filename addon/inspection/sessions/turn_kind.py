"""Requests beside a session's conversation: opencode's title and summary (compaction) agents.

Beside each conversation opencode asks its model for a session title (the title agent: no tools, a system prompt
"You are a title generator. You output ONLY a thread title…", then "Generate a title for this conversation:" and
the user's first message), and, when the context fills up or on /compact, for a summary of the conversation (the
compaction and summary agents: "You are a helpful AI assistant tasked with summarizing conversations…", the
conversation, then a request for a summary or "a detailed prompt for continuing our conversation"). These are not
turns of the conversation: the session index keeps them apart (addon.py) and tells them by name.

Read from the leading bytes of the system prompt and of the last user message (JSON text, escapes and all), so
any version's wording of these agents fits, not one exact string. A request that offers tools is an agent's
turn unless its own system prompt says it is one of these. Pure functions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .turn_digest import RawJSON

TITLE, SUMMARY = "title", "summary"
KINDS = (TITLE, SUMMARY)
HEAD = 1500  # bytes of a message read: the instructions come first

# In a system prompt: the agent's own description of its task.
_TITLE = re.compile(
    r"title generator|generat\w* (?:a |an |the )?(?:brief |short |concise |descriptive )?(?:thread |session |"
    r"conversation |chat )?title\b|output only (?:a |the )?(?:thread |session )?title\b",
    re.IGNORECASE,
)
_SUMMARY = re.compile(
    r"(?:tasked with|you) summari[sz]\w* (?:\w+ ){0,3}(?:conversations?|sessions?|threads?|chats?)|"
    r"summari[sz]e what was done|compaction agent|conversation (?:summary|compaction) (?:agent|assistant)",
    re.IGNORECASE,
)
# In the last user message of a request without tools: what a client asks these agents for.
_ASK_TITLE = re.compile(
    r"generate (?:a |the )?(?:\w+ )?title for (?:this|the|our) (?:conversation|session|thread|chat)", re.IGNORECASE
)
_ASK_SUMMARY = re.compile(
    r"prompt for continuing (?:our|the|this) conversation|"
    r"(?:summari[sz]e|summary of) (?:this|the|our) (?:whole |entire )?(?:conversation|session|chat) (?:above|so far)",
    re.IGNORECASE,
)


def text_head(raw: RawJSON) -> str:
    return bytes(memoryview(raw)[:HEAD]).decode("utf-8", "ignore")


def side_kind(system: Sequence[RawJSON], last_user: RawJSON | None, has_tools: bool) -> str | None:
    """ "title" or "summary" for a request of those agents, else None (a turn of the conversation). `system`: the
    leading system messages (raw JSON), `last_user`: the last user message (raw JSON), `has_tools`: tools offered."""
    head = " ".join(text_head(raw) for raw in system[:2])
    if _TITLE.search(head):
        return TITLE
    if _SUMMARY.search(head):
        return SUMMARY
    if has_tools or last_user is None:
        return None
    asked = text_head(last_user)
    if _ASK_TITLE.search(asked):
        return TITLE
    if _ASK_SUMMARY.search(asked):
        return SUMMARY
    return None
