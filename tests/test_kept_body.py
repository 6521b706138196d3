"""The client's body kept as a patch of the forwarded one (formats/kept_body.py), pure functions."""

from __future__ import annotations

import json

import orjson
import pytest

from addon.formats import kept_body

HISTORY = "x" * 50_000
CLIENT = {
    "model": "local-model",
    "stream": True,
    "messages": [{"role": "system", "content": HISTORY}, {"role": "user", "content": "hi"}],
    "tools": [{"type": "function", "function": {"name": "read", "parameters": {"$schema": "s", "type": "object"}}}],
}


def forwarded_of(client: dict) -> dict:
    """What routing sends on: the upstream model, a repaired schema, a default added."""
    body = json.loads(json.dumps(client))
    body["model"] = "gemini-2.5-flash"
    del body["tools"][0]["function"]["parameters"]["$schema"]
    body["temperature"] = 0.7
    return body


def test_the_patch_holds_only_what_differs_and_gives_the_client_body_back():
    client = json.dumps(CLIENT).encode()  # the client's spacing: not orjson's
    forwarded_json = forwarded_of(CLIENT)
    forwarded = orjson.dumps(forwarded_json)
    patch = kept_body.make(client, forwarded)
    assert patch is not None
    assert kept_body.size(patch) < 200  # not the 50 kB history
    assert sorted(op[0] for op in patch["ops"]) == [
        ["model"],
        ["temperature"],
        ["tools", 0, "function", "parameters", "$schema"],
    ]
    assert orjson.loads(kept_body.rebuild(patch, forwarded)) == CLIENT


def test_a_patch_applies_only_to_the_bytes_it_was_made_for():
    forwarded_json = forwarded_of(CLIENT)
    forwarded = orjson.dumps(forwarded_json)
    patch = kept_body.make(json.dumps(CLIENT).encode(), forwarded)
    edited = forwarded.replace(b'"hi"', b'"ho"')
    assert kept_body.rebuild(patch, edited) is None
    assert kept_body.whole({"path": "/v1/chat/completions", "body_patch": patch}, edited) is None
    whole = kept_body.whole({"path": "/v1/chat/completions", "body_patch": patch}, forwarded)
    assert orjson.loads(whole["body"]) == CLIENT and "body_patch" not in whole


def test_a_body_unlike_the_forwarded_one_is_kept_whole():
    # The native path: Gemini's body has nothing in common with the client's.
    native = {"contents": [{"role": "user", "parts": [{"text": HISTORY}]}]}
    assert kept_body.make(json.dumps(CLIENT).encode(), orjson.dumps(native)) is None
    assert kept_body.make(b"not json", orjson.dumps(native)) is None


def test_json_types_are_kept_apart_even_where_python_calls_them_equal():
    client = {"model": "a", "n": 1, "messages": [{"role": "user", "content": HISTORY}]}
    forwarded_json = {"model": "b", "n": True, "messages": [{"role": "user", "content": HISTORY}]}
    forwarded = orjson.dumps(forwarded_json)
    patch = kept_body.make(orjson.dumps(client), forwarded)
    assert patch is not None and orjson.loads(kept_body.rebuild(patch, forwarded)) == client
    assert b'"n":1' in kept_body.rebuild(patch, forwarded)


def test_lists_of_other_lengths_are_replaced_whole_and_removed_keys_come_back():
    client = {"a": [1, 2, 3], "keep": HISTORY}
    base = {"a": [1, 2], "keep": HISTORY, "added": 1}
    ops = kept_body.diff(client, base)
    assert ops == [[["added"]], [["a"], [1, 2, 3]]]
    assert kept_body.apply(json.loads(json.dumps(base)), ops) == client


@pytest.mark.parametrize(
    "ops",
    [[["model"]], [[["missing", "deeper"], 1]], [[[], None][:1]], [[[0], 1]], ["not an op"]],
)
def test_ops_that_do_not_fit_raise_value_error(ops):
    with pytest.raises(ValueError):
        kept_body.apply({"messages": []}, ops)


def test_stored_body_reads_whole_bodies_and_patches():
    assert kept_body.stored_body({"body": b"{}"}, None) == b"{}"
    assert kept_body.stored_body({"body": "{}"}, None) == b"{}"
    assert kept_body.stored_body({}, b"{}") is None
    assert kept_body.stored_body({"body_patch": {"ops": []}}, None) is None


@pytest.mark.parametrize(
    "client_fields, forwarded_fields",
    [
        ({"model": "local-model", "stream": True}, {"model": "gemini-2.5-flash", "stream": True, "temperature": 0.7}),
        ({"model": "m", "tools": CLIENT["tools"]}, {k: v for k, v in forwarded_of(CLIENT).items() if k != "messages"}),
        ({"model": "m", "n": 1}, {"model": "m", "n": True}),  # equal in Python, not in JSON: make() refuses too
        ({"model": "m", "metadata": {"a": "b" * 500}}, {"model": "m"}),  # more than a quarter of the body
    ],
)
def test_make_beside_gives_what_make_gives_when_the_messages_are_the_same_bytes(client_fields, forwarded_fields):
    messages = [{"role": "system", "content": "x" * 1000}, {"role": "user", "content": "hi"}]
    client = orjson.dumps({**client_fields, "messages": messages})
    forwarded = orjson.dumps({**forwarded_fields, "messages": messages})
    whole = kept_body.make(client, forwarded)
    beside = kept_body.make_beside(client_fields, forwarded_fields, forwarded, len(client))
    assert (beside is None) == (whole is None)
    if beside is not None:
        assert beside == whole
        assert orjson.loads(kept_body.rebuild(beside, forwarded)) == orjson.loads(client)


def test_an_added_or_removed_top_level_value_and_a_non_object_body():
    client = {"model": "m", "messages": [HISTORY], "user": "me"}
    forwarded = {"model": "m", "messages": [HISTORY], "temperature": 0}
    patch = kept_body.make(orjson.dumps(client), orjson.dumps(forwarded))
    assert patch is not None
    assert sorted(patch["ops"], key=str) == [[["temperature"]], [["user"], "me"]]
    assert orjson.loads(kept_body.rebuild(patch, orjson.dumps(forwarded))) == client
