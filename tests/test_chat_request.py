"""The chat request validator, and the path that checks a conversation without decoding it."""

import json

import msgspec
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from addon.formats.conversation import Conversations
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


def parsed(chat):
    """A ChatRequest as comparable values (the raw messages as bytes, the split as its fields)."""
    body = {k: bytes(v) if isinstance(v, msgspec.Raw) else v for k, v in chat.body.items()}
    split = chat.split
    return body, chat.model, chat.stream, chat.call_refs, (split.raw, list(split.starts), list(split.ends))


def layout(fields_before: dict, messages: list, fields_after: dict, indent) -> bytes:
    return json.dumps({**fields_before, "messages": messages, **fields_after}, indent=indent).encode()


turn_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "tool"]), "content": st.text(max_size=12) | st.none()},
    optional={"tool_call_id": st.text(max_size=4)},
)
field_values = st.dictionaries(
    st.sampled_from(["temperature", "user", "metadata", "tools", "stream", "top_p", "x"]),
    st.none() | st.booleans() | st.floats(0, 1) | st.text(max_size=5) | st.lists(st.integers(), max_size=3),
    max_size=3,
)


@given(
    before=field_values,
    after=field_values,
    turns=st.lists(
        st.tuples(st.sampled_from(["append", "replace_last", "new_fields"]), st.lists(turn_message, max_size=2)),
        min_size=1,
        max_size=6,
    ),
    indent=st.sampled_from([None, 2]),
)
def test_a_turn_read_with_the_kept_splits_is_read_as_the_plain_way_reads_it(before, after, turns, indent):
    before = {"model": "local-model", **before}
    kept = Conversations()
    history = [{"role": "system", "content": "be brief"}]
    for action, new in turns:
        if action == "append":
            history = history + new
        elif action == "replace_last":
            history = history[:-1] + new
        else:
            after = {**after, "user": f"turn {len(history)}"}
        raw = layout(before, history, after, indent)
        try:
            expected = parsed(parse_chat_request(raw, 1 << 20))
        except ClientError as e:
            expected = e.code
        try:
            got = parsed(parse_chat_request(raw, 1 << 20, kept))
        except ClientError as e:
            got = e.code
        assert got == expected


def outcome(raw: bytes, kept: Conversations | None):
    try:
        return parsed(parse_chat_request(raw, 1 << 20, kept))
    except ClientError as e:
        return e.code, str(e)


@pytest.mark.parametrize(
    "middle",
    [
        b'[{"role": "user", "content": "hi"}, {"role": "user", "content": 5}]',  # content of the wrong kind
        b'[{"role": "user", "content": "hi"}], "messages": []',  # a second value: the plain way takes the last
        b'[{"role": "user", "content": "hi"}], "stream": false, "user": "x"',  # fields between
        b'[{"role": "user", "content": "hi"}',  # unfinished
        b'[{"role": "user", "content": "hi"}] ]',
        b'{"role": "user", "content": "hi"}',  # not a list
    ],
)
def test_what_follows_a_kept_turn_is_read_as_the_plain_way_reads_it(middle):
    kept = Conversations()
    head, tail = b'{"model": "local-model", "messages": ', b', "stream": true}'
    parse_chat_request(head + b'[{"role": "user", "content": "hi"}]' + tail, 1 << 20, kept)
    assert kept.kept  # its split is kept for the next turn
    raw = head + middle + tail
    assert outcome(raw, kept) == outcome(raw, None)
