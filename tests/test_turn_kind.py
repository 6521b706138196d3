"""opencode's title and summary requests told from the conversation's turns (inspection/sessions/turn_kind.py), and kept
apart from them by the session index (sessions/addon.py, turn_text.py): no turn number, no rewrite, shown apart.
A replay is not a new turn either: it is compared with the turn it replays."""

from __future__ import annotations

import copy
import logging

import orjson
import pytest
from mitmproxy.test import taddons

from addon.formats.exchange import Exchange
from addon.inspection import turn_text
from addon.inspection.report import Report
from addon.inspection.sessions.addon import Sessions
from addon.inspection.sessions.turn_kind import side_kind
from addon.runtime.retention import FlowRetention
from tests.session_fixtures import TURNS, next_turn
from tests.test_sessions_addon import chat_flow, exchange

# opencode 1.18.33's title agent, as the real CLI sent it (tests/test_sessions_e2e.py records it again).
TITLE_SYSTEM = (
    "You are a title generator. You output ONLY a thread title. Nothing else.\n\n<task>\nGenerate a brief title "
    "that would help the user find this conversation later.\n"
)
COMPACTION_SYSTEM = (
    "You are a helpful AI assistant tasked with summarizing conversations.\n\nWhen asked to summarize, provide a "
    "detailed but concise summary of the conversation."
)


@pytest.fixture
def addons():
    """The sessions addon and the report, as test_sessions_addon.py has them."""
    sessions, report = Sessions(), Report()
    with taddons.context(sessions, report, FlowRetention()) as tctx:
        yield sessions, report, tctx


def raw(role: str, content: str) -> bytes:
    return orjson.dumps({"role": role, "content": content})


def title_body(user_text: str = "Say hello please") -> dict:
    return {
        "model": "local-model",
        "messages": [
            {"role": "system", "content": TITLE_SYSTEM},
            {"role": "user", "content": "Generate a title for this conversation:\n"},
            {"role": "user", "content": user_text},
        ],
    }


def summary_body(turn: dict) -> dict:
    """opencode's compaction: the conversation under the compaction agent's prompt, asked for a summary, no tools."""
    body = copy.deepcopy(turn)
    body.pop("tools", None)
    body["messages"][0] = {"role": "system", "content": COMPACTION_SYSTEM}
    body["messages"].append(
        {"role": "user", "content": "Provide a detailed prompt for continuing our conversation above."}
    )
    return body


@pytest.mark.parametrize(
    ("system", "last_user", "tools", "kind"),
    [
        ([raw("system", TITLE_SYSTEM)], raw("user", "hi"), False, "title"),
        ([raw("system", "You generate a short session title for the chat below.")], None, False, "title"),
        ([raw("system", COMPACTION_SYSTEM)], None, False, "summary"),
        ([raw("system", "Summarize what was done in this conversation.")], None, False, "summary"),
        ([], raw("user", "Generate a title for this conversation:\n"), False, "title"),
        ([], raw("user", "Provide a detailed prompt for continuing our conversation above."), False, "summary"),
        ([], raw("user", "Summarize our conversation so far, please"), False, "summary"),
        # Turns of a conversation: an agent offering tools, a user asking about titles or summaries.
        ([raw("system", TURNS[0]["body"]["messages"][0]["content"])], raw("user", "hi"), True, None),
        ([], raw("user", "Generate a title for this conversation:"), True, None),
        ([], raw("user", "How do I summarize a paper? And what is a good title for it?"), False, None),
        ([raw("system", "You are a helpful assistant.")], raw("user", "Write a blog post title"), False, None),
    ],
)
def test_side_kind(system, last_user, tools, kind):
    assert side_kind(system, last_user, tools) == kind


def test_the_title_request_is_no_turn_and_the_agent_thread_starts_at_turn_1(addons, caplog):
    caplog.set_level(logging.INFO)
    headers = TURNS[0]["headers"]
    title = exchange(addons, chat_flow(title_body(), headers))
    first, second = (exchange(addons, chat_flow(t["body"], t["headers"])) for t in TURNS[:2])
    info = Exchange.of(title).session
    assert info["kind"] == "title" and info["turn"] is None and "diff" in info
    assert [Exchange.of(f).session["turn"] for f in (first, second)] == [1, 2]
    assert turn_text.what_is_new(Exchange.of(first).session["diff"]).startswith("first turn")
    assert title.comment.endswith(f" | {info['tag']} title") and "#" not in title.comment.split("|")[-1]
    sessions = addons[0]
    [session] = sessions.index.sessions()
    assert session.turns_seen == 2 and [t.number for t in session.turns] == [1, 2]
    assert [t.kind for t in session.side] == ["title"]
    assert session.to_json()["side_records"][0]["kind"] == "title"
    assert "title request of" in caplog.text and "new thread" not in caplog.text


def test_a_summary_request_is_no_turn_and_no_rewrite(addons, caplog):
    caplog.set_level(logging.INFO)
    flows = [exchange(addons, chat_flow(t["body"], t["headers"])) for t in TURNS]
    summary = exchange(addons, chat_flow(summary_body(TURNS[2]["body"]), TURNS[2]["headers"]))
    later = exchange(addons, chat_flow(next_turn(TURNS[2]["body"], "more", "call_9"), TURNS[2]["headers"]))
    assert Exchange.of(summary).session["kind"] == "summary"
    assert [Exchange.of(f).session["turn"] for f in (*flows, later)] == [1, 2, 3, 4]
    assert "rewritten_at" not in Exchange.of(later).session["diff"]
    assert Exchange.of(later).session["diff"]["base_turn"] == 3
    assert "REWRITTEN" not in caplog.text and "history rewritten" not in summary.comment


def replayed(addons, original, body: dict | None = None):
    """`original` replayed as replay.py leaves it before the sessions addon: its session kept, `replay` set."""
    f = chat_flow(body or orjson.loads(original.request.content), dict(original.request.headers))
    ex = Exchange.of(f)
    ex.session = copy.deepcopy(Exchange.of(original).session)
    ex.replay = {"n": 1, "t": 0, "from": "client request"}
    return exchange(addons, f)


def test_a_replay_is_no_new_turn_and_no_rewrite(addons, caplog):
    caplog.set_level(logging.INFO)
    flows = [exchange(addons, chat_flow(t["body"], t["headers"])) for t in TURNS]
    again = replayed(addons, flows[0])  # turn 1 replayed after turn 3: its history is shorter than turn 3's
    info = Exchange.of(again).session
    assert info["turn"] == 1 and info["replay_of"] == 1 and info["kind"] == "replay"
    assert info["diff"]["base_turn"] == 1 and "rewritten_at" not in info["diff"]
    assert turn_text.what_is_new(info["diff"]) == "replay of turn 1: the same 2 messages"
    assert "REWRITTEN" not in caplog.text and "history rewritten" not in again.comment
    assert again.comment.startswith("replay 1 | ") and again.comment.endswith(f" | {info['tag']} #1")
    [session] = addons[0].index.sessions()
    assert session.turns_seen == 3 and [t.kind for t in session.side] == ["replay"]
    later = exchange(addons, chat_flow(next_turn(TURNS[2]["body"], "x", "call_7"), TURNS[2]["headers"]))
    assert Exchange.of(later).session["turn"] == 4 and Exchange.of(later).session["diff"]["base_turn"] == 3
    view = turn_text.view_lines(Exchange.of(again))
    assert view[0].startswith("compared with turn 1, which this replays")


def test_an_edited_replay_says_how_it_differs_from_its_turn(addons):
    flows = [exchange(addons, chat_flow(t["body"], t["headers"])) for t in TURNS[:2]]
    edited = orjson.loads(flows[1].request.content)
    edited["messages"][-1]["content"] = "a different tool result"
    again = replayed(addons, flows[1], edited)
    info = Exchange.of(again).session
    assert info["diff"]["rewritten_at"] == 3
    assert "edited: differs from turn 2 at message 3" in again.comment
    assert "history rewritten" not in again.comment
    assert turn_text.notes(info["diff"]) == []
