"""addon/runtime/error_pages.py: mitmproxy's own error responses come out in OpenAI's JSON shape; the swap of mitmproxy's page builder goes on once and comes off whole."""

from __future__ import annotations

import json

from mitmproxy.proxy.layers.http import _http1
from mitmproxy.test import tutils

from addon.runtime import error_pages


def parse(raw: bytes):
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return lines[0], headers, body


def test_an_unreachable_upstream_gets_an_openai_shaped_502():
    status, headers, body = parse(error_pages.make_error_response(502, "Connect call failed"))
    assert status == "HTTP/1.1 502 Bad Gateway"
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    assert headers["content-length"] == str(len(body)) and headers["server"].startswith("mitmproxy ")
    error = json.loads(body)["error"]
    assert error["code"] == "upstream_unreachable" and "Connect call failed" in error["message"]
    assert set(error) >= {"message", "type", "code"}


def test_other_statuses_are_proxy_errors():
    _, _, body = parse(error_pages.make_error_response(504))
    assert json.loads(body)["error"]["code"] == "proxy_error" and "no detail" in json.loads(body)["error"]["message"]


def test_a_whole_response_has_its_length_instead_of_chunks():
    streamed = tutils.tresp(content=b"data: x\n\n", headers=((b"transfer-encoding", b"chunked"),))
    whole = error_pages.whole_response(streamed)
    assert "transfer-encoding" not in whole.headers and whole.headers["content-length"] == "9"
    assert streamed.headers["transfer-encoding"] == "chunked"  # the flow's own response is left as it was


def test_installed_once_and_removed_whole():
    original = _http1.make_error_response
    error_pages.install()
    error_pages.install()  # a reloaded script asks again: the saved original stays mitmproxy's
    try:
        assert _http1.make_error_response is error_pages.make_error_response
        assert error_pages._saved == [original]
    finally:
        error_pages.uninstall()
    assert _http1.make_error_response is original
    error_pages.uninstall()  # nothing installed: nothing changes
    assert _http1.make_error_response is original


def test_the_page_builder_mitmproxy_calls_is_the_swapped_one():
    """mitmproxy's HTTP/1 server looks the function up in its module each time, so the swap reaches it."""
    error_pages.install()
    try:
        assert b"application/json" in _http1.make_error_response(502, "x")
    finally:
        error_pages.uninstall()
    assert b"text/html" in _http1.make_error_response(502, "x")
