"""The chat request validator, and the path that checks a conversation without decoding it."""

import json

import msgspec
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from addon.request.chat_request import ClientError, encode_body, load_messages, parse_chat_request


def body(**fields) -> bytes:
    return json.dumps({"model": "local-model", "messages": [{"role": "user", "content": "hi"}], **fields}).encode()


def test_a_good_request_parses():
    chat = parse_chat_request(body(stream=True), 1 << 20)
    assert chat.model == "local-model" and chat.stream is True and chat.call_refs == b""
    assert isinstance(chat.body["messages"], msgspec.Raw)  # checked, not decoded
    assert load_messages(chat).body["messages"][0]["role"] == "user"


@pytest.mark.parametrize(
    "raw, code, status",
    [
        (b"{", "invalid_json", 400),
        (b"[]", "invalid_json", 400),
        (b'{"messages": []}', "invalid_model", 400),
        (b'{"model": "m", "messages": {}}', "invalid_messages", 400),
        (b'{"model": "m", "messages": [{"content": "x"}]}', "invalid_messages", 400),
        (b"x" * 2048, "request_too_large", 413),
    ],
)
def test_bad_requests_say_what_is_wrong(raw, code, status):
    with pytest.raises(ClientError) as caught:
        parse_chat_request(raw, 1024)
    assert caught.value.code == code and caught.value.status == status and str(caught.value)


def plain_parse(raw: bytes):
    """What the plain parse (orjson, every check on decoded values) says of a body: its request or its error."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "invalid_json"
    try:
        chat = load_messages(parse_chat_request(raw, 1 << 20))
    except ClientError as e:
        return e.code
    assert chat.body == body
    return chat.model, chat.stream


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model": "m", "messages": [{"role": "user", "content": 5}]}',  # content of the wrong kind
        b'{"model": "m", "messages": [{"role": null, "content": "x"}]}',
        b'{"model": "m", "messages": [1]}',
        b'{"model": "m", "messages": [{"role": "user", "content": "\xff"}]}',  # invalid UTF-8, skipped by msgspec
        b'{"model": "m", "messages": [{"role": "user", "content": "\\ud800"}]}',  # a lone surrogate
        b'{"model": "m", "messages": [{"role": "user", "content": ' + b"[" * 3000 + b"]" * 3000 + b"}]}",
        b'{"model": "m", "messages": [], "temperature": NaN}',
        b'{"model": "m", "messages": []} trailing',
    ],
)
def test_what_the_raw_path_cannot_vouch_for_gets_the_plain_answer(raw):
    with pytest.raises(ClientError) as caught:
        parse_chat_request(raw, 1 << 20)
    assert caught.value.status == 400 and caught.value.code in ("invalid_json", "invalid_messages")


def test_the_body_is_written_out_with_the_conversation_as_it_came():
    raw = rb'{"messages":[{"role":"user","content":"h\u00e9 \"x\""}], "model": "local-model", "tools": []}'
    chat = parse_chat_request(raw, 1 << 20)
    chat.body["model"] = "gemini-2.5-flash"
    assert encode_body(chat.body) == (
        rb'{"messages":[{"role":"user","content":"h\u00e9 \"x\""}],'
        rb'"model":"gemini-2.5-flash","tools":[]}'
    )


def test_tool_call_references_are_collected_while_messages_stay_raw():
    raw = json.dumps(
        {
            "model": "m",
            "messages": [
                {"role": "assistant", "content": None, "tool_calls": [{"id": "c1__thought__s", "type": "function"}]},
                {"role": "tool", "tool_call_id": "c1__thought__s", "content": "ok"},
            ],
        }
    ).encode()
    chat = parse_chat_request(raw, 1 << 20)
    assert chat.call_refs == b'[{"id": "c1__thought__s", "type": "function"}]\n"c1__thought__s"'


message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "tool"]) | st.integers(-1000, 1000)},
    optional={
        "content": st.none()
        | st.text(max_size=10)
        | st.integers(-1000, 1000)
        | st.lists(st.text(max_size=5), max_size=2),
        "tool_call_id": st.text(max_size=5) | st.none(),
    },
)


@given(
    st.lists(message, max_size=3) | st.integers(-1000, 1000),
    st.sampled_from(["local-model", "", 3]),
    st.none() | st.booleans() | st.text(max_size=3),
)
def test_both_paths_agree(messages, model, stream):
    raw = orjson.dumps({"model": model, "messages": messages, "stream": stream})
    try:
        expected = _parse_all_for_test(raw)
    except ClientError as e:
        expected = e.code
    assert plain_parse(raw) == expected


def _parse_all_for_test(raw: bytes):
    from addon.request.chat_request import _parse_all

    chat = _parse_all(raw)
    return chat.model, chat.stream
