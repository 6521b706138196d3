"""addon/response/responses.py with its hooks called directly: answers go back under the client's name, in
OpenAI's shape; streams are set up in responseheaders; failures get the proxy's own status and code."""

import json
import time

import orjson
import pytest
from mitmproxy import flow as mflow
from mitmproxy import http
from mitmproxy.flow import Error
from mitmproxy.test import taddons, tflow

from addon.formats.exchange import Exchange
from addon.inspection.report import Report
from addon.response.responses import Responses, failure
from addon.response.stream_rewrite import StreamOptions, StreamRewriter
from addon.runtime import stream_end, upstream_key

GEMINI_429 = b'[{"error": {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED"}}]'


@pytest.fixture
def tctx():
    with taddons.context(Responses()) as context:
        if "translate_repair_signatures" not in context.options:  # routing's option; responses reads it
            context.options.add_option("translate_repair_signatures", bool, True, "")
        yield context


@pytest.fixture
def addon(tctx) -> Responses:
    return tctx.master.addons.get("responses")


def routed(status: int = 200, body: bytes = b"", content_type: str = "application/json", **meta) -> http.HTTPFlow:
    """A live flow as routing and the upstream left it: local-model asked, gemini-2.5-flash answered."""
    flow = tflow.tflow(live=True, resp=True)
    flow.request.method, flow.request.path = "POST", "/v1beta/openai/chat/completions"
    upstream_key.attach_key(flow.request, "AIzaSy-the-real-key-0000", "AIza…00")
    flow.response = http.Response.make(status, body, {"content-type": content_type})
    fields = {
        "client_model": "local-model",
        "upstream_model": "gemini-2.5-flash",
        "api_base": "http://upstream.test/v1beta/openai/",
        "is_gemini": True,
        "key": "AIza…00",
        "t_request": 1000.0,
        "repairs": [],
    }
    flow.metadata["llm"] = Exchange(**{**fields, **meta})
    return flow


def completion(**message) -> bytes:
    return json.dumps(
        {
            "id": "c1",
            "object": "chat.completion",
            "model": "gemini-2.5-flash",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        }
    ).encode()


def sse(*chunks: dict) -> list[bytes]:
    return [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]


def delta(content: str) -> dict:
    return {
        "object": "chat.completion.chunk",
        "model": "gemini-2.5-flash",
        "choices": [{"delta": {"content": content}}],
    }


# Whole JSON answers


def test_a_json_answer_is_renamed_to_the_client_model_and_recorded(addon):
    flow = routed(body=completion(content="pong"))
    addon.responseheaders(flow)
    addon.response(flow)
    body = json.loads(flow.response.content)
    assert body["model"] == "local-model"
    assert body["choices"][0]["message"]["content"] == "pong" and body["usage"]["total_tokens"] == 7
    assert flow.response.headers["x-upstream-model"] == "gemini-2.5-flash"
    meta = Exchange.of(flow)
    assert meta.answer["content"] == "pong" and meta.answer["usage"]["completion_tokens"] == 2
    assert meta.t_end >= meta.t_first_chunk > 0
    assert flow.response.stream is False  # nothing streamed for a JSON answer


def test_gemini_tool_calls_in_a_json_answer_get_ids_and_the_tool_calls_finish(addon):
    call = {"type": "function", "function": {"name": "read", "arguments": '{"filePath": "a"}'}}
    flow = routed(body=completion(content=None, tool_calls=[call]))
    addon.response(flow)
    choice = json.loads(flow.response.content)["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["tool_calls"][0]["id"]
    assert "finish_reason stop -> tool_calls" in Exchange.of(flow).repairs
    assert Exchange.of(flow).answer["tool_calls"][0]["name"] == "read"


def test_the_repair_is_an_option(tctx, addon):
    call = {"type": "function", "function": {"name": "read", "arguments": "{}"}}
    flow = routed(body=completion(content=None, tool_calls=[call]))
    tctx.options.update(translate_repair_stream_tools=False, translate_repair_signatures=False)
    addon.response(flow)
    choice = json.loads(flow.response.content)["choices"][0]
    assert choice["finish_reason"] == "stop" and "id" not in choice["message"]["tool_calls"][0]
    assert json.loads(flow.response.content)["model"] == "local-model"  # renamed all the same


def test_a_body_that_is_not_a_json_object_is_left_alone(addon):
    for body in (b"not json", b"[1, 2]"):
        flow = routed(body=body)
        addon.response(flow)
        assert flow.response.content == body and Exchange.of(flow).answer is None


# Upstream errors


def test_a_list_wrapped_gemini_error_is_reshaped_with_its_status(addon):
    flow = routed(429, GEMINI_429)
    flow.response.headers["retry-after"] = "7"
    addon.responseheaders(flow)
    addon.response(flow)
    assert flow.response.status_code == 429 and flow.response.headers["retry-after"] == "7"
    assert flow.response.headers["content-type"] == "application/json"
    assert json.loads(flow.response.content) == {
        "error": {"message": "Quota exceeded.", "type": "rate_limit_error", "code": "RESOURCE_EXHAUSTED"}
    }
    meta = Exchange.of(flow)
    # The flow says what the client got (issue 11): the normalised message, not Gemini's list.
    assert meta.error == "upstream 429: Quota exceeded." and "error reshaped to OpenAI's shape" in meta.repairs
    assert meta.answer is None


def test_an_error_already_in_openais_shape_is_not_touched(addon):
    body = b'{"error": {"message": "m", "type": "invalid_request_error", "code": "c"}}'
    flow = routed(400, body)
    addon.response(flow)
    assert flow.response.content == body and Exchange.of(flow).repairs == []
    assert Exchange.of(flow).error == "upstream 400: m"  # the message the client reads in the body


def test_reshaping_errors_is_an_option(tctx, addon):
    tctx.configure(addon, translate_repair_errors=False)
    flow = routed(503, GEMINI_429)
    addon.response(flow)
    assert flow.response.content == GEMINI_429 and Exchange.of(flow).error.startswith("upstream 503")


# Streams


def test_an_sse_answer_gets_a_stream_rewriter_in_responseheaders(addon):
    flow = routed(content_type="text/event-stream")
    flow.response.headers["content-length"] = "123"
    flow.request.http_version = "HTTP/1.1"
    addon.responseheaders(flow)
    assert isinstance(flow.response.stream, StreamRewriter)
    assert "content-length" not in flow.response.headers
    assert flow.response.headers["transfer-encoding"] == "chunked"
    assert flow.response.headers["x-upstream-model"] == "gemini-2.5-flash"
    options = flow.response.stream.options
    assert options.client_model == "local-model" and options.repair_tool_calls and options.pack_signatures


def test_a_non_gemini_stream_is_renamed_but_not_repaired(addon):
    flow = routed(content_type="text/event-stream; charset=utf-8", is_gemini=False)
    addon.responseheaders(flow)
    options = flow.response.stream.options
    assert options.client_model == "local-model" and not options.repair_tool_calls and not options.pack_signatures


def test_a_fallback_attempt_keeps_its_whole_stream(tctx, addon):
    tctx.configure(addon, translate_keep_stream_bytes=10)
    plain, attempt = routed(content_type="text/event-stream"), routed(content_type="text/event-stream", fallback_of="x")
    addon.responseheaders(plain)
    addon.responseheaders(attempt)
    assert plain.response.stream.options.keep_bytes == 10
    assert attempt.response.stream.options.keep_bytes > 2**40


@pytest.mark.parametrize("status,content_type", [(200, "application/json"), (429, "text/event-stream")])
def test_no_stream_for_json_or_an_error(addon, status, content_type):
    flow = routed(status, b"{}", content_type)
    addon.responseheaders(flow)
    assert flow.response.stream is False and flow.response.headers.get("transfer-encoding") is None


def test_the_stream_is_renamed_as_it_passes_and_stored_whole_at_the_end(addon):
    flow = routed(content_type="text/event-stream")
    addon.responseheaders(flow)
    rewriter = flow.response.stream
    frames = sse(delta("Hel"), delta("lo"))
    sent = [out for frame in frames for out in rewriter(frame)] + rewriter(b"")
    assert len(sent) >= 2 and all(
        b'"model":"local-model"' in out or b'"model": "local-model"' in out for out in sent[:2]
    )
    assert not any(b"gemini-2.5-flash" in out for out in sent)
    addon.response(flow)
    assert flow.response.stream is False
    assert flow.response.content == b"".join(sent)  # the stored body is what the client got
    meta = Exchange.of(flow)
    assert meta.answer["content"] == "Hello" and meta.stream_done is True
    assert meta.upstream_raw == b"".join(frames) and meta.body_truncated is False
    assert len(meta.chunk_times) == 3


# The key, and flows that are not ours to rewrite


def test_the_real_key_is_dropped_once_the_upstream_answered(addon):
    flow = routed(body=completion(content="x"))
    assert bytes(flow.request.headers).count(b"AIzaSy-the-real-key") == 1  # on the wire until now
    addon.responseheaders(flow)
    assert not isinstance(flow.request.headers, upstream_key.KeyedHeaders)
    assert b"AIzaSy-the-real-key" not in bytes(flow.request.headers)
    assert flow.request.headers["authorization"] == "Bearer AIza…00"


def test_a_passthrough_answer_loses_the_key_and_is_left_as_it_is(addon):
    body = b'{"object": "list", "data": [], "model": "gemini-embedding-001"}'
    flow = routed(body=body, passthrough=True)
    addon.responseheaders(flow)
    addon.response(flow)
    assert flow.response.content == body and "x-upstream-model" not in flow.response.headers
    assert not isinstance(flow.request.headers, upstream_key.KeyedHeaders)


def test_a_flow_read_back_from_a_file_is_not_rewritten_again(addon):
    flow = routed(body=completion(content="x"))
    flow.live = False
    addon.responseheaders(flow)
    addon.response(flow)
    assert json.loads(flow.response.content)["model"] == "gemini-2.5-flash"
    assert "x-upstream-model" not in flow.response.headers and Exchange.of(flow).answer is None


def test_an_answer_taken_over_by_a_fallback_is_left_to_it(addon):
    flow = routed(503, GEMINI_429, answered_by="local-b")
    addon.response(flow)
    assert flow.response.content == GEMINI_429 and Exchange.of(flow).error is None
    flow.error = Error("connection closed")
    taken = flow.response
    addon.error(flow)
    assert flow.response is taken  # the fallback's answer stays the flow's response: no error page replaces it


# Failures: the proxy's own status and code


@pytest.mark.parametrize(
    "meta,status,code,message",
    [
        ({"error": "refused"}, 502, "upstream_unreachable", "Upstream http://u/ failed: refused"),
        ({"error": "slow", "timed_out": True}, 504, "upstream_timeout", "Upstream http://u/ timed out: slow"),
        ({"error": "The proxy was stopped.", "shutdown": True}, 503, "proxy_shutting_down", "The proxy was stopped."),
    ],
)
def test_failure(meta, status, code, message):
    assert failure(Exchange(api_base="http://u/", **meta)) == (status, code, message)


@pytest.mark.parametrize(
    "extra,status,code",
    [({}, 502, "upstream_unreachable"), ({"timed_out": True}, 504, "upstream_timeout")],
)
def test_an_upstream_failure_before_the_answer_becomes_the_error_page(addon, extra, status, code):
    flow = routed(**extra)
    flow.response = None
    flow.error = Error("Connection refused")
    addon.error(flow)
    page = flow.response  # what stream_end.py sends in place of mitmproxy's page
    assert page.status_code == status and page.headers["content-type"] == "application/json"
    error = json.loads(page.content)["error"]
    assert error["code"] == code and "Connection refused" in error["message"]
    assert error["type"] == ("timeout_error" if status == 504 else "api_error")
    assert Exchange.of(flow).error == "Connection refused"
    assert not isinstance(flow.request.headers, upstream_key.KeyedHeaders)  # the key is gone here too


def test_a_cut_stream_keeps_what_was_sent(addon):
    flow = routed(content_type="text/event-stream")
    addon.responseheaders(flow)
    rewriter = flow.response.stream
    first = rewriter(sse(delta("part"))[0])
    flow.error = Error("Server disconnected")
    addon.error(flow)
    meta = Exchange.of(flow)
    assert meta.error == "Server disconnected" and meta.answer["content"] == "part"
    assert flow.response.content == b"".join(first) and meta.stream_done is False
    assert meta.error_event_sent is False  # the stream endings patch is not installed in this test
    assert flow.response.status_code == 200  # the headers went out: no error page for a begun stream


def test_a_cut_stream_ends_with_an_error_event_through_the_stream_endings(addon):
    stream_end.install()
    try:
        flow = routed(content_type="text/event-stream")
        addon.responseheaders(flow)
        first = flow.response.stream(sse(delta("part"))[0])
        flow.error = Error("Server disconnected")
        addon.error(flow)
        meta = Exchange.of(flow)
        last = stream_end._last.get(flow)
        assert last is not None and json.loads(last.removeprefix(b"data: "))["error"]["code"] == "upstream_unreachable"
        assert meta.error_event_sent is True and flow.response.content == b"".join(first) + last
    finally:
        stream_end.uninstall()


# ---------------------------------------------------------------- a stream's end, and the client's
CHUNK = {"id": "c1", "object": "chat.completion.chunk", "model": "gemini-2.5-flash", "choices": []}
HELLO = b"data: " + orjson.dumps(CHUNK | {"choices": [{"index": 0, "delta": {"content": "Hello"}}]}) + b"\n\n"
STOP = b"data: " + orjson.dumps(CHUNK | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + b"\n\n"
DONE = b"data: [DONE]\n\n"
GEMINI_429_EXHAUSTED = orjson.dumps(
    [
        {
            "error": {
                "code": 429,
                "message": "Resource has been exhausted (e.g. check quota).",
                "status": "RESOURCE_EXHAUSTED",
            }
        }
    ]
)


@pytest.fixture
def hooks():
    responses, report = Responses(), Report()
    with taddons.context(responses, report) as tctx:
        yield responses, report, tctx


def llm_flow(stream: bool):
    flow = tflow.tflow(resp=True, live=True)
    flow.request.path = "/v1beta/openai/chat/completions"
    flow.metadata["llm"] = Exchange(
        endpoint="POST /v1/chat/completions",
        client_model="local-model",
        upstream_model="gemini-2.5-flash",
        litellm_model="openai/gemini-2.5-flash",
        api_base="https://generativelanguage.googleapis.com/v1beta/openai/",
        stream=stream,
        is_gemini=True,
        key="AIza…00",
        t_request=time.time(),
        repairs=[],
    )
    return flow


def streamed(*parts: bytes):
    """A flow whose streamed response passed these parts through the rewriter (as mitmproxy calls it)."""
    flow = llm_flow(stream=True)
    flow.response.headers["content-type"] = "text/event-stream"
    rewriter = StreamRewriter(StreamOptions("local-model", True, True, 1 << 20), Exchange.of(flow).t_request)
    flow.response.stream = rewriter
    for part in parts:
        rewriter(part)
    return flow


def ended_by(hook: str, flow, responses: Responses, report: Report) -> None:
    getattr(responses, hook)(flow)
    getattr(report, hook)(flow)


# --- a stream and a client that leaves ------------------------------------------------------------


@pytest.mark.parametrize("end", [DONE, b""], ids=["[DONE]", "upstream end"])
def test_a_whole_stream_is_complete_when_the_client_leaves_before_mitmproxy_sees_its_end(hooks, end):
    """The openai SDK closes the connection right after [DONE]; when that close reaches mitmproxy before the
    upstream's end of body, mitmproxy runs the error hook ("Client disconnected."), not the response hook."""
    responses, report, _ = hooks
    flow = streamed(HELLO, STOP, end)
    flow.error = mflow.Error("Client disconnected.")
    ended_by("error", flow, responses, report)
    meta = Exchange.of(flow)
    assert flow.error is None and not meta.error
    assert flow.marked == "" and "error" not in flow.comment
    assert meta.answer["content"] == "Hello" and meta.answer["finish_reason"] == "stop"
    assert flow.response.content.startswith(HELLO.replace(b"gemini-2.5-flash", b"local-model"))
    assert flow.response.stream is False and flow.response.timestamp_end


def test_a_client_that_leaves_before_the_end_is_still_a_failure(hooks):
    responses, report, _ = hooks
    flow = streamed(HELLO)
    flow.error = mflow.Error("Client disconnected.")
    ended_by("error", flow, responses, report)
    assert flow.error.msg == "Client disconnected."
    assert Exchange.of(flow).error == "Client disconnected."
    assert flow.marked == ":x:" and flow.comment.startswith("error: Client disconnected. | ")
    assert Exchange.of(flow).answer["content"] == "Hello"  # the part that came is kept


def test_an_upstream_cut_before_done_is_still_a_failure(hooks):
    responses, report, _ = hooks
    flow = streamed(HELLO, STOP)
    flow.error = mflow.Error("Server disconnected: connection closed by peer")
    ended_by("error", flow, responses, report)
    assert flow.error is not None and flow.marked == ":x:"
    assert "error: Server disconnected" in flow.comment


# --- upstream errors -------------------------------------------------------------------------------


def test_an_upstream_error_comment_shows_the_message_the_client_gets(hooks):
    responses, report, _ = hooks
    flow = llm_flow(stream=False)
    flow.response.status_code = 429
    flow.response.content = GEMINI_429_EXHAUSTED
    ended_by("response", flow, responses, report)
    sent = orjson.loads(flow.response.content)
    assert sent["error"]["message"] == "Resource has been exhausted (e.g. check quota)."
    assert Exchange.of(flow).error == "upstream 429: Resource has been exhausted (e.g. check quota)."
    assert flow.comment.startswith("error: upstream 429: Resource has been exhausted (e.g. check quota). | ")
    assert flow.marked == ":x:"


def test_with_error_repair_off_the_comment_shows_the_body_the_client_gets(hooks):
    responses, report, tctx = hooks
    tctx.configure(responses, translate_repair_errors=False)
    flow = llm_flow(stream=False)
    flow.response.status_code = 429
    flow.response.content = GEMINI_429_EXHAUSTED
    ended_by("response", flow, responses, report)
    assert flow.response.content == GEMINI_429_EXHAUSTED
    assert Exchange.of(flow).error == f"upstream 429: {GEMINI_429_EXHAUSTED.decode()}"
