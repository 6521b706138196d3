"""The client's request kept beside the rewritten one (request/client_request.py), hooks called directly."""

from __future__ import annotations

import json

from mitmproxy.test import taddons, tflow

from addon.formats.exchange import Exchange
from addon.request.client_request import ClientRequest, complete, restore, snapshot

BODY = json.dumps({"model": "local-model", "messages": [{"role": "user", "content": "hi"}]}).encode()


def chat_flow(path: str = "/v1/chat/completions", body: bytes = BODY):
    flow = tflow.tflow(live=True)
    flow.request.method, flow.request.path, flow.request.content = "POST", path, body
    flow.request.headers.update(
        {"Authorization": "Bearer proxy-secret", "x-api-key": "k", "Cookie": "c=1", "x-session-affinity": "s1"}
    )
    return flow


def test_the_hook_keeps_the_request_without_credentials():
    addon = ClientRequest()
    with taddons.context(addon):
        flow = chat_flow()
        addon.request(flow)
    stored = Exchange.of(flow).client_request
    assert stored["method"] == "POST" and stored["path"] == "/v1/chat/completions" and stored["body"] == BODY
    names = [name.lower() for name, _ in stored["headers"]]
    assert "x-session-affinity" in names
    assert not {"authorization", "x-api-key", "cookie"} & set(names)
    assert "proxy-secret" not in json.dumps(stored["headers"])
    assert complete(stored)


def test_the_body_is_cut_at_the_option():
    addon = ClientRequest()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, translate_keep_client_request=10)
        flow = chat_flow()
        addon.request(flow)
    stored = Exchange.of(flow).client_request
    assert stored["body"] == BODY[:10] and stored["truncated"] == len(BODY) and not complete(stored)


def test_other_paths_keep_no_body_and_answered_flows_are_left_alone():
    addon = ClientRequest()
    with taddons.context(addon):
        flow = chat_flow("/v1/embeddings")
        addon.request(flow)
        done = chat_flow()
        done.response = tflow.tresp()
        addon.request(done)
    assert "body" not in Exchange.of(flow).client_request
    assert "llm" not in done.metadata


def test_restore_gives_the_request_back():
    flow = chat_flow()
    stored = snapshot(flow.request, 1 << 20)
    flow.request.path, flow.request.content = "/v1beta/openai/chat/completions", b'{"model": "gemini"}'
    restore(flow.request, stored)
    assert flow.request.path == "/v1/chat/completions" and flow.request.raw_content == BODY
    assert flow.request.headers["content-length"] == str(len(BODY)) and "authorization" not in flow.request.headers


def test_a_body_translated_before_routing_is_compared_whole():
    """The fields `beside` copied are the chat body routing read; a client format translated before routing (an
    Anthropic body) is not that body, so its patch is made from the stored bytes and gives them back."""
    import orjson

    from addon.formats import kept_body
    from addon.request.chat_request import parse_chat_request
    from addon.request.client_request import beside, shrink

    anthropic = orjson.dumps(
        {"model": "m", "max_tokens": 9, "system": "s", "messages": [{"role": "user", "content": "x" * 5000}]}
    )
    chat_bytes = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 5000}], "max_tokens": 9})
    chat = parse_chat_request(chat_bytes, 1 << 20)
    client = beside(chat_bytes, chat.body)
    assert client is not None
    chat.body["model"] = "gemini-2.5-flash"
    forwarded = orjson.dumps(chat.body | {"messages": orjson.loads(bytes(chat.body["messages"]))})
    stored = {"method": "POST", "path": "/v1/messages", "headers": [], "body": anthropic}
    shrink(stored, forwarded, client, chat.body)
    rebuilt = kept_body.stored_body(stored, forwarded)
    assert rebuilt is not None and orjson.loads(rebuilt) == orjson.loads(anthropic)
