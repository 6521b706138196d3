"""End to end: hostile and broken requests each get a clear OpenAI-shaped 4xx, and the proxy keeps serving."""

from __future__ import annotations

import http.client
import json
import socket

import pytest

from tests.conftest import ProxyProcess

pytestmark = pytest.mark.e2e


def raw_post(
    proxy: ProxyProcess, body: bytes, headers: dict[str, str] | None = None, path: str = "/v1/chat/completions"
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=60)
    try:
        conn.request("POST", path, body, {"content-type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def assert_openai_4xx(status: int, raw: bytes, expected: int | None = None) -> dict:
    assert 400 <= status < 500, (status, raw[:300])
    if expected:
        assert status == expected, (status, raw[:300])
    error = json.loads(raw)["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"].endswith("_error") and "code" in error
    return error


def assert_still_serving(proxy: ProxyProcess) -> None:
    ok = {"model": "local-model", "messages": [{"role": "user", "content": "still there"}]}
    status, raw = raw_post(proxy, json.dumps(ok).encode())
    assert status == 200 and json.loads(raw)["model"] == "local-model"


def chat(**fields) -> bytes:
    body = {"model": "local-model", "messages": [{"role": "user", "content": "hi"}]}
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def test_body_over_the_default_limit_gets_413(proxy, fake):
    body = b'{"model": "local-model", "messages": [{"role": "user", "content": "' + b"x" * (33 * 2**20) + b'"}]}'
    status, raw = raw_post(proxy, body)
    assert "33,554,432" in assert_openai_4xx(status, raw, 413)["message"]  # the limit is named
    assert fake.chat_requests() == []
    assert_still_serving(proxy)


def test_body_limit_is_an_option(proxy_factory, fake):
    small = proxy_factory("--set", "translate_max_body=2000")
    assert_openai_4xx(*raw_post(small, chat(messages=[{"role": "user", "content": "y" * 3000}])), 413)
    assert_still_serving(small)


NESTED = (
    b'{"model": "local-model", "messages": [{"role": "user", "content": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]}"
)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            b'{"model": "local-model", "messages": [{"role": "user", "content": "\xff\xfe\xfa"}]}', id="bad-utf8"
        ),
        pytest.param(b"\xed\xa0\x80", id="lone-surrogate"),
        pytest.param(NESTED, id="deep-nesting"),
        pytest.param(b"{" * 100_000, id="deep-open-braces"),
        pytest.param(b"", id="empty"),
        pytest.param(b"null", id="null"),
        pytest.param(b'"a string"', id="string"),
        pytest.param(chat(messages={"role": "user"}), id="messages-object"),
        pytest.param(chat(messages="hello"), id="messages-string"),
        pytest.param(chat(messages=None), id="messages-null"),
        pytest.param(chat(messages=...), id="messages-missing"),
        pytest.param(chat(messages=[["user", "hi"]]), id="message-list"),
        pytest.param(chat(messages=[{"role": 5, "content": "hi"}]), id="role-int"),
        pytest.param(chat(messages=[{"content": "hi"}]), id="role-missing"),
        pytest.param(chat(model=None), id="model-null"),
        pytest.param(chat(model=["local-model"]), id="model-list"),
        pytest.param(chat(model={"name": "x"}), id="model-object"),
        pytest.param(chat(model=""), id="model-empty"),
        pytest.param(chat(stream="yes"), id="stream-string"),
        pytest.param(chat(stream=1), id="stream-int"),
        pytest.param(chat(model="../../../etc/passwd"), id="model-dotdot"),
        pytest.param(chat(model="local-model/../../x"), id="model-dotdot-inner"),
        pytest.param(chat(model="a?b=c"), id="model-query"),
        pytest.param(chat(model="a#frag"), id="model-fragment"),
        pytest.param(chat(model="a\\b"), id="model-backslash"),
        pytest.param(chat(model="a\nb"), id="model-newline"),
        pytest.param(chat(model="a\x00b"), id="model-nul"),
        pytest.param(chat(model="m" * 10_000), id="model-10000-chars"),
        pytest.param(chat(model="//evil.example.com/x"), id="model-scheme-relative"),
    ],
)
def test_broken_requests_get_a_clear_4xx_and_nothing_is_forwarded(proxy, fake, body):
    assert_openai_4xx(*raw_post(proxy, body))
    assert fake.chat_requests() == []
    assert_still_serving(proxy)


WRONG_TYPES = [
    (dict(temperature="hot"), "invalid_type", "`temperature` must be a number, not str 'hot'."),
    (dict(max_tokens="many"), "invalid_type", "`max_tokens` must be an integer, not str 'many'."),
    (dict(tools="read"), "invalid_type", "`tools` must be a list, not str 'read'."),
    (dict(tools=[5]), "invalid_type", "tools[0] is not an object."),
    (dict(tool_choice=7), "invalid_type", "`tool_choice` must be a string or an object, not int '7'."),
    (dict(stop=5), "invalid_type", "`stop` must be a string or a list, not int '5'."),
    (dict(n="two"), "invalid_type", "`n` must be an integer, not str 'two'."),
    (
        dict(messages=[{"role": "user", "content": 5}]),
        "invalid_messages",
        "messages[0].content must be a string, a list of parts or null.",
    ),
]


@pytest.mark.parametrize(
    "fields,code,message",
    [pytest.param(*case, id=",".join(f"{k}={v!r}"[:30] for k, v in case[0].items())) for case in WRONG_TYPES],
)
def test_wrong_field_types_get_the_proxys_own_400_and_nothing_is_forwarded(proxy, fake, fields, code, message):
    """The proxy checks the types of the fields it knows: its own code and message, and the upstream never sees
    the request (an upstream's 4xx passed on would look alike but for these)."""
    error = assert_openai_4xx(*raw_post(proxy, chat(**fields)), 400)
    assert error == {"message": message, "type": "invalid_request_error", "code": code}
    assert fake.chat_requests() == []
    assert_still_serving(proxy)


@pytest.mark.parametrize(
    "header",
    [
        "Host",
        "X-Forwarded-Host",
        "Forwarded",
        "X-Original-URL",
        "X-Rewrite-URL",
        "X-Forwarded-Proto",
        "X-Forwarded-For",
    ],
)
def test_headers_cannot_redirect_the_upstream(proxy, fake, header):
    value = "for=1.2.3.4;host=evil.example.com" if header == "Forwarded" else "evil.example.com"
    status, raw = raw_post(proxy, chat(), {header: value})
    assert status == 200 and json.loads(raw)["model"] == "local-model"
    upstream = fake.chat_requests()[-1]
    assert upstream["headers"]["Host"] == f"127.0.0.1:{fake.port}"
    sent = {k.lower(): v for k, v in upstream["headers"].items()}
    assert "evil.example.com" not in json.dumps(sent)


def test_absolute_form_request_line_cannot_pick_another_host(proxy, fake):
    body = chat()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock:
        sock.sendall(
            b"POST http://evil.example.com/v1/chat/completions HTTP/1.1\r\nHost: evil.example.com\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, answer = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), reply[:300]  # served as the reverse proxy's own route
    assert json.loads(answer)["model"] == "local-model"
    # The one request that left went to the configured upstream, not to the host in the request line.
    assert [r["headers"]["Host"] for r in fake.requests] == [f"127.0.0.1:{fake.port}"]
    assert_still_serving(proxy)


def test_garbage_on_the_wire_does_not_stop_the_proxy(proxy):
    for garbage in (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ):
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
            sock.sendall(garbage)
            sock.shutdown(socket.SHUT_WR)
            try:
                while sock.recv(65536):
                    pass
            except OSError:
                pass
    assert proxy.alive()
    assert_still_serving(proxy)
