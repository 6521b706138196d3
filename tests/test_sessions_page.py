"""addon/inspection/sessions/page.py: /_proxy/sessions, /_proxy/sessions/<id> and /_proxy/sessions.json answered
by the addon from a session index (never forwarded), behind PROXY_API_KEY, with hostile text escaped and no key.

The index is filled by the Sessions addon from the real opencode requests of tests/data, or built by hand with
SessionIndex's own API where a test needs a parent and its subagent, dropped records or hostile text.
"""

from __future__ import annotations

import orjson
import pytest
from mitmproxy.test import taddons, tflow

from addon.inspection.sessions.addon import Sessions
from addon.inspection.sessions.index import SessionIndex
from addon.inspection.sessions.keys import SessionKey
from addon.inspection.sessions.page import COOKIE, SessionPage
from tests.session_fixtures import SESSION_ID, TURNS, encoded
from tests.test_report import llm_meta

T0 = 1_760_000_000.0
UPSTREAM_KEY = "AIzaSyUPSTREAM-secret-0123456789"
HOSTILE = '</pre><script>alert("x")</script><img src=x onerror=alert(1)>'


def add_turn(index: SessionIndex, session, flow_id: str, at: float, **fields):
    """A turn as the Sessions addon records one: the session marked active, a turn opened, its outcome added."""
    index.session(SessionKey(session.id, session.parent_id, session.source), at)
    turn = index.open_turn(session, flow_id, at)
    turn.client_model, turn.upstream_model, turn.finished = "local-3", "gemini-3-pro-preview", at + 2
    turn.finish_reason, turn.tokens_in, turn.tokens_out = "tool_calls", 1200, 40
    for name, value in fields.items():
        setattr(turn, name, value)
    turn.tool_calls = len(turn.answer.get("tool_calls", []))
    session.add_outcome(turn)
    return turn


def task_family(index: SessionIndex | None = None) -> SessionIndex:
    """A parent session whose turn 2 called `task`, and the subagent that call started."""
    index = index or SessionIndex()
    parent = index.session(SessionKey("ses_parent", None, "header"), T0)
    add_turn(index, parent, "flow-p1", T0, answer={"tool_calls": [{"id": "c1", "name": "read", "arguments": "{}"}]})
    task = '{"description":"look","prompt":"Say-hello","subagent_type":"general"}'
    add_turn(index, parent, "flow-p2", T0 + 3, answer={"tool_calls": [{"id": "c2", "name": "task", "arguments": task}]})
    child = index.session(SessionKey("ses_child", "ses_parent", "header"), T0 + 6)
    add_turn(index, child, "flow-c1", T0 + 6, answer={"text": "hello"}, finish_reason="stop")
    add_turn(index, parent, "flow-p3", T0 + 10, answer={"text": "done"}, finish_reason="stop")
    return index


@pytest.fixture
def page():
    addon = SessionPage(task_family(), "abcd1234")
    with taddons.context(addon) as tctx:
        tctx.options.listen_host, tctx.options.listen_port = "127.0.0.1", 8001
        yield addon


def get(addon: SessionPage, path: str, method: str = "GET", **headers: str):
    f = tflow.tflow()
    f.request.method, f.request.path = method, path
    for name, value in headers.items():
        f.request.headers[name] = value
    addon.request(f)
    return f


def html(addon: SessionPage, path: str) -> str:
    f = get(addon, path)
    assert f.response.status_code == 200 and f.response.headers["content-type"].startswith("text/html")
    return f.response.text


def test_list_newest_first_with_the_subagent_under_its_parent(page):
    text = html(page, "/_proxy/sessions")
    rows = [part.split("</tr>")[0] for part in text.split("<tr class=")[1:]]
    assert [r.split('data-session="')[1].split('"')[0] for r in rows] == ["ses_parent", "ses_child"]
    assert rows[1].startswith('"subagent"') and 'data-depth="1"' in rows[1] and "↳ subagent" in rows[1]
    assert '<th scope="col">Not fitting schema</th>' in text and "local-3 → gemini-3-pro-preview" in text
    assert "<code>127.0.0.1:8001</code>" in text  # the replica


def test_json_is_the_index_newest_first_with_the_replica(page):
    f = get(page, "/_proxy/sessions.json")
    assert f.response.status_code == 200 and f.response.headers["content-type"] == "application/json"
    data = orjson.loads(f.response.content)
    assert [s["id"] for s in data["sessions"]] == ["ses_parent", "ses_child"]
    parent, child = data["sessions"]
    assert (parent["parent_id"], parent["turns"], child["parent_id"], child["turns"]) == (None, 3, "ses_parent", 1)
    assert parent["children"] == ["ses_child"] and parent["tokens_in"] == 3600 and parent["tool_calls"] == 2
    assert [t["number"] for t in parent["turn_records"]] == [1, 2, 3]
    assert {s["replica"] for s in data["sessions"]} == {data["replica"]} == {"127.0.0.1:8001"}
    assert (data["instance"], data["dropped_sessions"], data["dropped_turns"]) == ("abcd1234", 0, 0)


@pytest.mark.parametrize("path", ["/_proxy/sessions/ses_parent", "/_proxy/sessions?id=ses_parent"])
def test_one_session_is_a_timeline_with_the_subagent_under_the_task_turn(page, path):
    text = html(page, path)
    assert _turn_numbers(text) == ["1", "2", "3"]
    turn2 = text[text.index('id="turn-2"') : text.index('id="turn-3"')]
    assert '<code class="tool-name">task</code>' in turn2
    assert '<pre class="arguments">{\n  &#34;description&#34;: &#34;look&#34;,' in turn2  # pretty JSON, escaped
    assert 'data-session="ses_child"' in turn2 and "Subagents this turn's task call started" in turn2
    assert 'data-session="ses_child"' not in text[text.index('id="turn-3"') :]
    assert "open in mitmweb" not in text  # mitmdump: no mitmweb to link to


def _turn_numbers(text: str) -> list[str]:
    return [part.split('"')[0] for part in text.split('id="turn-')[1:]]


def test_the_subagent_names_its_parent(page):
    text = html(page, "/_proxy/sessions/ses_child")
    assert "subagent of" in text and 'href="/_proxy/sessions/ses_parent"' in text


def test_links_to_the_flow_in_mitmweb_when_mitmweb_is_the_ui():
    addon = SessionPage(task_family())
    with taddons.context(addon) as tctx:
        tctx.options.add_option("web_host", str, "127.0.0.1", "mitmweb's")
        tctx.options.add_option("web_port", int, 8082, "mitmweb's")
        text = html(addon, "/_proxy/sessions/ses_parent")
    assert 'href="http://127.0.0.1:8082/#/flows/flow-p2/request"' in text


def test_opencode_turns_through_the_sessions_addon():
    sessions = Sessions()
    addon = SessionPage(sessions.index)
    with taddons.context(sessions, addon):
        for turn in TURNS:
            f = tflow.tflow()
            f.request.content = encoded(turn["body"])
            f.request.headers.update(turn["headers"])
            f.metadata["llm"] = llm_meta()
            sessions.request(f)
            f.response = tflow.tresp()
            sessions.response(f)
        text = html(addon, f"/_proxy/sessions/{SESSION_ID}")
    assert _turn_numbers(text) == ["1", "2", "3"]
    turn3 = text[text.index('id="turn-3"') :]
    assert "+2 messages (assistant with 1 tool call, 1 tool result) since turn 2" in turn3
    assert "tool result for " in turn3 and "(read)" in turn3


def test_other_requests_are_left_to_routing(page):
    assert get(page, "/v1/chat/completions", "POST").response is None
    assert get(page, "/_proxyx").response is None


@pytest.mark.parametrize(
    "path, method, status",
    [
        ("/_proxy/sessions", "POST", 405),
        ("/_proxy/other", "GET", 404),
        ("/_proxy/sessions/ses_gone", "GET", 404),
    ],
)
def test_never_forwarded(page, path, method, status):
    f = get(page, path, method)
    assert f.response.status_code == status
    if status != 404 or path == "/_proxy/other":
        assert orjson.loads(f.response.content)["error"]["code"] in ("method_not_allowed", "not_found")


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv("PROXY_API_KEY", "proxy-key-123")
    addon = SessionPage(task_family())
    with taddons.context(addon):
        yield addon


@pytest.mark.parametrize("path", ["/_proxy/sessions", "/_proxy/sessions.json", "/_proxy/sessions/ses_parent"])
def test_proxy_key_required_when_set(keyed, path):
    for headers in ({}, {"authorization": "Bearer wrong"}, {"cookie": f"{COOKIE}=forged"}):
        f = get(keyed, path, **headers)
        assert f.response.status_code == 401, headers
        assert orjson.loads(f.response.content)["error"]["code"] == "invalid_api_key"
    f = get(keyed, path, authorization="Bearer proxy-key-123")
    assert f.response.status_code == 200 and "authorization" not in f.request.headers


def test_a_browser_token_becomes_an_httponly_cookie(keyed):
    assert get(keyed, "/_proxy/sessions?token=wrong").response.status_code == 401
    f = get(keyed, "/_proxy/sessions?id=ses_parent&token=proxy-key-123")
    assert f.response.status_code == 303 and f.response.headers["location"] == "/_proxy/sessions?id=ses_parent"
    cookie = f.response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "proxy-key-123" not in cookie
    assert "proxy-key-123" not in f.request.path  # the flow mitmweb shows keeps no token
    value = cookie.split(";")[0]
    again = get(keyed, "/_proxy/sessions?id=ses_parent", cookie=value)
    assert again.response.status_code == 200 and "Turn 2" in again.response.text
    assert "cookie" not in again.request.headers


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_the_browsers_icon_request_is_no_failure_even_with_a_key(keyed, method):
    """A browser asks for /favicon.ico by itself when it opens the page: 204, before the key is asked for."""
    f = get(keyed, "/favicon.ico", method)
    assert f.response.status_code == 204 and not f.response.content
    assert "llm" not in f.metadata  # nothing for the report to call refused
    assert get(keyed, "/favicon.ico", "POST").response is None  # not a browser's own request: left to routing


def test_the_pages_name_no_icon_for_a_browser_to_fetch(page):
    assert '<link rel="icon" href="data:,">' in get(page, "/_proxy/sessions").response.text


def test_hostile_text_is_escaped():
    index = SessionIndex()
    session = index.session(SessionKey(HOSTILE[:100], None, "header"), T0)
    calls = [{"id": HOSTILE, "name": HOSTILE, "arguments": orjson.dumps({"command": HOSTILE}).decode()}]
    add_turn(index, session, "f1", T0, answer={"text": HOSTILE, "reasoning": HOSTILE, "tool_calls": calls})
    session.turns[0].error = HOSTILE
    session.turns[0].diff = {
        "messages": 1,
        "tools": 0,
        "base_turn": None,
        "new": [{"i": 0, "role": "user", "text": HOSTILE}],
    }
    addon = SessionPage(index)
    with taddons.context(addon):
        for path in ("/_proxy/sessions", "/_proxy/sessions?id=" + HOSTILE[:100].replace("&", "%26")):
            text = html(addon, path)
            assert "<script>" not in text and "<img" not in text and "&lt;script&gt;" in text, path


def test_what_was_dropped_says_so():
    index = task_family(SessionIndex(max_sessions=2, max_turns=3))
    index.session(SessionKey("ses_child", "ses_parent", "header"), T0 + 15)  # the parent is now the least active
    index.session(SessionKey("ses_newer", None, "header"), T0 + 20)
    addon = SessionPage(index)
    with taddons.context(addon):
        listing = html(addon, "/_proxy/sessions")
        parent = html(addon, "/_proxy/sessions/ses_child")
        data = orjson.loads(get(addon, "/_proxy/sessions.json").response.content)
    assert (data["dropped_sessions"], data["dropped_turns"]) == (1, 1)
    assert "Dropped by the retention limit" in listing and "1 older sessions and 1 turn records" in listing
    assert "(subagent of ses_parent, no longer kept)" in listing  # the parent went: the subagent stands alone
    assert "subagent of" in parent and "(no longer kept)" in parent


def test_the_upstream_key_never_appears(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", UPSTREAM_KEY)
    index = task_family()
    index.get("ses_parent").turns[0].error = f"upstream 400: API key {UPSTREAM_KEY} not valid"
    addon = SessionPage(index)
    with taddons.context(addon):
        for path in ("/_proxy/sessions", "/_proxy/sessions.json", "/_proxy/sessions/ses_parent"):
            f = get(addon, path)
            assert f.response.status_code == 200 and UPSTREAM_KEY.encode() not in f.response.content, path
        assert "AIza" in get(addon, "/_proxy/sessions/ses_parent").response.text  # there, masked


def test_title_and_replays_are_shown_apart_from_the_turns():
    from tests.test_turn_kind import title_body

    sessions = Sessions()
    addon = SessionPage(sessions.index)
    with taddons.context(sessions, addon):
        bodies = [title_body(), *(t["body"] for t in TURNS[:2])]
        flows = []
        for body in bodies:
            f = tflow.tflow()
            f.request.content = encoded(body)
            f.request.headers.update(TURNS[0]["headers"])
            f.metadata["llm"] = llm_meta()
            sessions.request(f)
            f.response = tflow.tresp()
            sessions.response(f)
            flows.append(f)
        again = tflow.tflow()
        again.request.content = encoded(TURNS[0]["body"])
        again.request.headers.update(TURNS[0]["headers"])
        again.metadata["llm"] = llm_meta(session=dict(flows[1].metadata["llm"].session), replay={"n": 1, "t": 0})
        sessions.request(again)
        again.response = tflow.tresp()
        sessions.response(again)
        text = html(addon, f"/_proxy/sessions/{SESSION_ID}")
    assert _turn_numbers(text) == ["1", "2"]
    side = text[text.index('<section class="side">') :]
    assert 'data-kind="title"' in side and 'data-kind="replay" data-replay-of="1"' in side
    assert "replay of turn 1: the same 2 messages" in side
    assert 'id="turn-' not in side
