"""The "LLM client request" contentview (inspection/client_view.py)."""

from __future__ import annotations

import json

import pytest
from mitmproxy.contentviews import Metadata
from mitmproxy.test import tflow

from addon.formats.exchange import Exchange
from addon.inspection.client_view import ClientRequestView

BODY = {"model": "local-3", "messages": [{"role": "user", "content": "read it"}], "temperature": 0.2}


def metadata(stored: dict | None) -> Metadata:
    flow = tflow.tflow()
    if stored is not None:
        flow.metadata["llm"] = Exchange(client_request=stored)
    return Metadata(flow=flow, http_message=flow.request)


def test_the_client_request_is_shown_with_its_conversation():
    stored = {
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [["content-type", "application/json"]],
        "body": json.dumps(BODY).encode(),
    }
    text = ClientRequestView().prettify(b"upstream body", metadata(stored))
    assert text.startswith("POST /v1/chat/completions")
    assert "content-type: application/json" in text and '"model": "local-3"' in text
    assert "chat request: 1 messages, 0 tools" in text and "temperature: 0.2" in text


def test_a_cut_body_says_so():
    stored = {
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [],
        "body": b'{"model": "lo',
        "truncated": 999,
    }
    assert "body cut at 13 of 999 bytes" in ClientRequestView().prettify(b"", metadata(stored))


def test_a_flow_without_one_is_not_this_views():
    view = ClientRequestView()
    with pytest.raises(ValueError, match="keeps no client request"):
        view.prettify(b"{}", metadata(None))
    assert view.render_priority(b"{}", metadata(None)) < 0
