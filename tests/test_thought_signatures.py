from __future__ import annotations

import copy
from typing import Any

import pytest

from addon.gemini.thought_signatures import (
    BYPASS,
    SEPARATOR,
    may_restore,
    needs_signatures,
    pack_tool_calls,
    restore_request,
    split_id,
)

SIGNATURE = "CiQBjz1rX+k/2Vd4hQ0cRk7E/9zfs3dMm+QhXn1q3F0Z2Yk=" + "A" * 40 + "+/=="


def gemini_response() -> dict[str, Any]:
    """A Gemini 3 chat.completion with two parallel calls; only the first carries a signature."""
    return {
        "choices": [
            {
                "finish_reason": "tool_calls",
                "index": 0,
                "message": {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "extra_content": {"google": {"thought_signature": SIGNATURE}},
                            "function": {"arguments": '{"path":"a.txt"}', "name": "read"},
                            "id": "function-call-1",
                            "type": "function",
                        },
                        {
                            "function": {"arguments": '{"path":"b.txt"}', "name": "read"},
                            "id": "function-call-2",
                            "type": "function",
                        },
                    ],
                },
            }
        ],
        "model": "gemini-3-pro-preview",
        "object": "chat.completion",
    }


def client_echo(tool_calls: list[dict[str, Any]]) -> dict[str, Any]:
    """What opencode sends next: the calls without extra_content, then one tool message per call."""
    echoed = [{"id": c["id"], "type": "function", "function": dict(c["function"])} for c in tool_calls]
    results = [{"role": "tool", "tool_call_id": c["id"], "content": "file text"} for c in tool_calls]
    return {
        "model": "local-model",
        "messages": [
            {"role": "system", "content": "You are opencode."},
            {"role": "user", "content": [{"type": "text", "text": "read a.txt and b.txt"}]},
            {"role": "assistant", "content": "", "tool_calls": echoed},
            *results,
        ],
    }


def test_round_trip_restores_the_exact_gemini_shape() -> None:
    response = gemini_response()
    original_calls = copy.deepcopy(response["choices"][0]["message"]["tool_calls"])
    notes = pack_tool_calls(response["choices"][0]["message"]["tool_calls"])
    packed = response["choices"][0]["message"]["tool_calls"]
    assert packed[0]["id"] == "function-call-1" + SEPARATOR + SIGNATURE
    assert packed[0]["extra_content"] == original_calls[0]["extra_content"]  # left in place
    assert packed[1]["id"] == "function-call-2"
    assert notes == ["packed thought signature into id of call function-call-1"]

    request = client_echo(packed)
    notes = restore_request(request, "gemini-3-pro-preview")
    assistant = request["messages"][2]
    assert assistant["tool_calls"] == original_calls
    assert [m["tool_call_id"] for m in request["messages"][3:]] == ["function-call-1", "function-call-2"]
    assert notes == [
        "restored thought signature for call function-call-1",
        "restored plain tool_call_id in 1 tool message(s)",
    ]


def test_stream_delta_is_packed_and_packing_twice_changes_nothing() -> None:
    delta = [
        {
            "extra_content": {"google": {"thought_signature": SIGNATURE}},
            "index": 0,
            "id": "c1",
            "type": "function",
            "function": {"name": "read", "arguments": "{}"},
        }
    ]
    pack_tool_calls(delta)
    assert pack_tool_calls(delta) == [] and delta[0]["id"] == "c1" + SEPARATOR + SIGNATURE


def test_fragment_without_id_is_not_packed() -> None:
    delta = [
        {"index": 0, "extra_content": {"google": {"thought_signature": SIGNATURE}}, "function": {"arguments": "{}"}}
    ]
    assert pack_tool_calls(delta) == [] and "id" not in delta[0]


def test_restore_keeps_a_signature_the_client_kept() -> None:
    request = client_echo([{"id": "c1" + SEPARATOR + SIGNATURE, "function": {"name": "read", "arguments": "{}"}}])
    request["messages"][2]["tool_calls"][0]["extra_content"] = {"google": {"thought_signature": "kept"}}
    assert restore_request(request, "gemini-3-pro-preview") == [
        "restored plain id for call c1",
        "restored plain tool_call_id in 1 tool message(s)",
    ]
    call = request["messages"][2]["tool_calls"][0]
    assert call["id"] == "c1" and call["extra_content"] == {"google": {"thought_signature": "kept"}}


def test_bypass_for_gemini_3_without_signature() -> None:
    request = client_echo(
        [
            {"id": "call_1", "function": {"name": "read", "arguments": "{}"}},
            {"id": "call_2", "function": {"name": "ls", "arguments": "{}"}},
        ]
    )
    assert restore_request(request, "gemini-3-pro-preview") == ["bypass signature for call call_1"]
    calls = request["messages"][2]["tool_calls"]
    assert calls[0]["extra_content"] == {"google": {"thought_signature": BYPASS}}
    assert "extra_content" not in calls[1]  # only the first call of a step needs one


def test_bypass_per_assistant_message() -> None:
    first = client_echo([{"id": "call_1", "function": {"name": "read", "arguments": "{}"}}])["messages"]
    packed = "call_2" + SEPARATOR + "sig2"
    second = client_echo([{"id": packed, "function": {"name": "ls", "arguments": "{}"}}])["messages"]
    request = {"messages": first + second[2:]}
    assert restore_request(request, "gemini-3.5-flash") == [
        "bypass signature for call call_1",
        "restored thought signature for call call_2",
        "restored plain tool_call_id in 1 tool message(s)",
    ]


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gemini-1.5-pro", "gpt-4o", "local-model"])
def test_no_bypass_below_gemini_3(model: str) -> None:
    request = client_echo([{"id": "call_1", "function": {"name": "read", "arguments": "{}"}}])
    original = copy.deepcopy(request)
    assert restore_request(request, model) == [] and request == original


def test_plain_ids_for_gemini_2_are_untouched_but_packed_ones_restored() -> None:
    request = client_echo([{"id": "c1" + SEPARATOR + SIGNATURE, "function": {"name": "read", "arguments": "{}"}}])
    restore_request(request, "gemini-2.5-flash")
    call = request["messages"][2]["tool_calls"][0]
    assert call["id"] == "c1" and call["extra_content"]["google"]["thought_signature"] == SIGNATURE


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gemini-3-pro-preview", True),
        ("gemini-3.5-flash", True),
        ("models/gemini-3-flash-preview", True),
        ("Gemini-3-Pro", True),
        ("gemini-10-ultra", True),
        ("gemini-2.5-flash", False),
        ("gemini-2.0-flash", False),
        ("gemini-1.5-pro", False),
        ("gemini-exp-1206", False),
        ("gemini-flash-latest", False),
        ("gpt-4o", False),
        ("", False),
    ],
)
def test_needs_signatures(model: str, expected: bool) -> None:
    assert needs_signatures(model) is expected


@pytest.mark.parametrize(
    ("call_id", "expected"),
    [
        ("c1", ("c1", None)),
        ("c1" + SEPARATOR + "a+b/c==", ("c1", "a+b/c==")),
        ("c1" + SEPARATOR + "x" + SEPARATOR + "y", ("c1", "x" + SEPARATOR + "y")),  # split on the first only
        ("c1" + SEPARATOR, ("c1", None)),
        (SEPARATOR + "sig", ("", "sig")),
    ],
)
def test_split_id(call_id: str, expected: tuple[str, str | None]) -> None:
    assert split_id(call_id) == expected


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {},
        {"messages": None},
        {"messages": "x"},
        {"messages": [None, 1, "x", [], {"role": None}]},
        {"messages": [{"role": "assistant", "tool_calls": None, "content": [{"type": "text", "text": "x"}]}]},
        {"messages": [{"role": "assistant", "tool_calls": [None, 1, {"id": None}, {"id": 5}, {}]}]},
        {"messages": [{"role": "assistant", "tool_calls": [{"id": "a" + SEPARATOR + "s", "extra_content": "odd"}]}]},
        {"messages": [{"role": "assistant", "tool_calls": [{"id": "a", "extra_content": {"google": 3}}]}]},
        {"messages": [{"role": "tool", "tool_call_id": None}, {"role": "tool"}, {"role": "tool", "tool_call_id": 7}]},
    ],
)
def test_odd_shapes_do_not_raise(body: Any) -> None:
    restore_request(body, "gemini-3-pro-preview")


def test_odd_extra_content_is_left_alone_but_id_restored() -> None:
    body = {"messages": [{"role": "assistant", "tool_calls": [{"id": "a" + SEPARATOR + "s", "extra_content": "odd"}]}]}
    assert restore_request(body, "gemini-3-pro-preview") == ["restored plain id for call a"]
    assert body["messages"][0]["tool_calls"][0] == {"id": "a", "extra_content": "odd"}


@pytest.mark.parametrize("tool_calls", [None, "x", [None, 1, {"id": None}, {"extra_content": None}]])
def test_pack_odd_shapes(tool_calls: Any) -> None:
    assert pack_tool_calls(tool_calls) == []


@pytest.mark.parametrize(
    "refs, model, expected",
    [
        (None, "gemini-2.5-flash", True),  # messages already decoded: restore_request looks for itself
        (b"", "gemini-3-pro-preview", False),  # no tool calls at all
        (b'"call_1"', "gemini-2.5-flash", False),  # plain ids, a model that takes no signatures
        (b'"call_1"', "gemini-3-pro-preview", True),  # the bypass may be needed
        (b'[{"id": "call_1__thought__c2ln"}]\n"call_1"', "gemini-2.5-flash", True),
        (b'"call_1\\u005f_thought__c2ln"', "gemini-2.5-flash", True),  # an escape could spell the separator
    ],
)
def test_may_restore_only_when_something_could_change(refs, model, expected):
    assert may_restore(refs, model) is expected
