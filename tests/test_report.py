"""addon/report.py and addon/summary.py: the flow's comment, its mark, the log, and the filters that find them.

Hooks are called directly on flows whose `flow.metadata["llm"]` is filled the way routing and responses fill it.
"""

import io
import logging

import orjson
import pytest
from mitmproxy import flowfilter
from mitmproxy import io as mitmio
from mitmproxy.test import taddons, tflow

from addon.formats.exchange import Exchange
from addon.inspection import summary
from addon.inspection.report import Report
from addon.request import client_request
from tests.test_chatview import OPENCODE_REQUEST, SYSTEM_PROMPT, TOOL_STREAM

T0 = 1_700_000_000.0
USAGE = {"prompt_tokens": 4211, "completion_tokens": 63, "total_tokens": 4274}
CALLS = [
    {
        "id": "call_3",
        "name": "edit",
        "arguments": '{"filePath": "/repo/src/app.ts", "oldString": "x.run()", "newString": "await x.ready()"}',
    },
    {"id": "call_4", "name": "todowrite", "arguments": '{"todos": [{"content": "fix", "status": "pending"}]}'},
]
FLASH_PRICES = {"price_in": 3e-07, "price_out": 2.5e-06}  # gemini-2.5-flash in litellm's table, per token


def answer(
    content: str = "", tool_calls: list | None = None, usage: dict | None = USAGE, finish: str | None = "stop"
) -> dict:
    return {
        "content": content,
        "reasoning": "",
        "tool_calls": tool_calls or [],
        "finish_reason": finish,
        "usage": usage,
    }


def llm_meta(**changes) -> Exchange:
    """The exchange record after routing and the stream rewriter: a streamed answer that took 0.72 s."""
    meta = {
        "endpoint": "POST /v1/chat/completions",
        "client_model": "local-model",
        "upstream_model": "gemini-2.5-flash",
        "litellm_model": "openai/gemini-2.5-flash",
        "api_base": "https://generativelanguage.googleapis.com/v1beta/openai/",
        "provider": "local",
        "stream": True,
        "key": "AIza…7890",
        "repairs": [],
        "t_request": T0,
        "t_first_chunk": T0 + 0.412,
        "t_end": T0 + 0.721,
        "chunk_times": [0.412, 0.455, 0.61, 0.612, 0.7, 0.71, 0.711, 0.72, 0.721],
        "upstream_raw": b"".join(TOOL_STREAM),
        "answer": answer("Let me fix it.", CALLS, finish="tool_calls"),
        "error": None,
        **FLASH_PRICES,
    }
    meta.update(changes)
    return Exchange(**meta)


def llm_flow(request: dict = OPENCODE_REQUEST, response: bytes = b"".join(TOOL_STREAM), **changes):
    f = tflow.tflow(resp=True)
    f.request.path = "/v1beta/openai/chat/completions"
    f.request.content = orjson.dumps(request | {"model": "gemini-2.5-flash"})
    f.response.headers["content-type"] = "text/event-stream"
    f.response.content = response
    f.metadata["llm"] = llm_meta(**changes)
    return f


@pytest.fixture
def report():
    addon = Report()
    with taddons.context(addon) as tctx:
        yield addon, tctx


def finished(report, f, hook: str = "response"):
    """The flow after Report's `response` (or `error`) hook."""
    getattr(report[0], hook)(f)
    return f


# --- the comment ------------------------------------------------------------------------------


def test_streamed_tool_calls(report, caplog):
    caplog.set_level(logging.INFO)
    f = finished(report, llm_flow())
    # 4211 * 3e-7 + 63 * 2.5e-6 = $0.00142; 63 tokens in 0.309 s after the first chunk
    assert f.comment == (
        "2 tool calls: edit, todowrite | local-model -> gemini-2.5-flash | 4,211 in / 63 out tokens | $0.0014 | "
        "first chunk 412 ms | 204 tok/s"
    )
    assert f.marked == ":wrench:"
    assert Exchange.of(f).tool_checks == []
    assert '  tool call edit (call_3): {"filePath"' in caplog.text
    assert f"  {f.comment}" in caplog.text


@pytest.mark.parametrize(
    "prices",
    [
        {"price_in": None, "price_out": None},
        {"price_in": 3e-07, "price_out": None},
        {"price_in": None, "price_out": 2.5e-06},
        {},
    ],
)
def test_no_price_when_litellm_has_none(report, prices):
    meta = llm_meta(**prices)
    for name in ("price_in", "price_out"):
        if name not in prices:
            setattr(meta, name, None)
    f = llm_flow()
    f.metadata["llm"] = meta
    finished(report, f)
    assert "$" not in f.comment
    assert f.comment.startswith(
        "2 tool calls: edit, todowrite | local-model -> gemini-2.5-flash | 4,211 in / 63 out tokens | first chunk 412 ms"
    )


def test_tiny_and_free_prices(report):
    tiny = finished(report, llm_flow(answer=answer("Hi.", usage={"prompt_tokens": 12, "completion_tokens": 3})))
    assert "| $0.000011 |" in tiny.comment  # 12 * 3e-7 + 3 * 2.5e-6
    free = finished(report, llm_flow(price_in=0.0, price_out=0.0))
    assert "| $0.000000 |" in free.comment


def test_plain_answer_without_usage(report):
    f = finished(report, llm_flow(answer=answer("Hello!", usage=None)))
    assert f.comment == "local-model -> gemini-2.5-flash | first chunk 412 ms"
    assert f.marked == ""


def test_no_speed_for_an_answer_that_came_at_once(report):
    f = finished(report, llm_flow(t_end=T0 + 0.412 + 0.05))
    assert "tok/s" not in f.comment and f.comment.endswith("| first chunk 412 ms")


def test_one_tool_call_is_singular(report):
    f = finished(report, llm_flow(answer=answer(tool_calls=CALLS[:1], finish="tool_calls")))
    assert f.comment.startswith("1 tool call: edit | local-model -> ") and f.marked == ":wrench:"


def test_json_answer_has_no_speed(report):
    """A whole JSON answer: responses sets t_first_chunk = t_end, so there is no tokens-per-second to tell."""
    f = finished(
        report, llm_flow(stream=False, t_first_chunk=T0 + 1.5, t_end=T0 + 1.5, chunk_times=[], answer=answer("Hello!"))
    )
    assert f.comment == "local-model -> gemini-2.5-flash | 4,211 in / 63 out tokens | $0.0014 | first chunk 1,500 ms"


# --- tool-call checks -------------------------------------------------------------------------

BAD_CALLS = [
    {"id": "call_1", "name": "read", "arguments": '{"filePath": 3'},
    {"id": "call_2", "name": "bash", "arguments": '{"description": "list"}'},
    {"id": "call_3", "name": "frobnicate", "arguments": "{}"},
]


def test_the_client_request_kept_for_replay_does_not_hide_the_check(report):
    """client_request.py keeps the client's request (a dict) beside the rewritten one; the check still reads the
    request's tools (the native path's client body is a field of its own, client_body)."""
    f = llm_flow(answer=answer(tool_calls=BAD_CALLS, finish="tool_calls"))
    Exchange.of(f).client_request = client_request.snapshot(f.request, 1 << 20)
    finished(report, f)
    assert len(Exchange.of(f).tool_checks) == 3 and f.marked == ":warning:"


def test_invalid_tool_arguments_in_comment_mark_and_log(report, caplog):
    caplog.set_level(logging.INFO)
    f = finished(report, llm_flow(answer=answer(tool_calls=BAD_CALLS, finish="tool_calls")))
    findings = [
        "read (call_1): model sent malformed JSON arguments: unexpected end of data at char 14",
        "bash (call_2): missing required field 'command'",
        "frobnicate (call_3): unknown tool (not offered in the request)",
    ]
    assert Exchange.of(f).tool_checks == findings
    assert f.comment.startswith(f"tool-call problem: {findings[0]} (+2 more) | 3 tool calls: read, bash, frobnicate |")
    assert f.marked == ":warning:"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"  tool call check (the model got it wrong): {finding}" for finding in findings]


def test_one_finding_has_no_count(report):
    f = finished(report, llm_flow(answer=answer(tool_calls=BAD_CALLS[1:2], finish="tool_calls")))
    assert f.comment.startswith(
        "tool-call problem: bash (call_2): missing required field 'command' | 1 tool call: bash"
    )


def test_long_findings_keep_the_comment_short(report):
    call = {"id": "c", "name": "read", "arguments": orjson.dumps({"filePath": "x" * 500}).decode()}
    schema_says_short = {
        "type": "function",
        "function": {
            "name": "read",
            "parameters": {"type": "object", "properties": {"filePath": {"type": "string", "maxLength": 10}}},
        },
    }
    f = finished(
        report,
        llm_flow(
            request=OPENCODE_REQUEST | {"tools": [schema_says_short]},
            answer=answer(tool_calls=[call], finish="tool_calls"),
        ),
    )
    note = f.comment.split(" | ")[0]
    assert note.startswith("tool-call problem: read (c): 'xxx") and note.endswith("…") and len(note) < 150


def test_check_needs_the_request(report):
    f = llm_flow(answer=answer(tool_calls=BAD_CALLS, finish="tool_calls"))
    f.request.content = b"not json"
    finished(report, f)
    assert Exchange.of(f).tool_checks == [] and f.marked == ":wrench:"


# --- errors -----------------------------------------------------------------------------------


def test_upstream_error(report, caplog):
    error = 'upstream 429: [{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota)."}}]'
    f = llm_flow(answer=None, upstream_raw=None, chunk_times=[], t_first_chunk=T0 + 0.2, t_end=T0 + 0.2, error=error)
    f.response.status_code = 429
    finished(report, f)
    assert f.marked == ":x:"
    assert f.comment == f"error: {error[:120]} | local-model -> gemini-2.5-flash | first chunk 200 ms"
    assert f"local-model: {error}" in [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_cut_stream_with_a_tool_call(report):
    """The upstream went away mid-stream: the error hook reports the partial answer, and the error wins the mark."""
    f = llm_flow(
        answer=answer(tool_calls=CALLS[:1], usage=None, finish=None),
        error="Server disconnected: connection closed by peer",
    )
    f.error = tflow.terr("Server disconnected: connection closed by peer")
    finished(report, f, hook="error")
    assert f.marked == ":x:"
    assert f.comment == (
        "error: Server disconnected: connection closed by peer | 1 tool call: edit | "
        "local-model -> gemini-2.5-flash | first chunk 412 ms"
    )


def test_refused_before_routing(report, caplog):
    """Bad bodies, too-long model names and wrong proxy keys are answered by the proxy itself: errors too."""
    f = tflow.tflow(resp=True)
    f.request.path = "/v1/chat/completions"
    f.metadata["llm"] = Exchange(error="Missing or wrong proxy key: send PROXY_API_KEY as the Bearer token.")
    finished(report, f)
    assert f.marked == ":x:"
    assert f.comment == "refused by the proxy: Missing or wrong proxy key: send PROXY_API_KEY as the Bearer token."
    assert [r.getMessage() for r in caplog.records] == [f"GET /v1/chat/completions: {f.comment}"]


@pytest.mark.parametrize("metadata", [{}, {"llm": "odd"}, {"llm": {"passthrough": True, "key": "AIza…7890"}}])
def test_other_flows_are_left_alone(report, metadata):
    f = tflow.tflow(resp=True)
    f.metadata.update(metadata)
    finished(report, f)
    assert (f.comment, f.marked) == ("", "")


# --- filters (documented in the README) -------------------------------------------------------


@pytest.fixture
def four_flows(report):
    plain = finished(report, llm_flow(answer=answer("Hello!")))
    tools = finished(report, llm_flow())
    wrong = finished(report, llm_flow(answer=answer(tool_calls=BAD_CALLS, finish="tool_calls")))
    failed = llm_flow(answer=answer(tool_calls=CALLS[:1], usage=None, finish=None), error="connection closed")
    finished(report, failed, hook="error")
    other = tflow.tflow(resp=True)
    return {"plain": plain, "tools": tools, "wrong": wrong, "failed": failed, "other": other}


@pytest.mark.parametrize(
    "expression, matching",
    [
        ("~marker :x:", {"failed"}),
        ("~marker :warning:", {"wrong"}),
        ("~marker :wrench:", {"tools"}),
        ('~marker ":wrench:|:warning:"', {"tools", "wrong"}),
        ('~comment "tool call"', {"tools", "wrong", "failed"}),
        ('~comment "tool-call problem"', {"wrong"}),
        ('~comment "error:"', {"failed"}),
        ("~comment local-model", {"plain", "tools", "wrong", "failed"}),
        ('~comment "tool call" & !~marker :x:', {"tools", "wrong"}),
        ("~marked", {"tools", "wrong", "failed"}),
    ],
)
def test_filter_expressions(four_flows, expression, matching):
    matches = flowfilter.parse(expression)
    assert {name for name, f in four_flows.items() if matches(f)} == matching


def test_saved_flows_keep_comment_mark_and_metadata(four_flows):
    buffer = io.BytesIO()
    writer = mitmio.FlowWriter(buffer)
    for f in four_flows.values():
        writer.add(f)
    buffer.seek(0)
    read = list(mitmio.FlowReader(buffer).stream())
    assert [(f.comment, f.marked) for f in read] == [(f.comment, f.marked) for f in four_flows.values()]
    meta = read[1].metadata["llm"]  # plain data in the file, as earlier versions wrote it
    assert meta["tool_checks"] == [] and meta["upstream_raw"] == b"".join(TOOL_STREAM)
    assert meta["answer"]["tool_calls"] == CALLS and meta["chunk_times"][0] == 0.412


# --- the log at each verbosity ----------------------------------------------------------------


TEN_SCHEMAS = [f"tools[{i}] tool{i}: removed $schema; removed additionalProperties" for i in range(10)]


def log_of(report, caplog, verbosity: str, repairs: list[str] = ["dropped field prompt_cache_key"]) -> str:  # noqa: B006
    addon, tctx = report
    tctx.configure(addon, translate_verbosity=verbosity)
    caplog.set_level(logging.INFO)
    f = llm_flow(repairs=list(repairs))
    Exchange.of(f).repairs.append("tool call 0: index 0 assigned")  # the stream's, after the request left
    addon.response(f)
    return caplog.text


def test_summary_log(report, caplog):
    text = log_of(report, caplog, "summary")
    assert (
        "local-model -> openai/gemini-2.5-flash @ http://address:22/v1beta/openai/chat/completions "
        "(key AIza…7890, provider local)" in text
    )
    assert "  repaired: 1 tool call (index 0 assigned); dropped field prompt_cache_key\n" in text
    assert "answer: Let me fix it." in text and "finish: tool_calls" in text
    assert "messages" not in text and "upstream stream" not in text


def test_ten_repaired_tool_schemas_are_one_line(report, caplog):
    """opencode sends ten tools each turn, each repaired: one line per turn says so, the details stay in the flow."""
    text = log_of(report, caplog, "summary", TEN_SCHEMAS)
    repaired = [line for line in text.splitlines() if "repaired" in line]
    assert repaired == [
        "  repaired: 10 tool schemas (removed $schema, additionalProperties); 1 tool call (index 0 assigned)"
    ]


def test_full_log_tells_each_repair_and_the_request_shortened(report, caplog):
    text = log_of(report, caplog, "full", TEN_SCHEMAS)
    assert text.count("  repaired: 10 tool schemas") == 1
    assert all(f"  repaired: {repair}\n" in text for repair in TEN_SCHEMAS)
    assert "You are opencode" in text and f"({len(SYSTEM_PROMPT):,} chars)" in text
    assert "upstream stream" not in text


def test_full_log_shows_the_tools_that_were_called(report, caplog):
    """The answer called edit and todowrite: those are shown in full, not the first tool offered (bash)."""
    text = log_of(report, caplog, "full")
    assert "  tools (6): the ones called, in full:" in text and "  and: bash, read, glob, grep" in text
    assert '"name": "edit"' in text and '"name": "todowrite"' in text and '"name": "bash"' not in text


def test_full_log_of_an_answer_without_calls_names_the_tools(report, caplog):
    addon, tctx = report
    tctx.configure(addon, translate_verbosity="full")
    caplog.set_level(logging.INFO)
    addon.response(llm_flow(answer=answer("Hello!")))
    assert "  tools (6), none called: bash, read, edit, glob, grep, todowrite" in caplog.text
    assert '"name": "bash"' not in caplog.text


def test_chunks_log_shows_both_streams(report, caplog):
    text = log_of(report, caplog, "chunks")
    raw = b"".join(TOOL_STREAM)
    assert f"upstream stream ({len(raw)} bytes):" in text and f"sent to client ({len(raw)} bytes):" in text
    assert text.count('"finish_reason":"tool_calls"') == 2
    assert len(caplog.records) == 1  # one block


def test_summary_is_one_record_when_the_exchange_ends(report, caplog):
    addon, tctx = report
    caplog.set_level(logging.INFO)
    f = llm_flow(repairs=["dropped field prompt_cache_key"])
    addon.response(f)
    [record] = caplog.records
    lines = record.getMessage().split("\n")
    assert lines[0] == "──── POST /v1/chat/completions ────" and lines[-1] == f"  {f.comment}"
    assert "  repaired: dropped field prompt_cache_key" in lines and "  answer: Let me fix it." in lines


@pytest.mark.parametrize("verbosity", ["full", "chunks"])
def test_concurrent_exchanges_are_told_in_whole_blocks(report, caplog, verbosity):
    """opencode sends its title request and its main request together: each exchange is one record, its request,
    its answer and its comment together, whatever order their hooks ran in."""
    addon, tctx = report
    tctx.configure(addon, translate_verbosity=verbosity)
    caplog.set_level(logging.INFO)
    title = llm_flow(request=OPENCODE_REQUEST | {"messages": [{"role": "user", "content": "TITLE-REQUEST"}]})
    Exchange.of(title).answer = answer("A title")
    main = llm_flow()
    Exchange.of(main).session = {"tag": "s:3f2a", "turn": 2, "diff": {"base_turn": 1, "new_count": 0}}
    addon.response(main)
    addon.response(title)
    main_block, title_block = (r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    assert main_block.startswith("──── POST /v1/chat/completions ──── s:3f2a #2\n")
    assert "TITLE-REQUEST" not in main_block and "answer: Let me fix it." in main_block
    assert "TITLE-REQUEST" in title_block and "answer: A title" in title_block and "answer: Let me" not in title_block


def test_a_multi_line_answer_keeps_the_blocks_indentation(report, caplog):
    caplog.set_level(logging.INFO)
    report[0].response(llm_flow(answer=answer("First line.\nSecond line.\n\nFourth.")))
    assert "  answer: First line.\n      Second line.\n      \n      Fourth.\n" in caplog.text


def test_usage_is_logged_as_json(report, caplog):
    caplog.set_level(logging.INFO)
    report[0].response(llm_flow())
    line = next(line for line in caplog.text.splitlines() if line.startswith("  finish: "))
    assert orjson.loads(line.split("usage: ", 1)[1]) == USAGE


def test_upstream_error_warning_follows_the_summary(report, caplog):
    addon, _ = report
    caplog.set_level(logging.INFO)
    f = llm_flow(answer=None, error="upstream answered 503")
    addon.error(f)
    assert [r.levelno for r in caplog.records] == [logging.INFO, logging.WARNING]
    assert caplog.records[1].getMessage() == "local-model: upstream answered 503"


# --- summary.py -------------------------------------------------------------------------------


def test_shorten_keeps_short_values():
    value = {"a": ["x" * 10, 3, None], "b": "y" * 10_001}
    assert summary.shorten(value) == {"a": ["x" * 10, 3, None], "b": "y" * 200 + "... (10,001 chars)"}


@pytest.mark.parametrize(
    "content, said", [(b"{broken", "  request: 7 bytes, not JSON"), (b"[1, 2]", "  request: not an object")]
)
def test_summarize_odd_requests(content, said):
    assert summary.summarize_request(content) == said


def test_summarize_answer():
    meta = Exchange(
        answer={
            "reasoning": "r" * 3000,
            "content": "Done.",
            "tool_calls": CALLS[:1],
            "finish_reason": "tool_calls",
            "usage": {"total_tokens": 9},
        }
    )
    lines = summary.summarize_answer(meta).split("\n")
    assert lines[0] == "  reasoning: " + "r" * 200 + "... (3,000 chars)"
    assert lines[1:] == [
        "  answer: Done.",
        f"  tool call edit (call_3): {CALLS[0]['arguments']}",
        '  finish: tool_calls, usage: {"total_tokens":9}',
    ]


def test_price():
    assert summary.price(Exchange(**FLASH_PRICES), {"prompt_tokens": 1_000_000}) == pytest.approx(0.3)
    assert summary.price(Exchange(**FLASH_PRICES), {"completion_tokens": 1_000_000}) == pytest.approx(2.5)
    assert summary.price(Exchange(price_in=1e-6), {"prompt_tokens": 10}) is None


# --- an empty answer (Gemini's MALFORMED_FUNCTION_CALL on the OpenAI-compatible endpoint) -----------------

EMPTY_STREAM = [
    b'data: {"choices":[{"delta":{"content":"","role":"assistant"},"finish_reason":"stop","index":0}],'
    b'"created":1,"id":"x","model":"local-model","object":"chat.completion.chunk",'
    b'"usage":{"completion_tokens":0,"prompt_tokens":4211,"total_tokens":4211}}\n\n',
    b"data: [DONE]\n\n",
]


def test_an_empty_answer_is_marked_failed_and_named_with_its_fix(report, caplog):
    f = llm_flow(response=b"".join(EMPTY_STREAM), answer=answer(usage={**USAGE, "completion_tokens": 0}))
    with caplog.at_level(logging.INFO):
        finished(report, f)
    assert f.marked == ":x:" and "empty answer (no text, no tool calls)" in f.comment
    assert flowfilter.match("~marker :x:", f) and flowfilter.match('~comment "empty answer"', f)
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("MALFORMED_FUNCTION_CALL" in w and "translate_retry_empty_answer=true" in w for w in warning)


def test_an_empty_answer_that_was_asked_again_says_so(report, caplog):
    attempts = [
        {"upstream_model": "gemini-2.5-flash", "status": 200, "empty": True},
        {"upstream_model": "gemini-2.5-flash", "status": 200},
    ]
    f = llm_flow(response=b"".join(EMPTY_STREAM), answer=answer(), attempts=attempts)
    with caplog.at_level(logging.INFO):
        finished(report, f)
    assert "tried gemini-2.5-flash 200 (empty), gemini-2.5-flash 200" in f.comment
    assert any("asked once more" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


@pytest.mark.parametrize("finish", ["length", "content_filter"])
def test_answers_without_text_that_say_why_are_not_called_empty(report, finish):
    f = finished(report, llm_flow(answer=answer(finish=finish)))
    assert f.marked == "" and "empty answer" not in f.comment


# --- an attachment opencode sent as text --------------------------------------------------------

PLACEHOLDER = 'ERROR: Cannot read "shot.png" (this model does not support image input). Inform the user.'


def test_an_attachment_sent_as_text_is_marked_and_its_fix_logged(report, caplog):
    request = {
        **OPENCODE_REQUEST,
        "messages": [
            *OPENCODE_REQUEST["messages"],
            {
                "role": "user",
                "content": [{"type": "text", "text": "what is this?"}, {"type": "text", "text": PLACEHOLDER}],
            },
        ],
    }
    f = llm_flow(request, answer=answer("I cannot see an image."))
    with caplog.at_level(logging.INFO):
        finished(report, f)
    assert f.marked == ":framed_picture:" and "set the model's modalities" in f.comment
    assert Exchange.of(f).media_placeholders == [PLACEHOLDER]
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert '"modalities": {"input": ["text", "image", "pdf"]' in warning and PLACEHOLDER in warning
