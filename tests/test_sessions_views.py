"""addon/inspection/sessions/views.py: which session sits under which, which turn started a subagent, and the
formatting the session page's templates use."""

from __future__ import annotations

import pytest

from addon.inspection.sessions import views as session_views
from addon.inspection.sessions.index import SessionIndex
from addon.inspection.sessions.keys import SessionKey

T0 = 1_760_000_000.0


def session(index: SessionIndex, sid: str, parent: str | None, at: float, *calls: str):
    """A session with one turn at `at` whose answer called the tools `calls`."""
    s = index.session(SessionKey(sid, parent, "header"), at)
    turn = index.open_turn(s, f"flow-{sid}-{s.turns_seen + 1}", at)
    turn.answer = {"tool_calls": [{"id": f"c{i}", "name": name, "arguments": "{}"} for i, name in enumerate(calls)]}
    return s


def test_families_nest_subagents_and_their_subagents():
    index = SessionIndex()
    session(index, "a", None, T0, "task")
    session(index, "b", None, T0 + 1)
    session(index, "a1", "a", T0 + 2, "task")
    session(index, "a1x", "a1", T0 + 3)
    session(index, "a2", "a", T0 + 4)
    session(index, "orphan", "gone", T0 + 5)
    rows = [[(r.session.id, r.depth) for r in family] for family in session_views.family_rows(index)]
    assert rows == [[("orphan", 0)], [("b", 0)], [("a", 0), ("a1", 1), ("a1x", 2), ("a2", 1)]]


def test_a_session_naming_itself_its_parent_is_listed_once():
    index = SessionIndex()
    session(index, "loop", "loop", T0)
    assert [[r.session.id for r in f] for f in session_views.family_rows(index)] == [["loop"]]


def test_subagents_go_under_the_last_task_turn_before_them():
    index = SessionIndex()
    parent = session(index, "p", None, T0, "read")
    session(index, "early", "p", T0 + 0.5)  # before any task call: not placed under a turn
    session(index, "p", None, T0 + 1, "task", "task")
    first, second = session(index, "c1", "p", T0 + 2), session(index, "c2", "p", T0 + 2.1)
    session(index, "p", None, T0 + 3, "task")
    late = session(index, "c3", "p", T0 + 4)
    kids = session_views.children_of(index)["p"]
    views, unplaced = session_views.turn_views(parent, kids)
    assert [[s.id for s in v.subagents] for v in views] == [[], [first.id, second.id], [late.id]]
    assert [s.id for s in unplaced] == ["early"]


def test_findings_go_with_their_call():
    index = SessionIndex()
    s = session(index, "p", None, T0, "write", "read")
    s.turns[0].answer["findings"] = ["write (c0): missing required field 'content'", "something else"]
    [view], _ = session_views.turn_views(s, [])
    assert [c["findings"] for c in view.calls] == [["write (c0): missing required field 'content'"], []]
    assert view.other_findings == ["something else"]


@pytest.mark.parametrize(
    "arguments, shown",
    [
        ('{"filePath":"/a","n":1}', '{\n  "filePath": "/a",\n  "n": 1\n}'),
        ('{"filePath":"/a', '{"filePath":"/a'),  # cut short in the index: as it came
        (None, ""),
        ('"ü"', '"ü"'),
    ],
)
def test_pretty_arguments(arguments, shown):
    assert session_views.pretty_arguments(arguments) == shown


def test_formatting():
    assert session_views.money(None) == "—" and session_views.money(0.00041) == "$0.0004"
    assert (
        session_views.seconds(0.051) == "0.05 s"
        and session_views.seconds(12.34) == "12.3 s"
        and session_views.seconds(1200) == "20 min"
    )
    assert session_views.milliseconds(412.3) == "412 ms" and session_views.number(1234567) == "1,234,567"
    assert session_views.clock(None) == "—" and session_views.clock(T0).startswith("20")
