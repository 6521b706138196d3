"""The proxy's index of sessions: per session its turns' outcomes and the digests of its latest requests.

Bounded like flows are: at most `max_sessions` sessions (the least recently active go first) and at most
`max_turns` turn records in all (the oldest go first; the session keeps its totals and counts what went). 0 means
no limit. No bodies are kept: a turn record holds counts, names and short previews.

Requests beside the conversation are kept apart from its turns, in `side` (`open_side`): opencode's title and
summary requests (turn_kind.py) and replays of a turn (`kind` "replay", `number` the turn it replays). They take
no turn number; their tokens, price and errors count in the session's totals.

For the session page: `sessions()` (newest activity first), `get(id)`, `to_json()`; each Session and Turn has
`to_json()` with plain data. Pure: no mitmproxy.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from . import keys
from .keys import SessionKey
from .turn_digest import Snapshot

THREADS = 4  # snapshots kept per session: its main conversation and side requests (title, summary)
MAX_CHILDREN = 100


@dataclass(slots=True)
class Turn:
    number: int
    flow_id: str
    started: float  # epoch seconds, when the request came
    new: str = ""  # what was new, one line (turn_text.headline)
    rewritten_at: int | None = None
    client_model: str = ""
    upstream_model: str = ""
    finished: float | None = None
    finish_reason: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int = 0
    price: float | None = None
    first_chunk_ms: float | None = None
    error: str | None = None
    tool_calls: int = 0
    tool_findings: int = 0
    answer: dict[str, Any] = field(default_factory=dict)  # text/reasoning previews, tool calls (name, arguments)
    diff: dict[str, Any] = field(default_factory=dict)  # what was new, as in the flow (turn_diff; turn_text tells it)
    kind: str = ""  # "" for a turn; "title", "summary" or "replay" for a request beside the conversation
    snap: Snapshot | None = field(default=None, repr=False, compare=False)  # its digests, for a replay to compare

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__ if name != "snap"}


@dataclass(slots=True)
class Session:
    id: str
    parent_id: str | None
    tag: str
    source: str  # "header" or "fingerprint"
    started: float
    last_activity: float
    turns_seen: int = 0  # turn numbers handed out (the last turn's number)
    turns: deque[Turn] = field(default_factory=deque)  # the records still kept, in order
    dropped_turns: int = 0
    client_model: str = ""
    upstream_model: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int = 0
    price: float | None = None
    errors: int = 0
    tool_calls: int = 0
    tool_findings: int = 0
    children: list[str] = field(default_factory=list)
    side: deque[Turn] = field(default_factory=deque)  # title, summary and replay requests, in order
    snapshots: list[tuple[int, Snapshot]] = field(default_factory=list)  # (turn, snapshot), most recent first

    def remember(self, turn: int, snap: Snapshot) -> None:
        """Keep `snap` as the latest of its thread (same system prompt), and at most THREADS threads."""
        kept = [(t, s) for t, s in self.snapshots if s.system != snap.system]
        self.snapshots = [(turn, snap), *kept[: THREADS - 1]]

    def add_outcome(self, turn: Turn) -> None:
        self.client_model, self.upstream_model = turn.client_model or self.client_model, turn.upstream_model
        self.tokens_in += turn.tokens_in
        self.tokens_out += turn.tokens_out
        self.cached_tokens += turn.cached_tokens
        if turn.price is not None:
            self.price = (self.price or 0.0) + turn.price
        self.errors += turn.error is not None
        self.tool_calls += turn.tool_calls
        self.tool_findings += turn.tool_findings
        if turn.finished:
            self.last_activity = max(self.last_activity, turn.finished)

    def to_json(self, turns: bool = True) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__slots__ if name not in ("turns", "snapshots", "side")}
        out["turns"], out["duration"] = self.turns_seen, self.last_activity - self.started
        if turns:
            out["turn_records"] = [t.to_json() for t in self.turns]
            out["side_records"] = [t.to_json() for t in self.side]
        return out

    def turn(self, number: int) -> Turn | None:
        """The kept record of turn `number`."""
        return next((t for t in reversed(self.turns) if t.number == number), None)


class SessionIndex:
    def __init__(self, max_sessions: int = 2000, max_turns: int = 2000) -> None:
        self.max_sessions, self.max_turns = max_sessions, max_turns
        self.by_id: OrderedDict[str, Session] = OrderedDict()  # least recently active first
        self.records: deque[tuple[Session, Turn]] = deque()  # every kept turn record, oldest first
        self.dropped_sessions = 0
        self.dropped_turns = 0
        self.tags: dict[str, str] = {}  # tag -> session id, so that two live sessions never share a tag

    def get(self, session_id: str) -> Session | None:
        return self.by_id.get(session_id)

    def sessions(self) -> list[Session]:
        """Every kept session, the most recently active first."""
        return list(reversed(self.by_id.values()))

    def to_json(self) -> dict[str, Any]:
        return {
            "sessions": [s.to_json() for s in self.sessions()],
            "dropped_sessions": self.dropped_sessions,
            "dropped_turns": self.dropped_turns,
            "limits": {"max_sessions": self.max_sessions, "max_turns": self.max_turns},
        }

    def session(self, key: SessionKey, now: float | None = None, tag: str | None = None) -> Session:
        """The session of `key`, made when new; marked as the most recently active."""
        now = time.time() if now is None else now
        found = self.by_id.get(key.id)
        if found is None:
            found = Session(key.id, key.parent_id, tag or self.free_tag(key.id), key.source, now, now)
            self.by_id[key.id] = found
            self.tags[found.tag] = key.id
            parent = self.by_id.get(key.parent_id) if key.parent_id else None
            if parent is not None and len(parent.children) < MAX_CHILDREN:
                parent.children.append(key.id)
            self.trim()
        else:
            found.last_activity = max(found.last_activity, now)
            self.by_id.move_to_end(key.id)
        return found

    def free_tag(self, session_id: str) -> str:
        for digits in (4, 6, 8):
            tag = keys.tag(session_id, digits)
            if self.tags.get(tag, session_id) == session_id:
                return tag
        return keys.tag(session_id, 8)

    def open_turn(self, session: Session, flow_id: str, started: float, number: int | None = None) -> Turn:
        """A record for the session's next turn (or turn `number`, when rebuilt from a saved flow)."""
        session.turns_seen = max(session.turns_seen + 1 if number is None else number, session.turns_seen)
        turn = Turn(session.turns_seen if number is None else number, flow_id, started)
        session.turns.append(turn)
        self.records.append((session, turn))
        self.trim()
        return turn

    def open_side(self, session: Session, flow_id: str, started: float, kind: str, number: int = 0) -> Turn:
        """A record for a request beside the conversation: `kind` title, summary or replay (of turn `number`)."""
        turn = Turn(number, flow_id, started, kind=kind)
        session.side.append(turn)
        self.records.append((session, turn))
        self.trim()
        return turn

    def trim(self) -> None:
        while self.max_sessions and len(self.by_id) > self.max_sessions:
            _, old = self.by_id.popitem(last=False)
            self.tags.pop(old.tag, None)
            self.dropped_sessions += 1
        while self.max_turns and len(self.records) > self.max_turns:
            session, turn = self.records.popleft()
            if session.turns and session.turns[0] is turn:
                session.turns.popleft()
                session.dropped_turns += 1
            elif session.side and session.side[0] is turn:
                session.side.popleft()
            self.dropped_turns += 1

    def set_limits(self, max_sessions: int, max_turns: int) -> None:
        self.max_sessions, self.max_turns = max_sessions, max_turns
        self.trim()
