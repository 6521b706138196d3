"""What is new in one turn of a session compared with the turn before it, as small plain data for the flow.

The base of a turn is the latest earlier turn of the session with the same system prompt; failing that, the one
sharing the longest run of leading messages; failing that (opencode's title or summary requests, a new chat) the
turn starts a new thread and has no base. Against its base a turn either extends the history (its messages start
with all of the base's) or rewrites it (compaction, a message in the middle changed, a tool result replaced):
`rewritten_at` is then the message index where the two histories part. Only the new messages are decoded.

The result (`diff`) goes into the exchange record's session["diff"] (formats/exchange.py); its keys are documented
in sessions/addon.py.
"""

from __future__ import annotations

import array
from collections.abc import Sequence
from typing import Any

import orjson

from .turn_digest import RawJSON, Snapshot, ToolShape, ToolShapes

MAX_NEW = 30  # new messages described one by one (the last ones); the rest are counted
PREVIEW = 200  # characters of a new message's text kept in the flow
MAX_CALLS = 10


def common_prefix(a: array.array, b: array.array) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def choose_base(previous: Sequence[tuple[int, Snapshot]], cur: Snapshot) -> tuple[int, Snapshot] | None:
    """The (turn, snapshot) this turn is compared with; `previous` is most recent first."""
    for turn, snap in previous:
        if snap.system == cur.system:
            return turn, snap
    best = max(previous, key=lambda p: common_prefix(p[1].rest, cur.rest), default=None)
    return best if best is not None and common_prefix(best[1].rest, cur.rest) > 0 else None


def diff(
    base: tuple[int, Snapshot] | None, cur: Snapshot, raws: Sequence[RawJSON], shapes: ToolShapes, side: bool
) -> dict[str, Any]:
    """What is new in `cur` against `base`; `side`: the session had earlier turns but none is a base."""
    out: dict[str, Any] = {"messages": cur.messages, "tools": len(cur.tools), "base_turn": None}
    new_from = 0
    if base is None:
        out["side"] = side
    else:
        turn, snap = base
        kept = common_prefix(snap.rest, cur.rest)
        new_from = cur.n_system + kept
        out["base_turn"] = turn
        if kept < len(snap.rest):
            out["rewritten_at"], out["dropped"] = new_from, len(snap.rest) - kept
        if snap.system != cur.system:
            out["system_changed"] = True
        out.update(tool_changes(snap, cur, shapes))
        if changed := field_changes(snap, cur):
            out["fields"] = changed
    out["new_from"], out["new_count"] = new_from, cur.messages - new_from
    out["new"] = new_entries(raws, max(new_from, cur.messages - MAX_NEW))
    return out


def tool_changes(old: Snapshot, new: Snapshot, shapes: ToolShapes) -> dict[str, Any]:
    before, after = dict(old.tools), dict(new.tools)
    out: dict[str, Any] = {}
    if added := [name for name in after if name not in before]:
        out["tools_added"] = added
    if removed := [name for name in before if name not in after]:
        out["tools_removed"] = removed
    changed = {
        name: shape_change(shapes.get(before[name]), shapes.get(key))
        for name, key in after.items()
        if name in before and before[name] != key
    }
    if changed:
        out["tools_changed"] = changed
    return out


def shape_change(old: ToolShape | None, new: ToolShape | None) -> str:
    """e.g. `parameters +offset -limit ~filePath; required filePath -> filePath,offset`."""
    if old is None or new is None:
        return "schema changed"
    parts = []
    if old.description != new.description:
        parts.append("description")
    before, after = dict(old.params), dict(new.params)
    params = [f"+{p}" for p in after if p not in before] + [f"-{p}" for p in before if p not in after]
    params += [f"~{p}" for p in after if p in before and before[p] != after[p]]
    if params:
        parts.append("parameters " + " ".join(params))
    if old.required != new.required:
        parts.append(f"required {','.join(old.required) or '(none)'} -> {','.join(new.required) or '(none)'}")
    return "; ".join(parts) or "schema changed (same parameters)"


def field_changes(old: Snapshot, new: Snapshot) -> dict[str, list[str | None]]:
    """Top-level fields added, removed or changed: name -> [old text or None, new text or None]."""
    before = {name: (key, text) for name, key, text in old.fields}
    after = {name: (key, text) for name, key, text in new.fields}
    return {
        name: [before[name][1] if name in before else None, after[name][1] if name in after else None]
        for name in [*after, *(n for n in before if n not in after)]
        if before.get(name, (None,))[0] != after.get(name, (None,))[0]
    }


def new_entries(raws: Sequence[RawJSON], start: int) -> list[dict[str, Any]]:
    """A short description of each message from `start` on, with tool results named after their calls."""
    names: dict[str, str] = {}
    entries = []
    for i in range(start, len(raws)):
        try:
            message = orjson.loads(memoryview(raws[i]))
        except orjson.JSONDecodeError:
            message = None
        entries.append(entry(i, message if isinstance(message, dict) else {}, names))
    return entries


def entry(i: int, message: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    text = content_text(message.get("content"))
    out: dict[str, Any] = {"i": i, "role": str(message.get("role") or "?"), "chars": len(text)}
    if text:
        out["text"] = text if len(text) <= PREVIEW else text[: PREVIEW - 1] + "…"
    calls = message.get("tool_calls") if isinstance(message.get("tool_calls"), list) else []
    if calls:
        found = [call_name(c) for c in calls]
        names.update((c["id"], n) for c, n in zip(calls, found, strict=True) if isinstance(c, dict) and "id" in c)
        out["calls"], out["call_count"] = found[:MAX_CALLS], len(calls)
    if call_id := message.get("tool_call_id"):
        out["call_id"] = str(call_id)[:80]
        if str(call_id) in names:
            out["tool"] = names[str(call_id)]
    return out


def call_name(call: object) -> str:
    fn = call.get("function") if isinstance(call, dict) else None
    return str(fn.get("name") or "?") if isinstance(fn, dict) else "?"


def content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = (
        text if isinstance(text := p.get("text"), str) else f"[{p.get('type', 'part')}]"
        for p in content
        if isinstance(p, dict)
    )
    return "\n".join(parts)
