"""The chat request validator, and the model-name splice that spares re-encoding large bodies."""

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from addon.chat_request import ClientError, parse_chat_request, rename_model


def body(**fields) -> bytes:
    return json.dumps({"model": "local-model", "messages": [{"role": "user", "content": "hi"}], **fields}).encode()


def test_a_good_request_parses():
    chat = parse_chat_request(body(stream=True), 1 << 20)
    assert chat.model == "local-model" and chat.stream is True and chat.body["messages"][0]["role"] == "user"


@pytest.mark.parametrize("raw, code, status", [
    (b"{", "invalid_json", 400),
    (b"[]", "invalid_json", 400),
    (b'{"messages": []}', "invalid_model", 400),
    (b'{"model": "m", "messages": {}}', "invalid_messages", 400),
    (b'{"model": "m", "messages": [{"content": "x"}]}', "invalid_messages", 400),
    (b"x" * 2048, "request_too_large", 413),
])
def test_bad_requests_say_what_is_wrong(raw, code, status):
    with pytest.raises(ClientError) as caught:
        parse_chat_request(raw, 1024)
    assert caught.value.code == code and caught.value.status == status and str(caught.value)


@pytest.mark.parametrize("raw", [
    body(), body().replace(b'"model": "local-model"', b'"model"  :"local-model"'),
    json.dumps({"messages": [{"role": "user", "content": 'the "model" said "local-model"'}],
                "model": "local-model"}).encode(),
])
def test_the_splice_changes_only_the_model(raw):
    spliced = rename_model(raw, "local-model", "gemini-2.5-flash")
    expected = json.loads(raw) | {"model": "gemini-2.5-flash"}
    assert spliced is not None and json.loads(spliced) == expected


@pytest.mark.parametrize("raw", [
    # model not first and a second "model" key: not certain which is which
    json.dumps({"messages": [], "model": "local-model", "metadata": {"model": "local-model"}}).encode(),
    body().replace(b'"local-model"', b'"local\\u002dmodel"'),  # written in another way
])
def test_the_splice_declines_when_not_certain(raw):
    assert rename_model(raw, "local-model", "gemini-2.5-flash") is None


def test_a_first_model_key_is_spliced_without_scanning_the_rest():
    raw = b' {  "model" : "local-model", "metadata": {"model": "local-model"}, "messages": []}'
    spliced = rename_model(raw, "local-model", "gemini-2.5-flash")
    assert spliced == b' {  "model":"gemini-2.5-flash", "metadata": {"model": "local-model"}, "messages": []}'
    assert rename_model(b'{"model": "local-model-2", "messages": []}', "local-model", "x") is None


@given(st.text(max_size=30), st.text(min_size=1, max_size=20))
def test_the_splice_never_changes_anything_but_the_model(content, model):
    raw = orjson.dumps({"model": model, "messages": [{"role": "user", "content": content}], "stream": False})
    spliced = rename_model(raw, model, "gemini-2.5-flash")
    if spliced is not None:
        assert orjson.loads(spliced) == orjson.loads(raw) | {"model": "gemini-2.5-flash"}
