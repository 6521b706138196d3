"""addon/inspection/sessions/turn_digest.py and turn_diff.py: digests of real opencode requests, and what a turn added."""

import copy

import orjson
import pytest

from addon.formats.conversation import Conversations
from addon.inspection.sessions.turn_diff import choose_base, common_prefix, diff
from addon.inspection.sessions.turn_digest import ToolShapes, digest, read_request, read_split
from addon.request.chat_request import encode_body, parse_chat_request
from tests.bench import bodies
from tests.session_fixtures import body, encoded, next_turn


@pytest.fixture
def shapes():
    return ToolShapes()


def turn_of(data, shapes):
    return read_request(encoded(data), shapes)


def test_a_real_opencode_request_as_digests(shapes):
    snap, raws = turn_of(body(1), shapes)
    assert snap.n_system == 1 and len(snap.rest) == 1 and snap.messages == len(raws) == 2
    assert [name for name, _ in snap.tools] == [
        "bash", "edit", "glob", "grep", "read", "skill", "task", "todowrite", "webfetch", "write",
    ]  # fmt: skip
    assert snap.first_user == snap.rest[0] != 0
    assert {name for name, _, _ in snap.fields} == {"model", "max_tokens", "tool_choice", "stream", "stream_options"}
    assert dict((n, t) for n, _, t in snap.fields)["max_tokens"] == "32000"


def test_digests_are_the_raw_bytes_and_stable():
    assert digest(b'{"role":"user"}') == digest(b'{"role":"user"}') != digest(b'{"role": "user"}')
    assert digest(b"abc") == 0x352441C2 | 3 << 32  # CRC-32 and length: the same number on every run


@pytest.mark.parametrize(
    "bad", [b"", b"[]", b'{"model":"x"}', b'{"messages":{}}', b'{"messages":[1,', b'{"messages":[],"tools":{}}']
)
def test_not_a_chat_request(bad, shapes):
    with pytest.raises(ValueError):
        read_request(bad, shapes)


def test_real_turns_extend_each_other(shapes):
    first, _ = turn_of(body(1), shapes)
    second, raws = turn_of(body(2), shapes)
    d = diff((1, first), second, raws, shapes, side=False)
    assert d["base_turn"] == 1 and d["new_from"] == 2 and d["new_count"] == 2
    assert "rewritten_at" not in d and "system_changed" not in d and "fields" not in d
    assistant, result = d["new"]
    assert assistant["role"] == "assistant" and assistant["calls"] == ["read"] and assistant["call_count"] == 1
    assert result == {
        "i": 3,
        "role": "tool",
        "chars": result["chars"],
        "text": result["text"],
        "call_id": "call_1",
        "tool": "read",
    }
    assert result["text"].startswith("<path>/work/project/notes.txt</path>")


def test_first_turn_has_no_base(shapes):
    snap, raws = turn_of(body(1), shapes)
    d = diff(None, snap, raws, shapes, side=False)
    assert d["base_turn"] is None and d["new_count"] == 2 and [e["role"] for e in d["new"]] == ["system", "user"]
    assert (
        d["new"][0]["chars"] == len(body(1)["messages"][0]["content"]) > 9000 and len(d["new"][0]["text"]) == 200
    )  # a preview, not the prompt


def test_a_replaced_tool_result_is_a_rewritten_history(shapes):
    third = body(3)
    before, _ = turn_of(third, shapes)
    pruned = copy.deepcopy(third)
    pruned["messages"][3]["content"] = "[Old tool result content cleared]"  # what opencode's pruning does
    after, raws = turn_of(next_turn(pruned, "ok", "call_3"), shapes)
    d = diff((3, before), after, raws, shapes, side=False)
    assert d["rewritten_at"] == 3 and d["dropped"] == 3 and d["new_from"] == 3 and d["new_count"] == 5
    assert d["new"][0]["text"] == "[Old tool result content cleared]"


def test_compaction_keeps_the_system_prompt_and_rewrites_from_the_first_message(shapes):
    before, _ = turn_of(body(3), shapes)
    compacted = body(1)
    compacted["messages"][1:] = [
        {"role": "user", "content": "What did we do so far?"},
        {"role": "assistant", "content": "We read notes.txt twice."},
        {"role": "user", "content": "Go on."},
    ]
    after, raws = turn_of(compacted, shapes)
    d = diff(choose_base([(3, before)], after), after, raws, shapes, side=True)
    assert d["base_turn"] == 3 and d["rewritten_at"] == 1 and d["dropped"] == 5 and d["new_count"] == 3


def test_a_changed_system_prompt_still_finds_its_base(shapes):
    before, _ = turn_of(body(2), shapes)
    changed = body(3)
    changed["messages"][0]["content"] += "\nToday is Tuesday."
    after, raws = turn_of(changed, shapes)
    base = choose_base([(2, before)], after)
    d = diff(base, after, raws, shapes, side=True)
    assert base[0] == 2 and d["system_changed"] and "rewritten_at" not in d and d["new_count"] == 2


def test_a_side_request_is_a_new_thread(shapes):
    main, _ = turn_of(body(2), shapes)
    title = {
        "model": "m",
        "messages": [{"role": "system", "content": "Write a title."}, {"role": "user", "content": "x"}],
    }
    snap, raws = turn_of(title, shapes)
    assert choose_base([(2, main)], snap) is None
    d = diff(None, snap, raws, shapes, side=True)
    assert d["side"] and d["base_turn"] is None


def test_the_same_system_prompt_is_preferred_over_the_latest_turn(shapes):
    main, _ = turn_of(body(2), shapes)
    title, _ = turn_of({"messages": [{"role": "system", "content": "Title"}, {"role": "user", "content": "x"}]}, shapes)
    cur, _ = turn_of(body(3), shapes)
    assert choose_base([(3, title), (2, main)], cur) == (2, main)


def test_tools_added_removed_and_changed(shapes):
    old = body(2)
    new = body(3)
    new["tools"] = [t for t in new["tools"] if t["function"]["name"] != "webfetch"]
    new["tools"].append({"type": "function", "function": {"name": "lsp", "parameters": {"type": "object"}}})
    read = next(t["function"] for t in new["tools"] if t["function"]["name"] == "read")
    read["parameters"]["properties"]["encoding"] = {"type": "string"}
    del read["parameters"]["properties"]["limit"]
    read["parameters"]["properties"]["offset"]["description"] = "where to start"
    read["parameters"]["required"] = ["filePath", "encoding"]
    bash = next(t["function"] for t in new["tools"] if t["function"]["name"] == "bash")
    bash["description"] = "Run a command."
    before, _ = turn_of(old, shapes)
    after, raws = turn_of(new, shapes)
    d = diff((2, before), after, raws, shapes, side=False)
    assert d["tools_added"] == ["lsp"] and d["tools_removed"] == ["webfetch"]
    assert d["tools_changed"] == {
        "bash": "description",
        "read": "parameters +encoding -limit ~offset; required filePath -> encoding,filePath",
    }


def test_request_fields_changed(shapes):
    old, new = body(2), body(3)
    new["max_tokens"] = 1000
    new["temperature"] = 0.2
    del new["tool_choice"]
    before, _ = turn_of(old, shapes)
    after, raws = turn_of(new, shapes)
    d = diff((2, before), after, raws, shapes, side=False)
    assert d["fields"] == {
        "max_tokens": ["32000", "1000"],
        "temperature": [None, "0.2"],
        "tool_choice": ['"auto"', None],
    }


def test_only_the_last_new_messages_are_described(shapes):
    data = body(1)
    for i in range(40):
        data = next_turn(data, f"result {i}", f"call_{i}")
    snap, raws = turn_of(data, shapes)
    before, _ = turn_of(body(1), shapes)
    d = diff((1, before), snap, raws, shapes, side=False)
    assert d["new_count"] == 80 and len(d["new"]) == 30 and d["new"][-1]["text"] == "result 39"


def test_common_prefix():
    import array

    a, b = array.array("Q", [1, 2, 3]), array.array("Q", [1, 2, 4, 5])
    assert common_prefix(a, b) == 2 and common_prefix(a, a) == 3 and common_prefix(a, array.array("Q")) == 0


def routed(data: dict):
    """What routing leaves for the session digests: the split of the client's messages and the body it sends
    on, here with the model renamed as routing renames it."""
    chat = parse_chat_request(encoded(data), 64 << 20, Conversations())
    chat.body["model"] = "gemini-2.5-flash"
    return chat.split, chat.body


@pytest.mark.parametrize(
    "data",
    [
        body(1),
        body(3),
        {**body(2), "tools": None, "temperature": None, "stop": ["x"]},
        {"model": "m", "messages": [{"role": "developer", "content": "d"}, {"role": "assistant", "content": None}]},
        orjson.loads(bodies.opencode_conversation(256 * 1024)),
    ],
)
def test_routings_split_gives_the_digests_of_the_body_it_sends(data, shapes):
    split, sent = routed(data)
    from_split, split_raws = read_split(split, sent, shapes)
    from_body, body_raws = read_request(encode_body(sent), ToolShapes())
    assert from_split == from_body
    assert [bytes(r) for r in split_raws] == [bytes(r) for r in body_raws]


def test_a_turn_read_from_routings_split_has_the_same_diff(shapes):
    first, second = body(2), next_turn(body(2), "the file", "call_9")
    base = read_request(encoded(first), shapes)[0]
    split, sent = routed(second)
    cur, raws = read_split(split, sent, shapes)
    expected, expected_raws = read_request(encode_body(sent), shapes)
    assert diff((1, base), cur, raws, shapes, side=False) == diff(
        (1, base), expected, expected_raws, shapes, side=False
    )
