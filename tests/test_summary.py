"""addon/inspection/summary.py: the request summary, the answer lines and the flow's comment line."""

import json

import pytest

from addon.formats.exchange import Exchange
from addon.inspection import summary

T0 = 1_700_000_000.0


def meta(**fields) -> Exchange:
    base = {"client_model": "local-model", "upstream_model": "gemini-2.5-flash"}
    return Exchange(**{**base, **fields})


def test_shorten_cuts_long_strings_at_any_depth_and_leaves_the_rest():
    long = "a" * 20_000
    value = {"x": [long, {"y": long}], "n": 5, "short": "kept", "none": None}
    short = summary.shorten(value)
    cut = f"{'a' * 200}... (20,000 chars)"
    assert short == {"x": [cut, {"y": cut}], "n": 5, "short": "kept", "none": None}
    assert summary.shorten("b" * 10_000) == "b" * 10_000  # the limit itself is not over it
    assert summary.shorten("c" * 301, 300) == f"{'c' * 200}... (301 chars)"


def test_request_summary_shows_the_called_tools_in_full_and_the_rest_by_name():
    tool = {"type": "function", "function": {"name": "read", "parameters": {"type": "object"}}}
    write = {"type": "function", "function": {"name": "write", "parameters": {"type": "object", "required": ["x"]}}}
    body = {
        "model": "local-model",
        "messages": [{"role": "user", "content": "x" * 12_000}],
        "tools": [tool, write, {"function": {}}, "junk"],
    }
    text = summary.summarize_request(json.dumps(body).encode(), called=["write"])
    lines = text.splitlines()
    assert lines[0] == "  request: {"
    assert '"model": "local-model"' in text and "... (12,000 chars)" in text and "x" * 201 not in text
    assert "  tools (4): the one called, in full:" in lines
    assert '"required": [' in text and '"name": "read"' not in text  # the tool called, whole; not the first
    assert lines[-1] == "  and: read, ?"  # names only; a tool that is no object is skipped
    assert '"tools"' not in text.split("  tools (4)")[0]  # not shown twice
    uncalled = summary.summarize_request(json.dumps(body).encode())
    assert uncalled.splitlines()[-1] == "  tools (4), none called: read, write, ?" and '"required"' not in uncalled


def test_request_summary_without_tools_has_no_tool_lines():
    text = summary.summarize_request(b'{"model": "m", "tools": []}')
    assert "tools" not in text and text.startswith("  request: {")


@pytest.mark.parametrize(
    "content,line",
    [
        (b"not json at all", "  request: 15 bytes, not JSON"),
        (b"[1, 2]", "  request: not an object"),
        (b"", "  request: 0 bytes, not JSON"),
    ],
)
def test_request_summary_of_bodies_that_are_not_objects(content, line):
    assert summary.summarize_request(content) == line


def test_answer_summary_lists_reasoning_answer_calls_and_finish():
    answer = {
        "reasoning": "thinking",
        "content": "done",
        "tool_calls": [{"id": "c1", "name": "read", "arguments": '{"filePath": "a"}'}],
        "finish_reason": "tool_calls",
        "usage": {"prompt_tokens": 3, "completion_tokens": 4},
    }
    assert summary.summarize_answer(Exchange(answer=answer)).splitlines() == [
        "  reasoning: thinking",
        "  answer: done",
        '  tool call read (c1): {"filePath": "a"}',
        '  finish: tool_calls, usage: {"prompt_tokens":3,"completion_tokens":4}',  # JSON, as the API sent it
    ]
    assert summary.summarize_answer(Exchange()) == "  finish: None, usage: null"


def test_price_needs_both_prices_and_never_guesses():
    usage = {"prompt_tokens": 1000, "completion_tokens": 100}
    assert summary.price(Exchange(price_in=1e-6, price_out=4e-6), usage) == pytest.approx(0.0014)
    assert summary.price(Exchange(price_in=1e-6), usage) is None
    assert summary.price(Exchange(price_out=1e-6), usage) is None
    assert summary.price(Exchange(price_in=0.0, price_out=0.0), usage) == 0.0  # free is a price


def test_comment_line_of_a_full_exchange():
    line = summary.comment_line(
        meta(
            answer={"usage": {"prompt_tokens": 1204, "completion_tokens": 310}, "tool_calls": [{"id": "a"}]},
            price_in=3e-7,
            price_out=2.5e-6,
            t_request=T0,
            t_first_chunk=T0 + 0.42,
            t_end=T0 + 2.42,
        )
    )
    assert line == (
        "1 tool call | local-model -> gemini-2.5-flash | 1,204 in / 310 out tokens | $0.0011 | first chunk 420 ms"
        " | 155 tok/s"
    )


def test_comment_line_of_a_bare_exchange_names_only_the_models():
    assert summary.comment_line(meta()) == "local-model -> gemini-2.5-flash"


def test_tiny_costs_keep_their_digits():
    line = summary.comment_line(
        meta(answer={"usage": {"prompt_tokens": 10, "completion_tokens": 1}}, price_in=1e-7, price_out=1e-7)
    )
    assert "| $0.000001" in line


def test_no_rate_when_the_answer_came_at_once_and_calls_are_counted_in_the_plural():
    line = summary.comment_line(
        meta(
            answer={"usage": {"prompt_tokens": 1, "completion_tokens": 50}, "tool_calls": [{}, {}, {}]},
            t_request=T0,
            t_first_chunk=T0 + 1,
            t_end=T0 + 1.05,  # under MIN_RATE_SPAN
        )
    )
    assert "tok/s" not in line and line.startswith("3 tool calls | ") and line.endswith("| first chunk 1,000 ms")
    assert "$" not in line  # no prices known


def test_attempts_errors_and_tool_check_findings_are_named():
    line = summary.comment_line(
        meta(
            attempts=[
                {"upstream_model": "gemini-2.5-flash", "status": 503},
                {"upstream_model": "gemini-2.0-flash"},
            ],
            error="upstream 503: " + "e" * 500,
            tool_checks=["read: missing required argument filePath", "second", "third"],
        )
    )
    assert line.split(" | ") == [
        "error: upstream 503: " + "e" * (120 - len("upstream 503: ")),  # what went wrong first
        "tool-call problem: read: missing required argument filePath (+2 more)",
        "local-model -> gemini-2.5-flash",
        "tried gemini-2.5-flash 503, gemini-2.0-flash failed",
    ]


def test_a_fallback_attempt_says_so_first():
    line = summary.comment_line(meta(fallback_of="f-123", attempt=2))
    assert line == "fallback attempt 2 for f-123 | local-model -> gemini-2.5-flash"


def test_tool_check_note_shortens_a_long_finding():
    note = summary.tool_check_note(["x" * 300])
    assert note == "tool-call problem: " + "x" * 119 + "…"
    assert summary.tool_check_note(["one"]) == "tool-call problem: one"


def test_cached_tokens_are_named_and_priced_on_the_compatible_path():
    # usage as Gemini's OpenAI-compatible endpoint reports implicit caching
    usage = {
        "prompt_tokens": 12_000,
        "completion_tokens": 200,
        "total_tokens": 12_200,
        "prompt_tokens_details": {"cached_tokens": 10_000},
    }
    line = summary.comment_line(meta(answer={"usage": usage}, price_in=3e-7, price_out=2.5e-6, price_cached=3e-8))
    assert "12,000 in (10,000 cached) / 200 out tokens" in line
    assert "$0.0014" in line  # 2,000 x 3e-7 + 10,000 x 3e-8 + 200 x 2.5e-6 (uncached it would be $0.0041)
    assert "cached" not in summary.comment_line(meta(answer={"usage": {"prompt_tokens": 5, "completion_tokens": 1}}))


def test_repairs_are_one_line_with_each_kind_counted():
    repairs = [
        *(f"tools[{i}] t{i}: removed $schema; removed additionalProperties" for i in range(3)),
        "tools[3] edit: inlined $ref #/defs/x; removed $schema",
        "dropped field prompt_cache_key",
        *(f"restored thought signature for call call_{n}" for n in range(1, 6)),
        "bypass signature for call toolu_01",
        "tool call 0: id generated",
        "tool call 1: id generated",
    ]
    assert summary.repair_line(repairs) == (
        "  repaired: 4 tool schemas (removed $schema, additionalProperties; inlined $ref #/defs/x); "
        "2 tool calls (id generated); dropped field prompt_cache_key; "
        "restored thought signature for 5 calls (call_1, call_2, call_3, …); bypass signature for call toolu_01"
    )
    assert summary.repair_line(["restored thought signature for call call_1"]) == (
        "  repaired: restored thought signature for call call_1"
    )
    assert summary.repair_line([]) is None
