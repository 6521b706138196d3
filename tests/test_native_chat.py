"""addon/request/native_chat.py and addon/request/vertex_auth.py, hooks called directly."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from mitmproxy.test import tflow

from addon.config import opencode_config, resolution
from addon.formats.exchange import Exchange
from addon.request import native_chat
from addon.request.chat_request import parse_chat_request
from addon.request.vertex_auth import VertexAuth
from addon.runtime import google_token

KEY = "AIzaSyREALKEY-0123456789abcdef"
BODY = {"model": "fast", "messages": [{"role": "user", "content": "hi"}], "stream": True, "tools": []}


def target(api: str) -> resolution.Target:
    config = opencode_config.parse_config("{}", "opencode.json", {"GOOGLE_CLOUD_PROJECT": "p"})
    prefix = "gemini" if api == "gemini" else "vertex_ai"
    settings = resolution.Settings(api_base=None, api_key=KEY)
    return resolution.resolve(config, f"{prefix}/gemini-2.5-flash", settings)


def test_the_flow_holds_gemini_body_and_the_clients_request_and_the_key_only_on_the_wire() -> None:
    flow = tflow.tflow()
    flow.request.content = orjson.dumps(BODY)
    chat = parse_chat_request(flow.request.content, 1 << 20)
    meta = Exchange.of(flow)
    native_chat.rewrite(flow, chat, target("gemini"), meta)
    native_chat.attach_credentials(flow, target("gemini"))
    assert orjson.loads(flow.request.content)["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert meta.api == "gemini" and meta.client_request is None  # client_request.py keeps the client's request
    assert native_chat.path(target("gemini"), True) == "models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert flow.request.headers["x-goog-api-key"] == resolution.mask_key(KEY)
    assert KEY.encode() in bytes(flow.request.headers) and b"authorization" not in bytes(flow.request.headers).lower()


def test_vertex_without_credentials_is_an_openai_shaped_502(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_credentials() -> None:
        raise google_token.CredentialsError("No Google credentials for Vertex AI: none here.")

    monkeypatch.setattr(google_token, "load_credentials", no_credentials)
    flow = tflow.tflow()
    flow.metadata["llm"] = Exchange(vertex_auth=True)
    asyncio.run(VertexAuth().request(flow))
    assert flow.response.status_code == 502
    assert orjson.loads(flow.response.content)["error"]["code"] == "upstream_credentials"


def test_vertex_token_is_refreshed_once_and_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    class Credentials:
        valid, token, refreshed = False, None, 0

    creds = Credentials()

    def refresh(c: Credentials) -> None:
        c.refreshed += 1
        c.valid, c.token = True, "ya29.secret-token-0123456789"

    monkeypatch.setattr(google_token, "load_credentials", lambda: creds)
    monkeypatch.setattr(google_token, "refresh", refresh)
    auth = VertexAuth()
    flows = [tflow.tflow() for _ in range(3)]
    for flow in flows:
        flow.metadata["llm"] = Exchange(vertex_auth=True)

    async def all_at_once() -> None:
        await asyncio.gather(*(auth.request(f) for f in flows))

    asyncio.run(all_at_once())
    assert creds.refreshed == 1
    for flow in flows:
        assert flow.request.headers["authorization"] == "Bearer ya29...89"
        assert b"Bearer ya29.secret-token-0123456789" in bytes(flow.request.headers)
