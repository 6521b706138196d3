"""End to end: compressed chat bodies through a running proxy reach the upstream as plain JSON; a bomb gets a 413."""

from __future__ import annotations

import json

import httpx
import pytest
from mitmproxy.net import encoding

from tests.conftest import ProxyProcess
from tests.test_body_encoding import bomb

pytestmark = pytest.mark.e2e

CHAT = {"model": "local-model", "messages": [{"role": "user", "content": "compressed hello " * 200}]}


def post(proxy: ProxyProcess, body: bytes, coding: str) -> httpx.Response:
    headers = {"content-type": "application/json", "content-encoding": coding, "authorization": "Bearer x"}
    return httpx.post(f"{proxy.base_url}/chat/completions", content=body, headers=headers, timeout=60)


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_a_compressed_body_reaches_the_upstream_decoded(proxy, fake, coding):
    plain = json.dumps(CHAT).encode()
    response = post(proxy, encoding.encode(plain, coding), coding)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "local-model"
    [sent] = fake.chat_requests()
    assert sent["body"]["model"] == "gemini-2.5-flash"  # valid JSON upstream, with the rewritten model
    assert sent["body"]["messages"] == CHAT["messages"]
    headers = {name.lower(): value for name, value in sent["headers"].items()}
    assert "content-encoding" not in headers
    assert int(headers["content-length"]) == sent["size"]


def test_a_gzip_bomb_gets_413_and_the_proxy_keeps_serving(proxy, fake):
    response = post(proxy, bomb("gzip", 64 << 20), "gzip")  # 64 MiB of zeros, over the 32 MiB default limit
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "request_too_large" and "33,554,432" in error["message"]
    assert fake.chat_requests() == []
    again = post(proxy, encoding.encode(json.dumps(CHAT).encode(), "gzip"), "gzip")
    assert again.status_code == 200 and again.json()["model"] == "local-model"


def test_an_unknown_coding_gets_415_and_corrupt_data_400(proxy, fake):
    unknown = post(proxy, json.dumps(CHAT).encode(), "compress")
    assert unknown.status_code == 415 and unknown.json()["error"]["code"] == "unsupported_content_encoding"
    corrupt = post(proxy, b"\x1f\x8b\x08\x00 not really gzip", "gzip")
    assert corrupt.status_code == 400 and corrupt.json()["error"]["code"] == "invalid_content_encoding"
    assert fake.chat_requests() == []
