"""addon/formats/answer.py: the one fold of chunks into an answer, and the streaming path and the LLM chat view
agreeing on every stream (they share the fold)."""

import orjson
import pytest
from mitmproxy import http
from mitmproxy.contentviews import Metadata
from mitmproxy.test import taddons, tflow

from addon.formats.answer import Answer, is_empty
from addon.formats.exchange import Exchange
from addon.inspection.chat_assembly import assemble_json, assemble_sse
from addon.inspection.chatview import ChatView
from addon.request.routing import Routing
from addon.response.responses import Responses
from addon.response.stream_rewrite import StreamOptions, StreamRewriter

PLAIN = StreamOptions("local-model", repair_tool_calls=False, pack_signatures=False, keep_bytes=1 << 20)
REPAIRING = StreamOptions("local-model", repair_tool_calls=True, pack_signatures=True, keep_bytes=1 << 20)
DONE = b"data: [DONE]\n\n"


def event(delta: dict | None = None, finish: str | None = None, **extra) -> bytes:
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gemini-2.5-flash",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
        **extra,
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def call(index: int | None = None, id: str | None = None, name: str | None = None, args: str | None = None) -> dict:
    fn = {k: v for k, v in (("name", name), ("arguments", args)) if v is not None}
    return {k: v for k, v in (("index", index), ("id", id), ("function", fn)) if v is not None}


def calls(*fragments: dict) -> bytes:
    return event({"tool_calls": list(fragments)})


# name -> (stream, the tool calls it folds into as (id, name, arguments); content)
STREAMS = {
    "text, reasoning and usage": (
        event({"role": "assistant", "content": ""})
        + event({"reasoning_content": "Think", "reasoning": "Think"})  # the same thought under both keys
        + event({"content": "Hel"})
        + event({"content": [{"type": "text", "text": "lo"}]})
        + event(finish="stop")
        + b'data: {"object": "chat.completion.chunk", "choices": [], "usage": {"total_tokens": 9}}\n\n'
        + DONE,
        [],
        "Hello",
    ),
    "OpenAI parallel calls, interleaved fragments": (
        calls(call(0, "call_1", "read", ""))
        + calls(call(0, args='{"filePath"'))
        + calls(call(1, "call_2", "glob", ""))
        + calls(call(0, args=': "/src/app.ts"}'))
        + calls(call(1, args='{"pattern": "**/*.ts"}'))
        + event(finish="tool_calls")
        + DONE,
        [("call_1", "read", '{"filePath": "/src/app.ts"}'), ("call_2", "glob", '{"pattern": "**/*.ts"}')],
        "",
    ),
    "Gemini: parallel calls without index, one with an empty id": (
        event({"content": "Reading."})
        + calls(call(id="call_a", name="read", args='{"a": 1}'))
        + calls(call(id="", name="bash", args='{"b": 2}'))
        + event(finish="stop")
        + DONE,
        [("call_a", "read", '{"a": 1}'), ("", "bash", '{"b": 2}')],
        "Reading.",
    ),
    "Gemini: two calls without index in one delta": (
        calls(call(id="call_a", name="read", args='{"a": 1}'), call(id="call_b", name="read", args='{"b": 2}')) + DONE,
        [("call_a", "read", '{"a": 1}'), ("call_b", "read", '{"b": 2}')],
        "",
    ),
    "parallel calls all at index 0, each with its own id": (
        calls(call(0, "call_a", "read", '{"a": 1}')) + calls(call(0, "call_b", "bash", '{"b": 2}')) + DONE,
        [("call_a", "read", '{"a": 1}'), ("call_b", "bash", '{"b": 2}')],
        "",
    ),
    "the id and whole name repeated on every fragment": (
        calls(call(0, "c", "read", "{")) + calls(call(0, "c", "read", '"x": 1')) + calls(call(0, "c", "read", "}")),
        [("c", "read", '{"x": 1}')],
        "",
    ),
    "empty ids continue the call at their index": (
        calls(call(0, "", "read", '{"x"')) + calls(call(0, "", args=": 1}")) + calls(call(1, "", "glob", "{}")) + DONE,
        [("", "read", '{"x": 1}'), ("", "glob", "{}")],
        "",
    ),
    "the id on a later fragment, the name in pieces": (
        calls(call(0, name="re")) + calls(call(0, "call_1", "ad", "{}")) + DONE,
        [("call_1", "read", "{}")],
        "",
    ),
    "without index: arguments alone continue the call started last": (
        calls(call(id="call_a", name="read", args='{"x"')) + calls(call(args=": 1}")) + DONE,
        [("call_a", "read", '{"x": 1}')],
        "",
    ),
}
# Not a shape Gemini sends: its repair gives the first fragment an id, so the later id starts another call.
NOT_GEMINI = {"the id on a later fragment, the name in pieces"}


def stream(rewriter: StreamRewriter, *pieces: bytes) -> StreamRewriter:
    for piece in pieces:
        if piece:  # b"" is the end of the stream to the rewriter
            rewriter(piece)
    rewriter(b"")
    return rewriter


def shape(answer: dict) -> list[tuple[str, str, str]]:
    return [(c["id"], c["name"], c["arguments"]) for c in answer["tool_calls"]]


@pytest.mark.parametrize("name", STREAMS)
def test_the_fold(name):
    body, expected_calls, content = STREAMS[name]
    answer = assemble_sse(body).answer()
    assert (shape(answer), answer["content"]) == (expected_calls, content)


def test_text_reasoning_usage_and_finish():
    answer = stream(StreamRewriter(PLAIN), STREAMS["text, reasoning and usage"][0]).answer.to_dict()
    assert answer == {
        "content": "Hello",
        "reasoning": "Think",
        "tool_calls": [],
        "finish_reason": "stop",
        "usage": {"total_tokens": 9},
    }


@pytest.mark.parametrize("name", STREAMS)
def test_streaming_path_and_view_agree_at_every_split_point(name):
    """What the flow records while the stream passes (meta.answer) is what the LLM chat view assembles from the
    stored body, wherever the upstream's reads were cut, with and without Gemini's repairs."""
    body, expected_calls, content = STREAMS[name]
    for cut in range(len(body) + 1):
        for options in (PLAIN, REPAIRING):
            rewriter = stream(StreamRewriter(options), body[:cut], body[cut:])
            streamed = rewriter.answer.to_dict()
            assert streamed == assemble_sse(bytes(rewriter.sent.data)).answer(), (cut, options)
            assert streamed["content"] == content
            if options is PLAIN:
                assert shape(streamed) == expected_calls
            elif name not in NOT_GEMINI:  # repaired: every call has an id, the upstream's where it sent one
                assert [c[1:] for c in shape(streamed)] == [c[1:] for c in expected_calls]
                assert all(got[0] and want[0] in ("", got[0]) for got, want in zip(shape(streamed), expected_calls))
                # The upstream raw view folds the unrepaired stream into the same calls as the repair does.
                upstream = assemble_sse(bytes(rewriter.upstream.data)).answer()
                assert [c[1:] for c in shape(upstream)] == [c[1:] for c in expected_calls]
    one_byte_reads = stream(StreamRewriter(PLAIN), *(body[i : i + 1] for i in range(len(body))))
    assert shape(one_byte_reads.answer.to_dict()) == expected_calls


COMPLETIONS = [
    {"content": "Hi.", "reasoning_content": "Greet.", "reasoning": "Greet."},
    {
        "content": [{"type": "text", "text": "Reading."}],
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "read", "arguments": '{"a": 1}'}},
            {"id": "call_2", "type": "function", "function": {"name": "read", "arguments": {"b": 2}}},
        ],
    },
    {  # the same index twice: still two calls
        "content": None,
        "tool_calls": [
            {"index": 0, "id": "a", "function": {"name": "read", "arguments": "{}"}},
            {"index": 0, "id": "b", "function": {"name": "glob", "arguments": "{}"}},
        ],
    },
]


@pytest.mark.parametrize("message", COMPLETIONS)
def test_completion_folds_as_the_view_reads_it(message):
    body = {
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}],
        "usage": {"total_tokens": 3},
    }
    folded = Answer()
    folded.add_completion(body)
    assert folded.to_dict() == assemble_json(orjson.dumps(body)).answer()
    assert len(folded.tool_calls) == len(message.get("tool_calls", []))
    assert all(c.arguments for c in folded.tool_calls)
    assert folded.reasoning == ("Greet." if "reasoning" in message else "")


def test_choice_0_is_the_one_with_index_0():
    answer = Answer()
    for index, text in ((1, "other "), (0, "mine")):
        answer.add_chunk({"choices": [{"index": index, "delta": {"content": text}}]})
    answer.add_chunk({"choices": [{"index": 1, "delta": {"content": "x"}}, {"index": 0, "delta": {"content": "!"}}]})
    assert answer.content == "mine!" and answer.chunks == 3


def test_odd_fragments_are_ignored_not_fatal():
    answer = Answer()
    answer.add_chunk({"choices": [{"delta": {"tool_calls": ["junk", {"index": True, "function": "x"}]}}]})
    answer.add_chunk({"choices": [{"delta": {"tool_calls": [{"index": -1, "id": 5, "function": {"arguments": 7}}]}}]})
    assert [(c.id, c.name, c.arguments) for c in answer.tool_calls] == [("", "", "")]
    answer.add_chunk({"choices": "x", "usage": [1]})
    assert answer.usage is None and answer.chunks == 3


# The addons themselves: Responses records the answer while the stream passes, ChatView shows the stored body.


@pytest.fixture
def responses():
    addon = Responses()
    with taddons.context(Routing(), addon):
        yield addon


def answered_flow(content_type: str) -> http.HTTPFlow:
    flow = tflow.tflow(live=True)
    flow.metadata["llm"] = Exchange(key="AIza…00", client_model="local-model", upstream_model="g", is_gemini=True)
    flow.response = http.Response.make(200, b"", {"content-type": content_type})
    return flow


@pytest.mark.parametrize("name", STREAMS)
def test_the_flows_answer_is_what_the_view_shows(responses, name):
    flow = answered_flow("text/event-stream")
    responses.responseheaders(flow)
    stream(flow.response.stream, STREAMS[name][0])
    responses.response(flow)
    recorded = Exchange.of(flow).answer
    assert recorded == assemble_sse(flow.response.content).answer()
    shown = ChatView().prettify(flow.response.content, Metadata(flow=flow, http_message=flow.response))
    for i, (call_id, call_name, _) in enumerate(shape(recorded)):
        assert f"tool call [{i}] {call_name} ({call_id}):" in shown


@pytest.mark.parametrize("message", COMPLETIONS)
def test_a_completions_recorded_answer_is_what_the_view_shows(responses, message):
    flow = answered_flow("application/json")
    choice = {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}
    flow.response.content = orjson.dumps({"object": "chat.completion", "model": "g", "choices": [choice]})
    responses.response(flow)
    assert Exchange.of(flow).answer == assemble_json(flow.response.content).answer()


@pytest.mark.parametrize(
    ("answer", "empty"),
    [
        ({"content": "", "tool_calls": [], "finish_reason": "stop"}, True),  # Gemini's MALFORMED_FUNCTION_CALL
        ({"content": "  \n", "tool_calls": [], "finish_reason": "stop"}, True),
        ({"content": "", "reasoning": "I will call edit", "tool_calls": [], "finish_reason": "stop"}, True),
        ({"content": "", "tool_calls": [], "finish_reason": "malformed_function_call"}, True),
        ({"content": "", "tool_calls": [], "finish_reason": None}, True),
        ({"content": "Done.", "tool_calls": [], "finish_reason": "stop"}, False),
        (
            {"content": "", "tool_calls": [{"id": "c", "name": "bash", "arguments": "{}"}], "finish_reason": "stop"},
            False,
        ),
        ({"content": "", "tool_calls": [], "finish_reason": "length"}, False),  # thinking used up max_tokens
        ({"content": "", "tool_calls": [], "finish_reason": "content_filter"}, False),
    ],
)
def test_is_empty(answer: dict, empty: bool) -> None:
    assert is_empty(answer) is empty
