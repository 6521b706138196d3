"""Splitting a request's messages, and reusing an earlier request's split for the messages a turn repeats."""

import json
import zlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from addon.formats import conversation
from addon.formats.conversation import Conversations, split_messages


def fields(split) -> tuple:
    """Everything a split says, comparable."""
    return (
        split.raw,
        list(split.starts),
        list(split.ends),
        split.roles,
        split.refs,
        list(split.digests),
        [bytes(m) for m in split.messages()],
    )


def messages(n: int, start: int = 0) -> list[dict]:
    out: list[dict] = [{"role": "system", "content": "You are opencode. " * 20}]
    for i in range(start, start + n):
        out.append({"role": "user", "content": f"question {i} — naïve"})
        call = {"id": f"call_{i}", "type": "function", "function": {"name": "read", "arguments": "{}"}}
        out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        out.append({"role": "tool", "tool_call_id": f"call_{i}", "content": [{"type": "text", "text": f"file {i}"}]})
    return out


def test_a_split_says_where_each_message_is_its_role_refs_and_digest():
    raw = b' [ {"role":"system","content":"s"} ,\n {"role":"tool","tool_call_id":"c1","content":"r\xc3\xa9"}\t]'
    raw = raw.strip()
    split = split_messages(raw)
    assert [bytes(m) for m in split.messages()] == [
        b'{"role":"system","content":"s"}',
        b'{"role":"tool","tool_call_id":"c1","content":"r\xc3\xa9"}',
    ]
    assert split.roles == ("system", "tool")
    assert split.refs == (b"", b'"c1"') and split.call_refs() == b'"c1"'
    assert list(split.digests) == [zlib.crc32(m) | len(m) << 32 for m in split.messages()]


@pytest.mark.parametrize(
    "raw",
    [
        b"{}",  # not a list
        b"[1]",  # not an object
        b'[{"content": "x"}]',  # no role
        b'[{"role": 1, "content": "x"}]',  # role not a string
        b'[{"role": "user", "content": 5}]',  # content of the wrong kind
        b'[{"role": "user", "content": "\xff"}]',  # not UTF-8
        b'[{"role": "user", "content": "x"},]',  # a comma before the end
        b'[{"role": "user", "content": "x"}] x',  # something after the list
        b'[{"role": "user", "content": "x"}',  # cut short
    ],
)
def test_what_is_not_a_list_of_messages_raises_a_value_error(raw):
    with pytest.raises(ValueError):
        split_messages(raw)
    with pytest.raises(ValueError):
        Conversations().split(raw)


def test_a_turn_that_adds_messages_reads_only_those():
    kept = Conversations()
    first = orjson.dumps(messages(20))
    kept.split(first)
    second = orjson.dumps(messages(20) + messages(2, start=20)[1:])
    assert fields(kept.split(second)) == fields(split_messages(second))
    assert kept.reused == len(messages(20))
    assert len(kept.kept) == 1  # the newer split stands for the conversation


def test_the_same_request_again_reads_nothing_again():
    kept = Conversations()
    raw = orjson.dumps(messages(10))
    kept.split(raw)
    assert fields(kept.split(raw)) == fields(split_messages(raw)) and kept.reused == len(messages(10))


def test_a_changed_message_is_read_again_from_there():
    kept = Conversations()
    before = messages(10)
    kept.split(orjson.dumps(before))
    after = [dict(m) for m in before]
    after[5] = {**after[5], "content": "changed"}
    raw = orjson.dumps(after)
    assert fields(kept.split(raw)) == fields(split_messages(raw))
    assert kept.reused == 5


def test_a_message_that_only_grows_is_not_taken_for_the_kept_one():
    kept = Conversations()
    kept.split(b'[{"role":"system","content":"s"},{"role":"user","content":"ab"}]')
    raw = b'[{"role":"system","content":"s"},{"role":"user","content":"ab"},{"role":"user","content":"c"}]'
    assert fields(kept.split(raw)) == fields(split_messages(raw))
    grown = b'[{"role":"system","content":"s"},{"role":"user","content":"abc"}]'
    kept.split(grown)
    assert kept.reused == 2 + 1


def test_a_bad_message_after_kept_ones_still_raises():
    kept = Conversations()
    good = messages(3)
    kept.split(orjson.dumps(good))
    with pytest.raises(ValueError):
        kept.split(orjson.dumps(good + [{"role": "user", "content": 5}]))
    with pytest.raises(ValueError):
        kept.split(orjson.dumps(good)[:-1] + b',{"role":"user","content":"\xff"}]')
    with pytest.raises(ValueError):
        kept.split(orjson.dumps(good)[:-1] + b",]")


def test_subagents_sharing_a_first_message_each_keep_their_split():
    kept = Conversations()
    system = messages(0)
    main, sub = system + messages(30)[1:], system + [{"role": "user", "content": "subagent task"}]
    kept.split(orjson.dumps(main))
    kept.split(orjson.dumps(sub))
    assert len(kept.kept) == 2
    kept.split(orjson.dumps(main + [{"role": "user", "content": "next"}]))
    assert kept.reused == 1 + len(main)  # the subagent took the system message; the main agent all of its own


def test_what_is_kept_is_bounded_in_bytes_and_count():
    kept = Conversations(kept_bytes=10_000, kept_splits=3)
    for i in range(10):
        kept.split(orjson.dumps([{"role": "user", "content": f"{i}" * 3000}]))
    assert kept.size <= 10_000 and len(kept.kept) == 3
    assert kept.size == sum(len(s.raw) for s in kept.kept.values())
    kept.split(orjson.dumps([{"role": "user", "content": "x" * 20_000}]))  # larger than all: not kept
    assert all(len(s.raw) < 10_000 for s in kept.kept.values())


def test_messages_that_are_not_utf8_are_refused():
    # msgspec leaves each message raw, so the split checks the bytes itself: a character begun and never finished
    # (here at the very end of a long history) is refused, not forwarded.
    good = orjson.dumps([{"role": "user", "content": "a" * 40_000 + "😀"}])
    assert len(conversation.split_messages(good).starts) == 1
    broken = good.replace("😀".encode(), "😀".encode()[:3])
    with pytest.raises(UnicodeDecodeError):
        conversation.split_messages(broken)


def formatted(value: list, indent: int | None, separators: tuple[str, str]) -> bytes:
    return json.dumps(value, indent=indent, separators=separators, ensure_ascii=False).encode()


message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool"])},
    optional={
        "content": st.one_of(st.none(), st.text(max_size=20), st.lists(st.fixed_dictionaries({"text": st.text()}))),
        "tool_call_id": st.text(max_size=5),
        "tool_calls": st.lists(st.fixed_dictionaries({"id": st.text(max_size=5)}), max_size=2),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    turns=st.lists(
        st.tuples(
            st.sampled_from(["append", "replace_last", "truncate", "change", "same"]),
            st.lists(message, min_size=1, max_size=3),
            st.integers(0, 20),
        ),
        min_size=1,
        max_size=6,
    ),
    start=st.lists(message, max_size=5),
    indent=st.sampled_from([None, 0, 2]),
    separators=st.sampled_from([(",", ":"), (", ", ": "), (" ,\n", ":")]),
)
def test_reusing_kept_splits_gives_exactly_the_plain_split(turns, start, indent, separators):
    kept = Conversations(kept_splits=4)
    history = list(start)
    for action, new, where in turns:
        if action == "append":
            history = history + new
        elif action == "replace_last":
            history = history[:-1] + new
        elif action == "truncate":
            history = history[: where % (len(history) + 1)]
        elif action == "change" and history:
            i = where % len(history)
            history = history[:i] + new[:1] + history[i + 1 :]
        raw = formatted(history, indent, separators)
        assert fields(kept.split(raw)) == fields(split_messages(raw))


def test_a_split_reused_in_part_is_kept_longer_than_one_not_used():
    kept = Conversations(kept_splits=2)
    system = [{"role": "system", "content": "shared " * 100}]
    kept.split(orjson.dumps(system + [{"role": "user", "content": "main " * 300}]))
    kept.split(orjson.dumps([{"role": "user", "content": "another conversation"}]))
    kept.split(orjson.dumps(system + [{"role": "user", "content": "a subagent"}]))  # takes the system message
    assert [s.roles for s in kept.kept.values()] == [("system", "user"), ("system", "user")]
