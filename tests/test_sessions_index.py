"""addon/inspection/sessions/index.py: sessions, turn numbers, outcomes, the JSON for the page, and its bounds."""

import array
import dataclasses
import gc
import tracemalloc

import orjson

from addon.inspection.sessions import keys as session_keys
from addon.inspection.sessions.index import SessionIndex, Turn
from addon.inspection.sessions.keys import SessionKey
from addon.inspection.sessions.turn_digest import ToolShapes, read_request
from tests.session_fixtures import body, encoded, next_turn


def key(name: str, parent: str | None = None) -> SessionKey:
    return SessionKey(name, parent, "header")


def test_turns_are_numbered_in_arrival_order_per_session():
    index = SessionIndex()
    a, b = index.session(key("a"), 1.0), index.session(key("b"), 2.0)
    numbers = [index.open_turn(s, f"f{i}", float(i)).number for i, s in enumerate([a, b, a, a, b])]
    assert numbers == [1, 1, 2, 3, 2] and [t.flow_id for t in a.turns] == ["f0", "f2", "f3"]


def test_a_rebuilt_turn_keeps_its_number_and_later_turns_follow_it():
    index = SessionIndex()
    s = index.session(key("a"))
    assert [index.open_turn(s, "x", 0.0, number=n).number for n in (4, 5)] == [4, 5]
    assert index.open_turn(s, "live", 1.0).number == 6


def test_newest_activity_first_and_subagents_under_their_parent():
    index = SessionIndex()
    index.session(key("parent"), 1.0)
    index.session(key("other"), 2.0)
    index.session(key("child", parent="parent"), 3.0)
    index.session(key("parent"), 4.0)
    assert [s.id for s in index.sessions()] == ["parent", "child", "other"]
    assert index.get("parent").children == ["child"] and index.get("child").parent_id == "parent"


def test_outcomes_add_up():
    index = SessionIndex()
    s = index.session(key("a"), 10.0)
    for n, (tokens, price, error) in enumerate([(100, 0.5, None), (200, None, "upstream 503")]):
        turn = index.open_turn(s, f"f{n}", 10.0 + n)
        turn.tokens_in, turn.tokens_out, turn.cached_tokens, turn.price, turn.error = tokens, 7, 50, price, error
        turn.tool_calls, turn.tool_findings, turn.finished = 2, 1, 20.0 + n
        turn.client_model, turn.upstream_model = "local-model", "gemini-2.5-flash"
        s.add_outcome(turn)
    assert (s.tokens_in, s.tokens_out, s.cached_tokens, s.price, s.errors) == (300, 14, 100, 0.5, 1)
    assert (s.tool_calls, s.tool_findings, s.last_activity, s.client_model) == (4, 2, 21.0, "local-model")


def test_json_for_the_page():
    index = SessionIndex(max_sessions=5, max_turns=7)
    s = index.session(key("ses_1"), 100.0)
    index.open_turn(s, "flow-1", 100.0).answer = {"text": "hi"}
    data = orjson.loads(orjson.dumps(index.to_json()))
    [session] = data["sessions"]
    assert session["id"] == "ses_1" and session["tag"] == session_keys.tag("ses_1") and session["turns"] == 1
    assert session["turn_records"][0]["flow_id"] == "flow-1" and session["turn_records"][0]["answer"] == {"text": "hi"}
    assert data["limits"] == {"max_sessions": 5, "max_turns": 7} and data["dropped_sessions"] == 0
    assert set(Turn.__slots__) - {"snap"} <= set(session["turn_records"][0])  # the digests are not page data


def test_two_sessions_never_share_a_tag():
    index = SessionIndex(max_sessions=0, max_turns=0)  # 0: no limit
    tags = {index.session(key(f"ses_{i}")).tag for i in range(3000)}
    assert len(tags) == 3000 and all(t.startswith("s:") for t in tags)


def test_bounded_and_says_what_went():
    index = SessionIndex(max_sessions=3, max_turns=4)
    for name in "abcde":
        s = index.session(key(name))
        index.open_turn(s, name, 0.0)
    assert [s.id for s in index.sessions()] == ["e", "d", "c"] and index.dropped_sessions == 2
    assert index.dropped_turns == 1 and len(index.records) == 4
    c = index.get("c")
    for _ in range(4):
        index.open_turn(c, "c", 0.0)
    assert len(c.turns) == 4 and c.dropped_turns == 1 and c.turns_seen == 5


def test_soak_1000_sessions_of_20_turns_stays_flat():
    """Each turn a real opencode request (10 tools, the long system prompt), two messages longer than the last."""
    bodies = [body(1)]
    for n in range(19):
        bodies.append(next_turn(bodies[-1], f"result {n} " * 40, f"call_{n}"))
    shapes = ToolShapes()
    snapshots = [read_request(encoded(b), shapes)[0] for b in bodies]
    index = SessionIndex(max_sessions=200, max_turns=200)
    sizes = {}
    tracemalloc.start()
    try:
        for i in range(1000):
            s = index.session(key(f"ses_{i:04}"), float(i))
            for snap in snapshots:
                turn = index.open_turn(s, f"flow-{i}-{len(s.turns)}", float(i))
                turn.answer = {"text": "x" * 2000}
                # Each request's own digests, as read_request makes them (a copy: not shared between sessions).
                s.remember(
                    turn.number, dataclasses.replace(snap, rest=array.array("Q", snap.rest), tools=(*snap.tools,))
                )
                s.add_outcome(turn)
            if (i + 1) % 250 == 0:
                gc.collect()
                sizes[i + 1] = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(index.by_id) == 200 and len(index.records) == 200 and index.dropped_sessions == 800
    assert sizes[1000] < sizes[250] * 1.1, sizes
