"""A session turn told in words, from the exchange record's `session` alone (a saved flow reads the same):
the comment's prefix and note, the log's lines, and the head of the LLM chat view of a request."""

from __future__ import annotations

from typing import Any

from ..formats.exchange import Exchange

LOG_PREVIEW = 120
REWRITTEN = "history rewritten"  # in the comment: `~comment "history rewritten"` finds these turns


def session_of(ex: Exchange) -> dict | None:
    session = ex.session
    return session if isinstance(session, dict) and session.get("tag") else None


def comment_prefix(ex: Exchange) -> str:
    """`s:3f2a #7 | ` for a flow of a session (a replay of turn 7 too), `s:3f2a title | ` for opencode's title
    or summary request, else ""."""
    session = session_of(ex)
    if not session:
        return ""
    if session.get("turn") is None:
        return f"{session['tag']} {session.get('kind') or 'side'} | "
    return f"{session['tag']} #{session.get('turn')} | "


def comment_note(ex: Exchange) -> str | None:
    """`history rewritten at message 5` when the turn does not extend the one before it; for an edited replay,
    where it differs from the turn it replays (not a rewrite: nothing of the conversation changed)."""
    session = session_of(ex) or {}
    diff = session.get("diff") or {}
    if diff.get("rewritten_at") is None:
        return None
    if diff.get("replay_of") is not None:
        return f"edited: differs from turn {diff['replay_of']} at message {diff['rewritten_at']}"
    return f"{REWRITTEN} at message {diff['rewritten_at']}"


def unchanged_messages(ex: Exchange) -> int:
    """How many leading messages of the request are the same as in the turn it is compared with."""
    diff = (session_of(ex) or {}).get("diff") or {}
    return int(diff.get("new_from") or 0) if diff.get("base_turn") is not None else 0


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def kinds(new: list[dict]) -> str:
    """e.g. `assistant with 2 tool calls, 2 tool results` for the described new messages."""
    parts: list[str] = []
    results = 0
    for e in new:
        if e.get("role") == "tool":
            results += 1
        elif e.get("call_count"):
            parts.append(f"{e.get('role')} with {plural(e['call_count'], 'tool call')}")
        else:
            parts.append(str(e.get("role")))
    return ", ".join(parts + ([plural(results, "tool result")] if results else []))


def what_is_new(diff: dict) -> str:
    if diff.get("replay_of") is not None:
        return replay_text(diff)
    if diff.get("kind"):
        return (
            f"opencode's {diff['kind']} request, beside the conversation (not a turn): "
            f"{plural(diff.get('messages', 0), 'message')}"
        )
    if diff.get("base_turn") is None:
        if diff.get("side"):
            return f"new thread in this session, nothing in common with earlier turns: {plural(diff['messages'], 'message')}"
        return f"first turn: {plural(diff.get('messages', 0), 'message')}, {plural(diff.get('tools', 0), 'tool')}"
    count, new = diff.get("new_count", 0), diff.get("new") or []
    if not count and diff.get("rewritten_at") is None:
        return f"nothing new since turn {diff['base_turn']} (the same messages again)"
    described = f" ({'… ' if count > len(new) else ''}{kinds(new)})" if new else ""
    return f"+{plural(count, 'message')}{described} since turn {diff['base_turn']}"


def replay_text(diff: dict) -> str:
    """A replay compared with the turn it replays."""
    n = diff["replay_of"]
    what = f"the {diff['kind']} request of turn {n}" if diff.get("kind") else f"turn {n}"
    if diff.get("base_turn") is None:
        return f"replay of {what} ({plural(diff.get('messages', 0), 'message')}; that turn is not kept here to compare)"
    count, new = diff.get("new_count", 0), diff.get("new") or []
    if diff.get("rewritten_at") is not None:
        return (
            f"replay of {what}, edited: differs from it at message {diff['rewritten_at']} "
            f"({plural(diff.get('dropped', 0), 'message')} of it changed or gone, {plural(count, 'message')} now)"
        )
    if count:
        return f"replay of {what}, edited: {plural(count, 'message')} added ({kinds(new)})"
    return f"replay of {what}: the same {plural(diff.get('messages', 0), 'message')}"


def notes(diff: dict) -> list[str]:
    out = []
    if diff.get("rewritten_at") is not None and diff.get("replay_of") is None:
        out.append(
            f"{REWRITTEN.upper()} at message {diff['rewritten_at']}: "
            f"{plural(diff.get('dropped', 0), 'message')} of turn {diff.get('base_turn')} from there on are gone or changed"
        )
    if diff.get("system_changed"):
        out.append("system prompt changed")
    tools = [f"+{n}" for n in diff.get("tools_added", [])] + [f"-{n}" for n in diff.get("tools_removed", [])]
    tools += [f"~{n} ({what})" for n, what in (diff.get("tools_changed") or {}).items()]
    if tools:
        out.append("tools " + ", ".join(tools))
    for name, (old, new) in (diff.get("fields") or {}).items():
        out.append(f"{name}: {old if old is not None else '(not sent)'} -> {new if new is not None else '(not sent)'}")
    return out


def message_line(e: dict, limit: int = LOG_PREVIEW) -> str:
    """e.g. `[3] tool result for call_1 (read): <path>...` on one line."""
    role = e.get("role")
    if role == "tool":
        label = f"tool result for {e.get('call_id', '?')}" + (f" ({e['tool']})" if e.get("tool") else "")
    elif e.get("calls"):
        label = f"{role}, tool calls: {', '.join(e['calls'])}"
    else:
        label = str(role)
    text = " ".join(str(e.get("text") or "").split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return f"[{e.get('i')}] {label}: {text}" if text else f"[{e.get('i')}] {label}"


def headline(session: dict) -> str:
    """`turn 7 of s:3f2a: +3 messages (assistant with 2 tool calls, 2 tool results) since turn 6; ...`"""
    diff = session.get("diff") or {}
    if diff.get("replay_of") is not None:
        line = f"{session.get('tag')}: {what_is_new(diff)}"
    elif session.get("turn") is None:
        line = f"{session.get('kind') or 'side'} request of {session.get('tag')}: {what_is_new(diff)}"
    else:
        line = f"turn {session.get('turn')} of {session.get('tag')}: {what_is_new(diff)}"
    return "; ".join([line, *notes(diff)])


def log_lines(ex: Exchange) -> list[str]:
    """The turn's line and one shortened line per new message (none for a first turn: that is the whole chat)."""
    session = session_of(ex)
    if session is None:
        return []
    diff = session.get("diff") or {}
    lines = [f"  {headline(session)}"]
    if diff.get("base_turn") is not None:
        lines += [f"    + {message_line(e)}" for e in diff.get("new") or []]
    return lines


def view_lines(ex: Exchange) -> list[str]:
    """The head of the LLM chat view of a request: what is new in this turn of its session."""
    session = session_of(ex)
    if session is None:
        return []
    where = f"session {session['tag']} = {session.get('id')}"
    if session.get("parent_id"):
        where += f", subagent of {session['parent_id']}"
    diff: dict[str, Any] = session.get("diff") or {}
    if diff.get("replay_of") is not None:
        head = f"compared with turn {diff['replay_of']}, which this replays ({where}):"
    elif session.get("turn") is None:
        head = f"{session.get('kind') or 'side'} request ({where}):"
    else:
        head = f"what is new in turn {session.get('turn')} ({where}):"
    lines = [head, f"  {what_is_new(diff)}"]
    lines += [f"  {note}" for note in notes(diff)]
    if diff.get("base_turn") is not None and diff.get("new"):
        hidden = diff.get("new_count", 0) - len(diff["new"])
        lines += ["  new messages:" + (f" (the last {len(diff['new'])}; {hidden} more before them)" if hidden else "")]
        lines += [f"    {message_line(e, 300)}" for e in diff["new"]]
    return [*lines, "", "the whole conversation:", ""]
