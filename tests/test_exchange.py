"""addon/formats/exchange.py: the exchange record, typed in the proxy, plain data in -w files and flow copies.

Flows go through mitmproxy's own writer and reader (FlowWriter / FlowReader, tnetstring), its flow.copy() and
backup/revert, and mitmweb's flow_to_json, as mitmdump -w, mitmweb and `mitmdump -nr` use them.
"""

import io
import json

from mitmproxy import http
from mitmproxy import io as mitmio
from mitmproxy.test import tflow
from mitmproxy.tools.web.app import flow_to_json

from addon.formats.exchange import KEY, Exchange

SESSION = {"id": "ses_1", "parent_id": None, "source": "header", "tag": "s:3f2a", "turn": 2, "diff": {"new_count": 2}}

# What the dict-style code before the record wrote for a streamed Gemini answer with a fallback (field for field
# as routing, responses, fallbacks, report and sessions set them), as it is found in -w files written then.
OLD_STYLE = {
    "endpoint": "POST /v1/chat/completions",
    "client_model": "local-model",
    "upstream_model": "gemini-2.5-flash",
    "stream": True,
    "litellm_model": "openai/gemini-2.5-flash",
    "api_base": "https://generativelanguage.googleapis.com/v1beta/openai/",
    "provider": "local",
    "is_gemini": True,
    "key": "AIza…7890",
    "key_source": "GEMINI_API_KEY",
    "key_hint": "The proxy sent the key from GEMINI_API_KEY (AIza…7890) to generativelanguage.googleapis.com.",
    "t_request": 1_700_000_000.0,
    "repairs": ["dropped field prompt_cache_key"],
    "fallbacks": ["local-b"],
    "context_window": 1_048_576,
    "price_in": 3e-07,
    "price_out": 2.5e-06,
    "t_end": 1_700_000_000.7,
    "t_first_chunk": 1_700_000_000.4,
    "chunk_times": [0.412, 0.7],
    "upstream_raw": b'data: {"choices": []}\n\ndata: [DONE]\n\n',
    "answer": {"content": "Hi", "reasoning": "", "tool_calls": [], "finish_reason": "stop", "usage": None},
    "body_truncated": False,
    "stream_done": True,
    "error": None,
    "attempts": [{"model": "local-model", "upstream_model": "gemini-2.5-flash", "api_base": "x", "t": 1.0}],
    "tool_checks": [],
    "heading_logged": 1,
    "session": SESSION,
}


def full_record() -> Exchange:
    return Exchange(
        endpoint="POST /v1/chat/completions",
        client_model="local-model",
        upstream_model="gemini-2.5-flash",
        is_gemini=True,
        key="AIza…7890",
        t_request=1_700_000_000.0,
        repairs=["dropped field prompt_cache_key"],
        context_window=1_048_576,
        price_in=3e-07,
        answer={"content": "Hi", "tool_calls": [{"id": "c1", "name": "read", "arguments": "{}"}], "usage": None},
        chunk_times=[0.412, 0.7],
        upstream_raw=b"data: [DONE]\n\n",
        client_request={"method": "POST", "path": "/v1/chat/completions", "headers": [["x", "1"]], "body": b"{}"},
        attempts=[{"model": "local-model", "status": 503, "t": 1.0}],
        tool_checks=["read (c1): missing required field 'filePath'"],
        session=SESSION,
    )


def through_a_file(*flows: http.HTTPFlow) -> list[http.HTTPFlow]:
    """The flows written as `mitmdump -w` writes them and read back as `mitmdump -nr` / mitmweb read them."""
    buffer = io.BytesIO()
    writer = mitmio.FlowWriter(buffer)
    for flow in flows:
        writer.add(flow)
    buffer.seek(0)
    return list(mitmio.FlowReader(buffer).stream())


def test_a_record_round_trips_through_a_flow_file():
    flow = tflow.tflow(resp=True)
    flow.metadata[KEY] = record = full_record()
    record.original = http.Request.make("POST", "http://127.0.0.1:8000/v1/chat/completions", b"{}")
    [read] = through_a_file(flow)
    saved = read.metadata[KEY]
    assert isinstance(saved, dict) and saved == record.to_state()  # plain data in the file
    assert saved["upstream_raw"] == b"data: [DONE]\n\n" and saved["session"] == SESSION
    assert "original" not in saved and "extra" not in saved  # the live request is never saved
    back = Exchange.of(read)
    assert back == record and back.original is None
    assert read.metadata[KEY] is back  # upgraded in place: every addon reads the same record


def test_only_what_differs_from_the_default_is_saved():
    assert Exchange().to_state() == {}
    assert Exchange(error="refused", is_gemini=False, repairs=[]).to_state() == {"error": "refused"}
    assert Exchange(tool_checks=[]).to_state() == {"tool_checks": []}  # checked, nothing found: not "unchecked"


def test_a_dict_written_by_the_earlier_code_upgrades():
    old = tflow.tflow(resp=True)
    old.metadata[KEY] = dict(OLD_STYLE)
    [read] = through_a_file(old)
    record = Exchange.find(read)
    assert isinstance(record, Exchange) and record.extra == {}  # every key it wrote is a field
    assert record.client_model == "local-model" and record.key == "AIza…7890" and record.stream is True
    assert record.upstream_raw == OLD_STYLE["upstream_raw"] and record.answer == OLD_STYLE["answer"]
    assert record.t_first_chunk == 1_700_000_000.4 and record.heading_logged == 1
    assert record.session == SESSION and record.attempts == OLD_STYLE["attempts"] and record.tool_checks == []
    assert record.api == "openai" and record.fallback_of is None  # defaults for keys it never wrote
    # saved again, it holds what it held, less the keys that only said "the default"
    assert record.to_state() == {k: v for k, v in OLD_STYLE.items() if v not in (None, False)}


def test_unknown_keys_and_odd_values_are_kept_and_written_back():
    flow = tflow.tflow(resp=True)
    flow.metadata[KEY] = {"client_model": "m", "from_a_newer_version": {"x": [1, 2]}, "t_request": "not a time"}
    record = Exchange.of(flow)
    assert record.client_model == "m" and record.t_request is None
    assert record.extra == {"from_a_newer_version": {"x": [1, 2]}, "t_request": "not a time"}
    [read] = through_a_file(flow)
    assert read.metadata[KEY] == {"client_model": "m", "from_a_newer_version": {"x": [1, 2]}, "t_request": "not a time"}
    record.t_request = 5.0  # a value of the field's type wins over the odd one kept
    assert record.to_state()["t_request"] == 5.0


def test_a_copied_flow_gets_its_own_record():
    flow = tflow.tflow(resp=True)
    flow.metadata[KEY] = record = full_record()
    copy = flow.copy()
    assert isinstance(copy.metadata[KEY], dict)
    twin = Exchange.of(copy)
    assert twin == record and twin is not record
    twin.repairs.append("only in the copy")
    twin.answer["content"] = "changed"
    assert record.repairs == ["dropped field prompt_cache_key"] and record.answer["content"] == "Hi"


def test_mitmwebs_revert_brings_the_record_back():
    flow = tflow.tflow(resp=True)
    flow.metadata[KEY] = Exchange(client_model="m")
    flow.backup()
    Exchange.of(flow).error = "edited"
    flow.revert()
    assert Exchange.of(flow) == Exchange(client_model="m")


def test_mitmweb_serialises_the_flow():
    flow = tflow.tflow(resp=True)
    flow.metadata[KEY] = full_record()
    flow.metadata[KEY].original = http.Request.make("POST", "http://127.0.0.1:8000/v1/chat/completions", b"{}")
    shown = flow_to_json(flow)
    json.dumps(shown)  # what mitmweb sends its browser
    assert shown["id"] == flow.id


def test_find_creates_nothing():
    flow = tflow.tflow()
    assert Exchange.find(flow) is None and KEY not in flow.metadata
    flow.metadata[KEY] = "not a record"
    assert Exchange.find(flow) is None
    record = Exchange.of(flow)  # a writer replaces it, keeping what was there
    assert record.extra == {"value": "not a record"} and flow.metadata[KEY] is record


def test_a_first_native_path_flow_keeps_its_client_body_as_it_was():
    """That version saved the client's body itself (bytes) under client_request, now the kept request (a dict)."""
    state = {"api": "gemini", "client_request": b'{"messages": []}', "client_request_truncated": False}
    record = Exchange.from_state(state)
    assert record.client_request is None and record.api == "gemini"
    assert record.extra == {"client_request": b'{"messages": []}', "client_request_truncated": False}
    assert record.to_state() == state


def test_a_deep_copy_is_an_exchange_equal_to_it_sharing_nothing():
    import copy

    record = full_record()
    record.original = http.Request.make("POST", "http://127.0.0.1:8000/v1/chat/completions", b"{}")
    twin = copy.deepcopy(record)
    assert type(twin) is Exchange and twin == record and twin is not record
    assert twin.original is None  # the live request is not copied (nor saved)
    assert dict(twin) == record.to_state()  # as a dict it is what files hold
    twin.answer["content"] = "changed"
    assert record.answer["content"] == "Hi"
    assert copy.deepcopy(twin) == twin and bool(Exchange())
