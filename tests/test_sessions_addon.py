"""addon/inspection/sessions/addon.py with Report and the chat view: session and turn in each flow's metadata,
comment, log and view; mitmweb's filters; the index rebuilt from a saved file.

Flows carry the real opencode requests of tests/data (session_fixtures) and the exchange record as routing and
the stream rewriter leave it (test_report.llm_meta). Hooks are called directly, in the proxy's addon order.
"""

import asyncio
import io
import logging

import orjson
import pytest
from mitmproxy import flowfilter
from mitmproxy import io as mitmio
from mitmproxy.contentviews import Metadata
from mitmproxy.test import taddons, tflow

from addon.formats.exchange import Exchange
from addon.inspection import chatview
from addon.inspection.report import Report
from addon.inspection.sessions import keys as session_keys
from addon.inspection.sessions.addon import Sessions
from addon.request.chat_request import parse_chat_request
from addon.runtime.retention import FlowRetention
from tests.session_fixtures import SESSION_ID, TURNS, body, encoded, next_turn
from tests.test_report import llm_meta

TAG = session_keys.tag(SESSION_ID)


@pytest.fixture
def addons():
    sessions, report = Sessions(), Report()
    with taddons.context(sessions, report, FlowRetention()) as tctx:
        yield sessions, report, tctx


def chat_flow(data: dict, headers: dict | None = None, **meta):
    f = tflow.tflow()
    f.request.path = "/v1beta/openai/chat/completions"
    f.request.content = encoded(data)
    for name, value in (headers or {}).items():
        f.request.headers[name] = value
    f.metadata["llm"] = llm_meta(**meta)
    return f


def exchange(addons, f, hook: str = "response"):
    """The flow through the proxy's hooks: request, then its answer (or error)."""
    sessions, report, _ = addons
    sessions.request(f)
    if hook == "response":
        f.response = tflow.tresp()
    else:
        f.error = tflow.terr()
    for addon in (sessions, report):
        getattr(addon, hook)(f)
    return f


def opencode_turns(addons):
    return [exchange(addons, chat_flow(t["body"], t["headers"])) for t in TURNS]


def test_opencode_turns_are_numbered_and_commented(addons):
    flows = opencode_turns(addons)
    sessions = [Exchange.of(f).session for f in flows]
    assert [s["turn"] for s in sessions] == [1, 2, 3]
    assert {(s["id"], s["parent_id"], s["source"], s["tag"]) for s in sessions} == {(SESSION_ID, None, "header", TAG)}
    assert "| local-model -> gemini-2.5-flash | 4,211 in / 63 out tokens" in flows[2].comment
    assert flows[2].comment.endswith(f" | {TAG} #3")  # the session's tag last: what matters comes first
    diff = sessions[2]["diff"]
    assert (diff["base_turn"], diff["new_from"], diff["new_count"]) == (2, 4, 2)
    # The session headers are the client's: they stay on the request that goes upstream.
    assert flows[0].request.headers["x-session-affinity"] == flows[0].request.headers["x-session-id"] == SESSION_ID


def test_mitmweb_filters_find_one_session_in_order(addons):
    ours = opencode_turns(addons)
    other = exchange(addons, chat_flow(body(1), {"x-session-affinity": "ses_other"}))
    plain = exchange(addons, chat_flow(body(1)))  # no headers: a fingerprint session of its own
    session_filter = flowfilter.parse(f"~comment {TAG}")
    assert [f for f in [*ours, other, plain] if session_filter(f)] == ours
    assert flowfilter.parse("~comment s:")(plain) and not flowfilter.parse('~comment "history rewritten"')(ours[2])


def test_a_rewritten_history_is_said_and_filtered(addons, caplog):
    caplog.set_level(logging.INFO)
    opencode_turns(addons)
    pruned = body(3)
    pruned["messages"][3]["content"] = "[Old tool result content cleared]"
    f = exchange(addons, chat_flow(next_turn(pruned, "ok", "call_3"), TURNS[2]["headers"]))
    assert Exchange.of(f).session["diff"]["rewritten_at"] == 3
    assert f.comment.endswith(f"| history rewritten at message 3 | {TAG} #4")
    assert flowfilter.parse('~comment "history rewritten"')(f)
    assert f"turn 4 of {TAG}: +5 messages" in caplog.text
    assert "HISTORY REWRITTEN at message 3: 3 messages of turn 3 from there on are gone or changed" in caplog.text


def test_the_log_shows_what_the_client_sent_back(addons, caplog):
    caplog.set_level(logging.INFO)
    opencode_turns(addons)
    assert f"  turn 1 of {TAG}: first turn: 2 messages, 10 tools" in caplog.text
    assert f"  turn 2 of {TAG}: +2 messages (assistant with 1 tool call, 1 tool result) since turn 1" in caplog.text
    assert "    + [2] assistant, tool calls: read" in caplog.text
    assert (
        "    + [3] tool result for call_1 (read): <path>/work/project/notes.txt</path> <type>file</type>" in caplog.text
    )


def test_full_verbosity_prints_only_the_new_part_in_full(addons, caplog):
    caplog.set_level(logging.INFO)
    addons[2].configure(addons[1], translate_verbosity="full")
    opencode_turns(addons)
    requests = [r.getMessage() for r in caplog.records if "  request: {" in r.getMessage()]
    assert len(requests) == 3 and "(4 earlier messages as in the previous turn)" in requests[2]
    assert "You are opencode" not in requests[2] and "You are opencode" in requests[0]


def test_a_client_without_headers_is_one_session_per_conversation(addons):
    chat = {"model": "local-model", "messages": [{"role": "system", "content": "Be brief."}]}
    flows = []
    for question in ("Hi", "And then?", "Thanks"):
        chat["messages"].append({"role": "user", "content": question})
        flows.append(exchange(addons, chat_flow(chat)))
        chat["messages"].append({"role": "assistant", "content": f"answer to {question}"})
    other = exchange(addons, chat_flow({"model": "m", "messages": [{"role": "user", "content": "Hi"}]}))
    sessions = [Exchange.of(f).session for f in flows]
    assert [s["turn"] for s in sessions] == [1, 2, 3] and len({s["id"] for s in sessions}) == 1
    assert sessions[0]["source"] == "fingerprint" and Exchange.of(other).session["id"] != sessions[0]["id"]
    assert sessions[2]["diff"]["new_count"] == 2 and "rewritten_at" not in sessions[2]["diff"]


def test_subagent_is_a_child_of_its_parent(addons):
    opencode_turns(addons)
    headers = {"x-session-affinity": "ses_child", "x-session-id": "ses_child", "x-parent-session-id": SESSION_ID}
    f = exchange(addons, chat_flow(body(1), headers))
    assert Exchange.of(f).session["parent_id"] == SESSION_ID
    index = addons[0].index
    assert index.get(SESSION_ID).children == ["ses_child"] and [s.id for s in index.sessions()][0] == "ses_child"


def test_the_chat_view_starts_with_what_is_new_from_the_flow_alone(addons):
    f = opencode_turns(addons)[1]
    saved = mitmio.FlowReader(io.BytesIO(flow_file([f]))).stream().__next__()
    text = chatview.ChatView().prettify(saved.request.content, Metadata(flow=saved, http_message=saved.request))
    head, _, rest = text.partition("the whole conversation:")
    assert head.startswith(f"what is new in turn 2 (session {TAG} = {SESSION_ID}):")
    assert "+2 messages (assistant with 1 tool call, 1 tool result) since turn 1" in head
    assert "[3] tool result for call_1 (read): <path>" in head
    assert rest.strip().startswith("chat request: 4 messages, 10 tools")


def test_errors_and_fallback_attempts(addons):
    f = exchange(addons, chat_flow(body(1), TURNS[0]["headers"], error="upstream 503"), hook="error")
    attempt = exchange(addons, chat_flow(body(1), TURNS[0]["headers"], fallback_of="x", attempt=1))
    assert Exchange.of(f).session["turn"] == 1 and Exchange.of(attempt).session is None
    [turn] = addons[0].index.get(SESSION_ID).turns
    assert turn.error == "upstream 503" and addons[0].index.get(SESSION_ID).errors == 1


def flow_file(flows) -> bytes:
    buffer = io.BytesIO()
    writer = mitmio.FlowWriter(buffer)
    for f in flows:
        writer.add(f)
    return buffer.getvalue()


def test_sessions_are_rebuilt_from_a_saved_file(addons):
    saved = flow_file(opencode_turns(addons))
    sessions, report = Sessions(), Report()
    with taddons.context(sessions, report, FlowRetention()):
        for f in mitmio.FlowReader(io.BytesIO(saved)).stream():
            assert not f.live
            sessions.response(f)
        restored = sessions.index.get(SESSION_ID)
        assert restored.tag == TAG and [t.number for t in restored.turns] == [1, 2, 3]
        assert restored.turns[1].diff["new_count"] == 2 and restored.turns[1].new.startswith(f"turn 2 of {TAG}: +2")
        assert restored.tokens_in == 3 * 4211 and restored.turns[2].answer["tool_calls"][0]["name"] == "edit"
        live = exchange((sessions, report, None), chat_flow(next_turn(body(3), "ok", "call_3"), TURNS[2]["headers"]))
    diff = Exchange.of(live).session["diff"]
    assert Exchange.of(live).session["turn"] == 4 and diff["base_turn"] == 3 and diff["new_count"] == 2


def test_the_work_waits_until_the_request_has_gone_upstream(addons):
    sessions, report, _ = addons

    async def run():
        f = chat_flow(body(1), TURNS[0]["headers"])
        sessions.request(f)
        assert Exchange.of(f).session is None  # not on the way to the upstream
        await asyncio.sleep(0)
        assert Exchange.of(f).session["turn"] == 1
        early = chat_flow(body(2), TURNS[0]["headers"])
        sessions.request(early)
        early.response = tflow.tresp()
        sessions.response(early)  # answered before the loop came round: done now
        assert Exchange.of(early).session["turn"] == 2
        report.response(early)  # the tool-call check, which the outcome counts after every hook
        await asyncio.sleep(0)
        return sessions.index.get(SESSION_ID).turns[1]

    turn = asyncio.run(run())
    assert turn.tool_calls == 2 and turn.tool_findings == len(turn.answer.get("findings", [])) and turn.finished


def test_kept_like_flows(addons):
    sessions, _, tctx = addons
    tctx.configure(sessions, translate_keep_flows=2)
    for name in "abc":
        exchange(addons, chat_flow(body(1), {"x-session-affinity": f"ses_{name}"}))
    assert [s.id for s in sessions.index.sessions()] == ["ses_c", "ses_b"] and sessions.index.dropped_sessions == 1


def routed_flow(data: dict, headers: dict, upstream_body: bytes):
    """A chat flow as routing leaves it: the upstream request in its own format (Gemini's native API here), the
    client's messages split and its body on the exchange record."""
    chat = parse_chat_request(encoded(data), 64 << 20)
    f = chat_flow(data, headers)
    f.request.content = upstream_body
    Exchange.of(f).conversation = (chat.split, chat.body)
    return f


def test_a_native_api_turn_is_read_from_what_the_client_sent(addons):
    native = orjson.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    flows = [exchange(addons, routed_flow(t["body"], t["headers"], native)) for t in TURNS]
    assert [Exchange.of(f).session["turn"] for f in flows] == [1, 2, 3]
    assert Exchange.of(flows[1]).session["diff"]["new_count"] == 2
    assert all(Exchange.of(f).conversation is None for f in flows)  # let go once read: flows are kept a while
    assert addons[0].index.get(SESSION_ID).turns[2].new.startswith(f"turn 3 of {TAG}: +2")


def test_the_split_is_let_go_when_no_turn_is_read(addons):
    answered = routed_flow(body(1), TURNS[0]["headers"], b"{}")
    answered.response = tflow.tresp()  # answered by the proxy itself (an error)
    addons[0].request(answered)
    assert Exchange.of(answered).conversation is None and Exchange.of(answered).session is None
