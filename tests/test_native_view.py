"""addon/inspection/native_view.py, and the inspection pieces that read the client's request on native flows:
the tool-call check, the chat view's offered tools, and cached tokens priced as such."""

from __future__ import annotations

import orjson
import pytest
from mitmproxy.contentviews import Metadata
from mitmproxy.test import tflow

from addon.formats.exchange import Exchange
from addon.inspection import summary
from addon.inspection.client_body import client_body
from addon.inspection.native_view import NativeRequestView
from addon.inspection.render import conversation
from addon.inspection.render.document import RULE
from addon.inspection.report import Report

CLIENT = {
    "model": "native-3",
    "messages": [{"role": "user", "content": "read a.txt"}],
    "tools": [
        {
            "type": "function",
            "function": {"name": "read", "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}},
        }
    ],
}
NATIVE = {
    "contents": [
        {"role": "user", "parts": [{"text": "read a.txt"}]},
        {
            "role": "model",
            "parts": [{"function_call": {"name": "read", "args": {"path": "a"}}, "thoughtSignature": "c2ln"}],
        },
        {"role": "user", "parts": [{"function_response": {"name": "read", "response": {"content": "A"}}}]},
    ],
    "tools": [{"function_declarations": [{"name": "read"}]}],
    "generationConfig": {"thinkingConfig": {"includeThoughts": True}},
}


def native_flow():
    flow = tflow.tflow(resp=True)
    flow.request.content = orjson.dumps(NATIVE)
    flow.metadata["llm"] = {"client_request": orjson.dumps(CLIENT), "api": "gemini"}  # as first native flows saved it
    return flow


def test_the_native_request_view_shows_both_sides() -> None:
    flow = native_flow()
    metadata = Metadata(flow=flow, http_message=flow.request)
    view = NativeRequestView()
    assert view.render_priority(flow.request.content, metadata) > 1
    text = view.prettify(flow.request.content, metadata)
    assert "the client's request (OpenAI)" in text and "read a.txt" in text
    assert text.index("read a.txt") < text.index(RULE) < text.index("what Gemini received (generateContent):")
    assert 'function call read({"path":"a"}) [thought signature]' in text
    assert 'function result read: {"content":"A"}' in text and "includeThoughts" in text


def test_the_view_is_not_for_other_bodies() -> None:
    flow = tflow.tflow()
    metadata = Metadata(flow=flow, http_message=flow.request)
    assert NativeRequestView().render_priority(orjson.dumps(CLIENT), metadata) < 0
    with pytest.raises(ValueError):
        NativeRequestView().prettify(orjson.dumps(CLIENT), metadata)


def test_tool_checks_and_the_chat_view_read_the_tools_from_the_clients_request() -> None:
    flow = native_flow()
    findings = Report.check_tools(flow, [{"name": "write", "arguments": "{}"}], client_body(Exchange.of(flow)))
    assert findings and "write" in findings[0]
    assert "read" in (conversation.offered(Metadata(flow=flow), Exchange.of(flow)) or {})


def test_cached_tokens_are_priced_at_the_cache_price() -> None:
    meta = Exchange(price_in=1e-6, price_out=2e-6, price_cached=1e-7)
    usage = {"prompt_tokens": 1000, "completion_tokens": 10, "prompt_tokens_details": {"cached_tokens": 800}}
    assert summary.price(meta, usage) == pytest.approx(200 * 1e-6 + 800 * 1e-7 + 10 * 2e-6)
    meta.price_cached = None
    assert summary.price(meta, usage) == pytest.approx(1000 * 1e-6 + 10 * 2e-6)
