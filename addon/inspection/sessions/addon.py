"""Sessions: every chat flow is a numbered turn of a session, and knows what is new since the turn before.

A request's session comes from opencode's headers or a fingerprint of the conversation (keys.py); its
digests are compared with the session's previous turn (turn_digest.py, turn_diff.py). The work runs right after the
request has gone upstream (`loop.call_soon`), while the upstream thinks, not between the client and its answer;
with `translate_verbosity` full or chunks it runs at once, since the request's log needs it. The outcome (tokens,
price, errors, tool calls) is added to the index after the answer (`index`, a SessionIndex, is what the session
page reads). Flows read back from a file (`mitmdump -nr`, `mitmweb --rfile`) rebuild the index from what they
stored. The session headers are left as they are: they go upstream unchanged.

A turn is read from the client's messages as routing split them (formats/conversation.py; also for the native
API's flows, whose request upstream is Gemini's own format), else from the request body as an OpenAI chat body;
capture mode, whose flows hold each provider's own format, passes `chat_body` to give its reading of the request
in that shape (capture/recorder.py).

What this adds to the flow's exchange record (formats/exchange.py; kept in -w files), as `session`, a dict:
  id           the session id: opencode's x-session-affinity / X-Session-Id, or "fp-<16 hex>" (a fingerprint)
  parent_id    x-parent-session-id (the session whose `task` tool started this one), or None
  source       "header" or "fingerprint"
  tag          the short label in the flow's comment, "s:3f2a" (6 or 8 hex when 4 are taken by another session)
  turn         1, 2, 3 ... in arrival order within the session
  diff         what is new against the base turn (turn_diff), small:
    messages, tools        how many the request has
    base_turn              the turn compared with; None for a first turn, or `side` True for a new thread
    new_from, new_count    index of the first new message, how many are new
    new                    the last (at most 30) new messages: i, role, chars, text (200 chars), calls (tool
                           names), call_count, call_id and tool (for a tool result)
    rewritten_at, dropped  where the history parts from the base turn's, and how many of its messages went
    system_changed         True when the system prompt differs
    tools_added, tools_removed, tools_changed   names; changed: name -> what changed in the schema
    fields                 request field -> [old, new] short texts (None: not sent)
The flow's comment starts with "s:3f2a #7 | " and says "history rewritten at message N" for a rewritten turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from mitmproxy import ctx, http

from ...formats.exchange import Exchange
from .. import toolcheck, turn_text
from ..client_body import client_body
from ..summary import price
from . import keys, turn_kind
from .index import Session, SessionIndex, Turn
from .turn_diff import choose_base, diff
from .turn_digest import RawJSON, Snapshot, ToolShapes, read_request, read_split, role_of

logger = logging.getLogger(__name__)

ANSWER_TEXT, CALL_ARGUMENTS, MAX_CALLS = 2000, 2000, 20


def request_body(flow: http.HTTPFlow) -> bytes:
    """The flow's request body, an OpenAI chat body in the translation proxy."""
    return flow.request.raw_content or b""


def side_kind_of(snap: Snapshot, raws: Sequence[RawJSON]) -> str | None:
    """turn_kind.side_kind of a request: "title", "summary" or None."""
    last_user = None
    if not snap.tools:  # only then is the last user message read (an agent's turn offers tools)
        last_user = next((raw for raw in reversed(raws) if role_of(raw) == "user"), None)
    return turn_kind.side_kind(raws[: snap.n_system], last_user, bool(snap.tools))


class Sessions:
    def __init__(self, chat_body: Callable[[http.HTTPFlow], bytes] = request_body) -> None:
        self.chat_body = chat_body  # the request as an OpenAI chat body; raises ValueError when it is none
        self.index = SessionIndex()
        self.shapes = ToolShapes()
        self.scheduled: weakref.WeakKeyDictionary[http.HTTPFlow, asyncio.Handle] = weakref.WeakKeyDictionary()
        self.open: weakref.WeakKeyDictionary[http.HTTPFlow, tuple[Session, Turn]] = weakref.WeakKeyDictionary()

    def configure(self, updated: set[str]) -> None:
        if "translate_keep_flows" in updated:  # FlowRetention's option: sessions are kept like flows
            keep = ctx.options.translate_keep_flows
            self.index.set_limits(keep, keep)

    def request(self, flow: http.HTTPFlow) -> None:
        ex = Exchange.find(flow)
        if ex is None:
            return
        if flow.response or flow.error or not flow.live or ex.client_model is None or ex.fallback_of is not None:
            ex.conversation = None  # routing's split is for this turn only: a kept flow keeps no second copy
            return
        if getattr(ctx.options, "translate_verbosity", "summary") == "summary":
            try:
                self.scheduled[flow] = asyncio.get_running_loop().call_soon(self.begin_turn, flow)
                return
            except RuntimeError:  # no event loop: a unit test calling the hook
                pass
        self.begin_turn(flow)

    def begin_turn(self, flow: http.HTTPFlow) -> None:
        self.scheduled.pop(flow, None)
        ex = Exchange.of(flow)
        replayed = ex.session if ex.replay is not None and isinstance(ex.session, dict) else None
        try:
            snap, raws = self.read(flow, ex)
        except ValueError:
            return
        key = keys.from_headers(flow.request.headers) or keys.fingerprint(snap.system, snap.first_user)
        started = ex.t_request or time.time()
        if replayed is not None and isinstance(replayed.get("turn"), int) and replayed.get("id"):
            key = keys.SessionKey(str(replayed["id"]), replayed.get("parent_id"), str(replayed["source"]))
            return self.begin_replay(flow, ex, self.index.session(key, started), replayed, snap, raws)
        session = self.index.session(key, started)
        kind = replayed.get("kind") if replayed is not None else side_kind_of(snap, raws)
        if kind in turn_kind.KINDS:
            return self.begin_side(flow, ex, session, str(kind), snap)
        turn = self.index.open_turn(session, flow.id, started)
        turn_diff = diff(choose_base(session.snapshots, snap), snap, raws, self.shapes, side=bool(session.snapshots))
        session.remember(turn.number, snap)
        turn.snap = snap
        self.opened(flow, ex, session, turn, turn_diff)

    def begin_side(self, flow: http.HTTPFlow, ex: Exchange, session: Session, kind: str, snap: Snapshot) -> None:
        """opencode's title or summary request: apart from the turns, compared with none of them."""
        turn = self.index.open_side(session, flow.id, ex.t_request or time.time(), kind)
        self.opened(flow, ex, session, turn, {"kind": kind, "messages": snap.messages, "tools": len(snap.tools)})

    def begin_replay(
        self,
        flow: http.HTTPFlow,
        ex: Exchange,
        session: Session,
        replayed: dict[str, Any],
        snap: Snapshot,
        raws: Sequence[RawJSON],
    ) -> None:
        """A replay of a turn (or of a title or summary request): not a new turn, compared with the one it replays."""
        number = int(replayed["turn"])
        kind = replayed.get("kind") if replayed.get("kind") in turn_kind.KINDS else None
        original = session.turn(number) if kind is None else None
        base = (number, original.snap) if original is not None and original.snap is not None else None
        turn_diff = diff(base, snap, raws, self.shapes, side=False)
        turn_diff["replay_of"] = number
        if kind:
            turn_diff["kind"] = kind
        turn = self.index.open_side(session, flow.id, ex.t_request or time.time(), "replay", number)
        self.opened(flow, ex, session, turn, turn_diff, number, kind)

    def opened(
        self,
        flow: http.HTTPFlow,
        ex: Exchange,
        session: Session,
        turn: Turn,
        turn_diff: dict[str, Any],
        number: int | None = None,
        kind: str | None = None,
    ) -> None:
        ex.session = info = {
            "id": session.id,
            "parent_id": session.parent_id,
            "source": session.source,
            "tag": session.tag,
            "turn": number if number is not None else (turn.number if not turn.kind else None),
            "diff": turn_diff,
        }
        if turn.kind or kind:
            info["kind"] = kind or turn.kind
        if turn.kind == "replay":
            info["replay_of"] = number
        turn.new, turn.rewritten_at, turn.diff = turn_text.headline(info), turn_diff.get("rewritten_at"), turn_diff
        if turn.kind:
            turn.rewritten_at = None  # a replay that differs is an edit, not a rewrite of the conversation
        self.open[flow] = (session, turn)

    def read(self, flow: http.HTTPFlow, ex: Exchange) -> tuple[Snapshot, Sequence[RawJSON]]:
        """The request as digests: from routing's split of the client's messages when it made one (no second
        pass over a long conversation; the native API's flows too, whose request is Gemini's), else read from
        the request body."""
        split, body = ex.conversation or (None, None)
        ex.conversation = None
        if split is not None and isinstance(body, dict):
            return read_split(split, body, self.shapes)
        return read_request(self.chat_body(flow), self.shapes)

    def response(self, flow: http.HTTPFlow) -> None:
        self.end_turn(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self.end_turn(flow)

    def end_turn(self, flow: http.HTTPFlow) -> None:
        ex = Exchange.find(flow)
        if ex is None:
            return
        if not flow.live:
            return self.restore(flow, ex)
        if handle := self.scheduled.get(flow):  # answered before the loop came round to it
            handle.cancel()
            self.begin_turn(flow)
        if opened := self.open.pop(flow, None):
            try:  # after every addon's hook for this event: the answer is written in the same hook
                asyncio.get_running_loop().call_soon(self.record_outcome, flow, *opened)
            except RuntimeError:
                self.record_outcome(flow, *opened)

    def restore(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        """A flow read back from a file: its session and turn as stored, its digests for the next live turn."""
        info = ex.session
        if not isinstance(info, dict) or not info.get("id"):
            return
        kind = info.get("kind") if info.get("kind") in (*turn_kind.KINDS, "replay") else None
        if kind is None and not isinstance(info.get("turn"), int):
            return
        key = keys.SessionKey(str(info["id"]), info.get("parent_id"), str(info.get("source", "header")))
        started = ex.t_request or flow.timestamp_created
        session = self.index.session(key, started, tag=info.get("tag"))
        if info.get("replay_of") is not None:
            turn = self.index.open_side(session, flow.id, started, "replay", int(info["replay_of"]))
        elif kind is not None:
            turn = self.index.open_side(session, flow.id, started, kind)
        else:
            turn = self.index.open_turn(session, flow.id, started, number=info["turn"])
        turn.diff = info["diff"] if isinstance(info.get("diff"), dict) else {}
        turn.new, turn.rewritten_at = turn_text.headline(info), None if turn.kind else turn.diff.get("rewritten_at")
        if not turn.kind:
            try:
                turn.snap = read_request(self.chat_body(flow), self.shapes)[0]
                session.remember(turn.number, turn.snap)
            except ValueError:
                pass
        self.record_outcome(flow, session, turn)

    def record_outcome(self, flow: http.HTTPFlow, session: Session, turn: Turn) -> None:
        ex = Exchange.of(flow)
        # The tool-call check: made here when the report has not made it yet (a live flow), else as it was kept.
        findings = (
            toolcheck.checks_of(ex, client_body(ex) or flow.request.content) if flow.live else ex.tool_checks or []
        )
        answer = ex.answer or {}
        usage = counted if isinstance(counted := answer.get("usage"), dict) else {}
        start, first = ex.t_request, ex.t_first_chunk
        turn.client_model, turn.upstream_model = str(ex.client_model or ""), str(ex.upstream_model or "")
        turn.finished = ex.t_end or time.time()
        turn.finish_reason = answer.get("finish_reason")
        turn.tokens_in, turn.tokens_out = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
        turn.cached_tokens = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        turn.price = price(ex, usage) if usage else None
        turn.first_chunk_ms = (first - start) * 1000 if start and first else None
        error = ex.error or (flow.error.msg if flow.error else None)
        turn.error = str(error)[:300] if error else None
        turn.tool_calls = len(answer.get("tool_calls") or [])
        turn.tool_findings = len(findings)
        turn.answer = answer_summary(answer, findings)
        session.add_outcome(turn)


def answer_summary(answer: dict, findings: list) -> dict[str, Any]:
    """The answer, cut short enough to keep in the index: text, reasoning, tool calls and their findings."""

    def cut(text: object, limit: int) -> str:
        text = str(text or "")
        return text if len(text) <= limit else text[: limit - 1] + "…"

    out: dict[str, Any] = {}
    if answer.get("content"):
        out["text"] = cut(answer["content"], ANSWER_TEXT)
    if answer.get("reasoning"):
        out["reasoning"] = cut(answer["reasoning"], ANSWER_TEXT)
    calls = [c for c in answer.get("tool_calls") or [] if isinstance(c, dict)]
    if calls:
        out["tool_calls"] = [
            {
                "id": cut(c.get("id"), 80),
                "name": cut(c.get("name"), 80),
                "arguments": cut(c.get("arguments"), CALL_ARGUMENTS),
            }
            for c in calls[:MAX_CALLS]
        ]
    if findings:
        out["findings"] = [cut(f, 300) for f in findings[:MAX_CALLS]]
    return out
