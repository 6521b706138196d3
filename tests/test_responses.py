"""addon/response/responses.py: hooks called directly on flows filled the way routing fills them, then reported.

Responses and Report run in the proxy's order (responses first), so each test sees the comment and mark a saved
flow would get.
"""

import time

import orjson
import pytest
from mitmproxy import flow as mflow
from mitmproxy.test import taddons, tflow

from addon.inspection.report import Report
from addon.response.responses import Responses
from addon.response.stream_rewrite import StreamOptions, StreamRewriter

CHUNK = {"id": "c1", "object": "chat.completion.chunk", "model": "gemini-2.5-flash", "choices": []}
HELLO = b"data: " + orjson.dumps(CHUNK | {"choices": [{"index": 0, "delta": {"content": "Hello"}}]}) + b"\n\n"
STOP = b"data: " + orjson.dumps(CHUNK | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + b"\n\n"
DONE = b"data: [DONE]\n\n"
GEMINI_429 = orjson.dumps(
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
    flow.metadata["llm"] = {
        "endpoint": "POST /v1/chat/completions",
        "client_model": "local-model",
        "upstream_model": "gemini-2.5-flash",
        "litellm_model": "openai/gemini-2.5-flash",
        "api_base": "https://generativelanguage.googleapis.com/v1beta/openai/",
        "stream": stream,
        "is_gemini": True,
        "key": "AIza…00",
        "t_request": time.time(),
        "repairs": [],
    }
    return flow


def streamed(*parts: bytes):
    """A flow whose streamed response passed these parts through the rewriter (as mitmproxy calls it)."""
    flow = llm_flow(stream=True)
    flow.response.headers["content-type"] = "text/event-stream"
    rewriter = StreamRewriter(StreamOptions("local-model", True, True, 1 << 20), flow.metadata["llm"]["t_request"])
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
    meta = flow.metadata["llm"]
    assert flow.error is None and not meta.get("error")
    assert flow.marked == "" and "error" not in flow.comment
    assert meta["answer"]["content"] == "Hello" and meta["answer"]["finish_reason"] == "stop"
    assert flow.response.content.startswith(HELLO.replace(b"gemini-2.5-flash", b"local-model"))
    assert flow.response.stream is False and flow.response.timestamp_end


def test_a_client_that_leaves_before_the_end_is_still_a_failure(hooks):
    responses, report, _ = hooks
    flow = streamed(HELLO)
    flow.error = mflow.Error("Client disconnected.")
    ended_by("error", flow, responses, report)
    assert flow.error.msg == "Client disconnected."
    assert flow.metadata["llm"]["error"] == "Client disconnected."
    assert flow.marked == ":x:" and flow.comment.endswith("| error: Client disconnected.")
    assert flow.metadata["llm"]["answer"]["content"] == "Hello"  # the part that came is kept


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
    flow.response.content = GEMINI_429
    ended_by("response", flow, responses, report)
    sent = orjson.loads(flow.response.content)
    assert sent["error"]["message"] == "Resource has been exhausted (e.g. check quota)."
    assert flow.metadata["llm"]["error"] == "upstream 429: Resource has been exhausted (e.g. check quota)."
    assert flow.comment.endswith("| error: upstream 429: Resource has been exhausted (e.g. check quota).")
    assert flow.marked == ":x:"


def test_with_error_repair_off_the_comment_shows_the_body_the_client_gets(hooks):
    responses, report, tctx = hooks
    tctx.configure(responses, translate_repair_errors=False)
    flow = llm_flow(stream=False)
    flow.response.status_code = 429
    flow.response.content = GEMINI_429
    ended_by("response", flow, responses, report)
    assert flow.response.content == GEMINI_429
    assert flow.metadata["llm"]["error"] == f"upstream 429: {GEMINI_429.decode()}"
