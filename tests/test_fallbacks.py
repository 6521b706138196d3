"""addon/fallbacks.py without a proxy: the pure parts, routing's share, the error page, and the attempt loop.

The loop runs with `run` scripted (no replay, no network): each attempt gets the status the test names, the way
routing and responses would have filled its flow. tests/test_fallbacks_e2e.py runs the real thing.
"""

import asyncio
import json

import pytest
from mitmproxy import ctx, http
from mitmproxy.flow import Error
from mitmproxy.test import taddons, tflow

from addon.formats.exchange import Exchange
from addon.inspection import summary
from addon.request.routing import Routing
from addon.response import fallbacks
from addon.response.fallbacks import Fallbacks
from addon.response.stream_rewrite import StreamOptions, StreamRewriter
from addon.runtime import error_pages, replays, stream_end
from tests.support import configure_routing

PROXY_KEY = "client-proxy-key-0123456789"
CONFIG = {
    "provider": {
        "local": {
            "options": {
                "baseURL": "http://127.0.0.1:8000/v1",
                "proxy": {
                    "models": {"local-model": "gemini-2.5-flash", "local-b": "gemini-2.0-flash"},
                    "fallbacks": {"local-model": ["local-b", "local-c"]},
                },
            },
            "models": {"local-model": {}, "local-b": {}, "local-c": {}},
        }
    }
}


def client_request(model: str = "local-model", stream: bool = False) -> http.Request:
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    return http.Request.make(
        "POST",
        "http://127.0.0.1:8000/v1/chat/completions",
        json.dumps(body).encode(),
        {"content-type": "application/json", "authorization": f"Bearer {PROXY_KEY}"},
    )


def routed_flow(status: int = 503, fallback_names: tuple[str, ...] = ("local-b", "local-c")) -> http.HTTPFlow:
    """A live flow as routing and the upstream left it: asked for local-model, got `status`."""
    flow = tflow.tflow(live=True, resp=True)
    flow.response = http.Response.make(
        status, b'[{"error": {"code": %d}}]' % status, {"content-type": "application/json", "retry-after": "7"}
    )
    flow.metadata["llm"] = Exchange(
        client_model="local-model",
        upstream_model="gemini-2.5-flash",
        api_base="http://upstream.test/",
        key="AIza…00",
        fallbacks=list(fallback_names),
        repairs=["first target's repair"],
    )
    return flow


@pytest.mark.parametrize(
    "status,expected",
    [
        (429, True),
        (500, True),
        (503, True),
        (504, True),
        (200, False),
        (400, False),
        (401, False),
        (404, False),
        (413, False),
    ],
)
def test_retryable(status, expected):
    assert fallbacks.retryable(status) is expected


def test_attempt_record_has_a_status_or_an_error():
    meta = Exchange(upstream_model="gemini-2.5-flash", api_base="http://upstream.test/")
    ok = fallbacks.attempt_record(meta, "local-model", 503)
    assert ok["model"] == "local-model" and ok["upstream_model"] == "gemini-2.5-flash" and ok["status"] == 503
    assert "error" not in ok and isinstance(ok["t"], float)
    failed = fallbacks.attempt_record(meta, "local-model", "Connect call failed")
    assert failed["error"] == "Connect call failed" and "status" not in failed


def test_replay_request_asks_for_the_fallback_and_keeps_the_rest():
    original = client_request()
    request = fallbacks.replay_request(original, "local-b")
    body = json.loads(request.content)
    assert body == {"model": "local-b", "stream": False, "messages": [{"role": "user", "content": "hi"}]}
    assert request.headers["content-length"] == str(len(request.content))
    assert request.headers["authorization"] == f"Bearer {PROXY_KEY}"  # routing checks it like any request's
    assert json.loads(original.content)["model"] == "local-model"  # the original stays for the next attempt


def test_an_attempt_is_a_new_flow_that_answers_as_the_client_asked():
    flow = routed_flow()
    attempt = fallbacks.make_attempt(flow, client_request(), "local-c", 2)
    assert attempt.id != flow.id and attempt.client_conn.id != flow.client_conn.id  # never writes to the client
    assert Exchange.of(attempt) == Exchange(fallback_of=flow.id, attempt=2, client_model="local-model")
    assert attempt.is_replay == "request" and attempt.response is None and not attempt.live
    assert json.loads(attempt.request.content)["model"] == "local-c"


def test_whole_response_has_a_length_instead_of_chunks():
    streamed = http.Response.make(
        200, b"data: {}\n\ndata: [DONE]\n\n", {"content-type": "text/event-stream", "transfer-encoding": "chunked"}
    )
    whole = error_pages.whole_response(streamed)
    assert "transfer-encoding" not in whole.headers and whole.headers["content-length"] == "24"
    assert whole.content == streamed.content and "transfer-encoding" in streamed.headers


def test_outcome_of_an_attempt():
    attempt = fallbacks.make_attempt(routed_flow(), client_request(), "local-b", 1)
    attempt.response = http.Response.make(400, b"{}")
    Exchange.of(attempt).error = "The model name 'local-b' is unknown."
    assert fallbacks.outcome(attempt) == "not sent: The model name 'local-b' is unknown."  # routing refused it
    Exchange.of(attempt).key = "AIza…00"
    assert fallbacks.outcome(attempt) == 400
    attempt.error = Error("Connection closed")
    Exchange.of(attempt).error = None
    assert fallbacks.outcome(attempt) == "Connection closed"  # a cut answer is no answer


# Routing's share: the original request, kept in the record but never saved, and the client's name for attempts.


@pytest.fixture
def routing_ctx(tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "AIzaSy-test-key-000000000000")
    monkeypatch.setenv("PROXY_API_KEY", PROXY_KEY)
    routing, addon = Routing(), Fallbacks()
    with taddons.context(routing, addon) as tctx:
        configure_routing(tctx, routing, CONFIG, tmp_path)
        yield routing, addon


def request_flow(model: str) -> http.HTTPFlow:
    flow = tflow.tflow(live=True)
    flow.request = client_request(model)
    return flow


def test_routing_keeps_the_original_request_only_for_models_with_fallbacks(routing_ctx):
    routing, _ = routing_ctx
    with_fallbacks, without = request_flow("local-model"), request_flow("local-b")
    routing.request(with_fallbacks)
    routing.request(without)
    assert Exchange.of(with_fallbacks).fallbacks == ["local-b", "local-c"]
    original = Exchange.of(with_fallbacks).original
    assert json.loads(original.content)["model"] == "local-model"
    assert original.headers["authorization"] == f"Bearer {PROXY_KEY}"
    saved = with_fallbacks.get_state()["metadata"]  # what -w files, flow.copy() and mitmweb's revert hold
    assert PROXY_KEY not in json.dumps(saved, default=str) + repr(with_fallbacks.metadata)
    assert Exchange.of(without).original is None


def test_an_attempt_is_routed_for_the_fallback_and_named_as_the_client_asked(routing_ctx):
    routing, _ = routing_ctx
    attempt = fallbacks.make_attempt(routed_flow(), client_request(), "local-b", 1)
    attempt.live = True
    routing.request(attempt)
    meta = Exchange.of(attempt)
    assert attempt.response is None  # the client's proxy key came along
    assert meta.client_model == "local-model" and meta.upstream_model == "gemini-2.0-flash"
    assert json.loads(attempt.request.content)["model"] == "gemini-2.0-flash"


# The loop, with `run` scripted.


class Scripted(Fallbacks):
    """Each attempt gets the next scripted answer: a status, an error text, or None (routing refused it)."""

    def __init__(self, *answers: int | str | None) -> None:
        self.answers, self.asked = list(answers), []

    async def run(self, attempt: http.HTTPFlow, flow: http.HTTPFlow) -> None:
        model = json.loads(attempt.request.content)["model"]
        self.asked.append(model)
        answer, meta = self.answers.pop(0), Exchange.of(attempt)
        if answer is None:
            attempt.response = http.Response.make(400, b"{}")
            meta.error = f"{model} is unknown"
            return
        meta.key, meta.api_base, meta.repairs = "AIza…00", "http://b.test/", []
        meta.upstream_model = f"upstream-{model}"
        if isinstance(answer, str):
            attempt.error, meta.error = Error(answer), answer
            return
        attempt.response = http.Response.make(answer, b"answer from %s" % model.encode(), {"retry-after": "9"})
        meta.answer = {"content": f"answer from {model}"}
        meta.error = None if answer < 400 else f"upstream {answer}"


@pytest.fixture
def loop_ctx(routing_ctx, monkeypatch):
    monkeypatch.setattr(replays, "client_gone", lambda flow: False)
    return routing_ctx[0]


def hook(addon: Fallbacks, routing: Routing, flow: http.HTTPFlow, name: str = "response") -> None:
    """Call the hook as mitmproxy does: await what it returns, if anything."""
    Exchange.of(flow).original = client_request()
    returned = getattr(addon, name)(flow)
    if returned is not None:
        asyncio.run(returned)


def test_the_first_answer_that_is_not_retryable_goes_to_the_client(loop_ctx):
    flow, addon = routed_flow(503), Scripted(200, 200)
    hook(addon, loop_ctx, flow)
    meta = Exchange.of(flow)
    assert addon.asked == ["local-b"]
    assert flow.response.status_code == 200 and flow.response.content == b"answer from local-b"
    assert flow.response.headers["content-length"] == str(len(b"answer from local-b"))
    assert meta.answered_by == "local-b" and meta.upstream_model == "upstream-local-b"
    assert meta.client_model == "local-model" and meta.error is None and meta.repairs == []
    assert [(a["model"], a.get("status")) for a in meta.attempts] == [("local-model", 503), ("local-b", 200)]
    assert Exchange.of(flow).original is None  # freed


def test_retryable_answers_move_on_and_the_last_error_wins(loop_ctx):
    flow, addon = routed_flow(429), Scripted(503, 429)
    hook(addon, loop_ctx, flow)
    meta = Exchange.of(flow)
    assert addon.asked == ["local-b", "local-c"]
    assert flow.response.status_code == 429 and flow.response.headers["retry-after"] == "9"
    assert meta.answered_by == "local-c" and meta.error == "upstream 429"
    assert [a.get("status") for a in meta.attempts] == [429, 503, 429]


def test_attempts_without_an_answer_leave_the_clients_own_error(loop_ctx):
    flow, addon = routed_flow(503), Scripted(None, "Connect call failed")
    hook(addon, loop_ctx, flow)
    meta = Exchange.of(flow)
    assert flow.response.status_code == 503 and meta.answered_by is None  # responses reshapes it as usual
    assert [a.get("error") for a in meta.attempts] == [None, "not sent: local-b is unknown", "Connect call failed"]


@pytest.mark.parametrize("status", [200, 400, 404])
def test_answers_that_are_not_retryable_are_left_alone(loop_ctx, status):
    flow, addon = routed_flow(status), Scripted()
    hook(addon, loop_ctx, flow)
    assert flow.response.status_code == status and Exchange.of(flow).attempts == []


def test_no_fallback_for_attempts_streams_or_flows_without_fallbacks(loop_ctx):
    attempt, streamed, plain = routed_flow(503), routed_flow(503), routed_flow(503, ())
    Exchange.of(attempt).fallback_of = "some-flow-id"
    streamed.response.stream = True
    addon = Scripted()
    for flow in (attempt, streamed, plain):
        hook(addon, loop_ctx, flow)
        assert Exchange.of(flow).original is None  # freed all the same
        assert flow.response.status_code == 503 and flow.response.content == b'[{"error": {"code": 503}}]'
        assert Exchange.of(flow).answered_by is None  # its own answer stays
    assert Exchange.of(attempt).attempts == [] and Exchange.of(streamed).attempts == []
    assert addon.asked == []


def test_no_fallback_while_shutting_down(loop_ctx):
    flow, addon = routed_flow(), Scripted()
    flow.response, flow.error = None, Error("killed")
    Exchange.of(flow).shutdown = True
    hook(addon, loop_ctx, flow, "error")
    assert addon.asked == [] and Exchange.of(flow).attempts == []


# The error page and the comment line.


def test_a_fallbacks_answer_to_a_failed_flow_is_its_response_whole(loop_ctx):
    flow, addon = routed_flow(503), Scripted(200)
    flow.response, flow.error = None, Error("Connection refused")
    hook(addon, loop_ctx, flow, "error")
    assert flow.response.status_code == 200 and flow.response.content == b"answer from local-b"
    assert "transfer-encoding" not in flow.response.headers and flow.response.headers["content-length"] == "19"
    assert Exchange.of(flow).answered_by == "local-b"  # responses.py's error hook keeps it (no error page)


def test_comment_line_tells_attempts():
    original = Exchange(
        client_model="local-model",
        upstream_model="gemini-2.0-flash",
        attempts=[
            {"upstream_model": "gemini-2.5-flash", "status": 503},
            {"upstream_model": "gemini-2.0-flash", "status": 200},
        ],
    )
    assert summary.comment_line(original) == (
        "local-model -> gemini-2.0-flash | tried gemini-2.5-flash 503, gemini-2.0-flash 200"
    )
    attempt = Exchange(client_model="local-model", upstream_model="gemini-2.0-flash", fallback_of="abc", attempt=1)
    assert summary.comment_line(attempt) == "fallback attempt 1 for abc | local-model -> gemini-2.0-flash"


def test_an_attempt_asks_about_the_client_waiting_for_it():
    from mitmproxy.connection import ConnectionState

    original = routed_flow()
    attempt = fallbacks.make_attempt(original, client_request(), "local-b", 1)
    replays.waiting[attempt.id] = original
    try:
        original.client_conn.state = ConnectionState.OPEN
        assert not replays.client_gone(attempt)
        original.client_conn.state = ConnectionState.CAN_WRITE  # it sent its FIN: mitmproxy takes it as gone
        assert replays.client_gone(attempt)
    finally:
        del replays.waiting[attempt.id]


# Asking once more for an empty answer (translate_retry_empty_answer): the same machinery, the same name.

EMPTY_COMPLETION = {
    "id": "x",
    "object": "chat.completion",
    "model": "local-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": None}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 4211, "completion_tokens": 0, "total_tokens": 4211},
}
EMPTY_EVENTS = [
    b'data: {"id":"x","object":"chat.completion.chunk","model":"gemini-2.5-flash","choices":[{"index":0,'
    b'"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}\n\n',
    b"data: [DONE]\n\n",
]


@pytest.fixture
def retry_ctx(routing_ctx, monkeypatch):
    routing, addon = routing_ctx
    monkeypatch.setattr(replays, "client_gone", lambda flow: False)
    written: list[bytes] = []
    monkeypatch.setattr(stream_end, "finish", lambda flow, data: written.append(data) or True)
    ctx.options.update(translate_retry_empty_answer=True)
    return routing, written


def empty_flow(stream: bool) -> http.HTTPFlow:
    flow = routed_flow(200, ())
    if not stream:
        flow.response.content = json.dumps(EMPTY_COMPLETION).encode()
        return flow
    rewriter = StreamRewriter(StreamOptions("local-model", False, False, 1 << 20, hold_empty=True))
    for piece in [*EMPTY_EVENTS, b""]:
        rewriter(piece)
    flow.response.stream = rewriter
    return flow


def test_routing_keeps_every_original_when_empty_answers_may_be_asked_again(routing_ctx):
    routing, _ = routing_ctx
    ctx.options.update(translate_retry_empty_answer=True)
    flow = request_flow("local-b")  # no fallbacks
    routing.request(flow)
    assert json.loads(Exchange.of(flow).original.content)["model"] == "local-b"


def test_an_empty_answer_is_asked_for_once_more_under_the_same_name(retry_ctx):
    routing, _ = retry_ctx
    flow, addon = empty_flow(stream=False), Scripted(200)
    hook(addon, routing, flow)
    meta = Exchange.of(flow)
    assert addon.asked == ["local-model"]
    assert flow.response.content == b"answer from local-model" and meta.answered_by == "local-model"
    assert [(a.get("status"), a.get("empty")) for a in meta.attempts] == [(200, True), (200, None)]


def test_an_answer_with_text_or_with_the_option_off_is_not_asked_again(retry_ctx):
    routing, _ = retry_ctx
    full, addon = empty_flow(stream=False), Scripted()
    full.response.content = full.response.content.replace(b'"content": null', b'"content": "Done."')
    hook(addon, routing, full)
    ctx.options.update(translate_retry_empty_answer=False)
    hook(addon, routing, empty_flow(stream=False))
    assert addon.asked == [] and Exchange.of(full).attempts == []


def test_a_held_empty_stream_gets_the_retrys_whole_stream_after_its_headers(retry_ctx):
    routing, written = retry_ctx
    flow, addon = empty_flow(stream=True), Scripted(200)
    hook(addon, routing, flow)
    assert written == [b"answer from local-model"]  # the first answer's events never went out
    assert flow.response.stream is False and flow.response.content == b"answer from local-model"
    assert Exchange.of(flow).answered_by == "local-model"


def test_when_the_retry_fails_the_held_first_answer_goes_out(retry_ctx):
    routing, written = retry_ctx
    flow, addon = empty_flow(stream=True), Scripted(503)
    hook(addon, routing, flow)
    assert written == [b"".join(EMPTY_EVENTS).replace(b"gemini-2.5-flash", b"local-model")]
    assert Exchange.of(flow).answered_by is None


def test_only_live_compatible_streams_are_held_and_only_with_the_option(retry_ctx, monkeypatch):
    monkeypatch.setattr(stream_end, "enabled", lambda: True)
    compatible, native, attempt = routed_flow(200, ()), routed_flow(200, ()), routed_flow(200, ())
    Exchange.of(native).api = "gemini"
    Exchange.of(attempt).fallback_of = "some-flow-id"
    for flow in (compatible, native, attempt):
        Fallbacks().responseheaders(flow)
    assert Exchange.of(compatible).hold_empty is True and Exchange.of(native).hold_empty is False
    assert Exchange.of(attempt).hold_empty is False
    ctx.options.update(translate_retry_empty_answer=False)
    off = routed_flow(200, ())
    Fallbacks().responseheaders(off)
    assert Exchange.of(off).hold_empty is False
