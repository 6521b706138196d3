"""The session page's content from the session index: which session sits under which, which turn of a parent
started which subagent, and the small formatting the templates use. Pure: no mitmproxy, no HTML.

A subagent sits under its parent when the parent is still kept (else it is listed on its own and says whose it
was), and under the parent's turn whose answer called the `task` tool last before the subagent began.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from .. import turn_text
from .index import Session, SessionIndex, Turn

TASK_TOOL = "task"  # opencode's tool that starts a subagent session


@dataclass(slots=True)
class Row:
    """A session in the list, with its depth under its top-level session."""

    session: Session
    depth: int


@dataclass(slots=True)
class TurnView:
    turn: Turn
    what_is_new: str
    notes: list[str]
    new_messages: list[str]
    calls: list[dict[str, Any]]  # name, id, arguments (pretty), findings
    other_findings: list[str]
    subagents: list[Session] = field(default_factory=list)


def children_of(index: SessionIndex) -> dict[str, list[Session]]:
    """parent id -> its kept subagent sessions, the earliest first."""
    out: dict[str, list[Session]] = {}
    for s in sorted(index.sessions(), key=lambda s: s.started):
        if s.parent_id and s.parent_id != s.id and index.get(s.parent_id) is not None:
            out.setdefault(s.parent_id, []).append(s)
    return out


def family_rows(index: SessionIndex) -> list[list[Row]]:
    """Top-level sessions (the most recently active first), each with its subagents nested below it."""
    children = children_of(index)
    families = []
    for top in index.sessions():
        if top.parent_id and index.get(top.parent_id) is not None and top.parent_id != top.id:
            continue
        rows: list[Row] = []
        stack, seen = [(top, 0)], set()
        while stack:
            session, depth = stack.pop()
            if session.id in seen:
                continue
            seen.add(session.id)
            rows.append(Row(session, depth))
            stack += [(c, depth + 1) for c in reversed(children.get(session.id, []))]
        families.append(rows)
    return families


def started_by(parent: Session, subagents: list[Session]) -> tuple[dict[int, list[Session]], list[Session]]:
    """turn number -> the subagents its `task` call started; and the subagents no kept turn accounts for."""
    task_turns = [t for t in parent.turns if any(c.get("name") == TASK_TOOL for c in calls_of(t))]
    placed: dict[int, list[Session]] = {}
    unplaced = []
    for child in subagents:
        before = [t for t in task_turns if t.started <= child.started]
        if before:
            placed.setdefault(before[-1].number, []).append(child)
        else:
            unplaced.append(child)
    return placed, unplaced


def calls_of(turn: Turn) -> list[dict[str, Any]]:
    calls = turn.answer.get("tool_calls")
    return [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []


def turn_views(session: Session, subagents: list[Session]) -> tuple[list[TurnView], list[Session]]:
    """The timeline of a session's kept turns; and the subagents not placed under one of them."""
    placed, unplaced = started_by(session, subagents)
    views = []
    for turn in session.turns:
        diff = turn.diff or {}
        findings = [str(f) for f in turn.answer.get("findings") or []]
        calls, used = [], set()
        for call in calls_of(turn):
            mine = [f for f in findings if call.get("id") and f"({call['id']})" in f]
            used.update(mine)
            calls.append({**call, "arguments": pretty_arguments(call.get("arguments")), "findings": mine})
        views.append(
            TurnView(
                turn,
                turn_text.what_is_new(diff) if diff else turn.new,
                turn_text.notes(diff) if diff else [],
                [turn_text.message_line(e, 300) for e in diff.get("new") or []],
                calls,
                [f for f in findings if f not in used],
                placed.get(turn.number, []),
            )
        )
    return views, unplaced


def pretty_arguments(text: Any) -> str:
    """Tool-call arguments as indented JSON; as they came when they are not JSON (or were cut short)."""
    try:
        return json.dumps(json.loads(str(text or "")), indent=2, ensure_ascii=False)
    except ValueError:
        return str(text or "")


def clock(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if epoch else "—"


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 10:
        return f"{value:.2f} s"
    return f"{value:.1f} s" if value < 600 else f"{value / 60:.0f} min"


def milliseconds(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def money(value: float | None) -> str:
    return "—" if value is None else f"${value:.4f}"


def number(value: int | None) -> str:
    return f"{value or 0:,}"
