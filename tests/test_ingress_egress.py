"""The request-side ingress (request/ingress.py), the response-side egress (response/egress.py) and the
"LLM client format" view (inspection/format_view.py), called directly on test flows."""

from __future__ import annotations

import json

import orjson
import pytest
from mitmproxy import http
from mitmproxy.contentviews import Metadata
from mitmproxy.test import taddons, tflow

from addon.formats.exchange import Exchange
from addon.inspection.format_view import ClientFormatView
from addon.request.ingress import Ingress
from addon.response.egress import ClientStream, Egress
from addon.response.responses import Responses


@pytest.fixture
def tctx():
    with taddons.context(Responses(), Egress()) as context:
        context.options.add_option("translate_repair_signatures", bool, True, "")
        context.options.add_option("translate_max_body", int, 1 << 20, "")
        yield context


def client_flow(path: str, body: dict, **headers: str) -> http.HTTPFlow:
    flow = tflow.tflow(live=True)
    flow.request.method, flow.request.path = "POST", path
    flow.request.headers.clear()
    flow.request.headers.update({"content-type": "application/json", **headers})
    flow.request.content = orjson.dumps(body)
    return flow


def test_a_messages_request_becomes_a_chat_request(tctx) -> None:
    body = {"model": "local-3", "max_tokens": 50, "stream": True, "metadata": {"user_id": "u"},
            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    flow = client_flow("/v1/messages?beta=true", body, **{"x-api-key": "proxy-key", "anthropic-beta": "x"})
    Ingress().request(flow)
    chat = json.loads(flow.request.content or b"")
    assert flow.request.path == "/v1/chat/completions" and flow.response is None
    assert chat["messages"] == [{"role": "user", "content": "hi"}] and chat["max_tokens"] == 50
    assert chat["stream_options"] == {"include_usage": True} and "user" not in chat
    assert flow.request.headers["authorization"] == "Bearer proxy-key"  # routing's proxy-key check reads it
    assert "anthropic-beta" not in flow.request.headers
    ex = Exchange.of(flow)
    assert ex.client_format == "anthropic" and ex.client_params == {"tool_names": {}, "stream": True}
    assert ex.client_notes == ["dropped user"]


def test_a_responses_request_becomes_a_chat_request(tctx) -> None:
    body = {"model": "local-3", "input": "hi", "instructions": "brief", "store": False, "prompt_cache_key": "k"}
    flow = client_flow("/responses", body)
    Ingress().request(flow)
    chat = json.loads(flow.request.content or b"")
    assert chat["messages"] == [{"role": "system", "content": "brief"}, {"role": "user", "content": "hi"}]
    assert Exchange.of(flow).client_params["echo"] == {"instructions": "brief", "store": False}  # type: ignore[index]


@pytest.mark.parametrize(
    ("path", "body", "status", "shape"),
    [
        ("/v1/responses", {"model": "m", "input": "x", "previous_response_id": "r"}, 400, "openai"),
        ("/v1/responses", {"model": "m", "input": "x", "tools": [{"type": "file_search"}]}, 400, "openai"),
        ("/v1/messages", {"model": "m", "max_tokens": 5}, 400, "anthropic"),
        ("/v1/messages", {"max_tokens": 5, "messages": []}, 400, "anthropic"),
    ],
)
def test_refusals_come_in_the_clients_shape(tctx, path: str, body: dict, status: int, shape: str) -> None:
    flow = client_flow(path, body)
    Ingress().request(flow)
    assert flow.response is not None and flow.response.status_code == status
    answer = json.loads(flow.response.content or b"")
    assert (
        (answer["type"] == "error" and answer["error"]["type"]) if shape == "anthropic" else answer["error"]["message"]
    )


def test_other_paths_are_left_alone(tctx) -> None:
    flow = client_flow("/v1/chat/completions", {"model": "m", "messages": []})
    before = flow.request.content
    Ingress().request(flow)
    assert flow.request.content == before and Exchange.find(flow) is None


def routed(fmt: str, content_type: str, body: bytes, status: int = 200) -> http.HTTPFlow:
    flow = tflow.tflow(live=True, resp=True)
    flow.request.path = "/v1beta/openai/chat/completions"
    flow.response = http.Response.make(status, body, {"content-type": content_type})
    params = {"tool_names": {}} if fmt == "anthropic" else {"echo": {}, "custom_tools": []}
    flow.metadata["llm"] = Exchange(client_model="local-3", upstream_model="gemini-3-pro-preview", key="k…1",
                                    is_gemini=True, client_format=fmt, client_params=params)  # fmt: skip
    return flow


CHUNK = {"id": "c", "object": "chat.completion.chunk", "model": "gemini-3-pro-preview",
         "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}]}  # fmt: skip


def test_a_stream_is_translated_as_it_passes_and_both_sides_are_kept(tctx) -> None:
    flow = routed("anthropic", "text/event-stream", b"")
    responses, egress = tctx.master.addons.get("responses"), tctx.master.addons.get("egress")
    responses.responseheaders(flow)
    egress.responseheaders(flow)
    stream = flow.response.stream
    assert isinstance(stream, ClientStream)  # and still the rewriter every other addon knows
    sent = stream(b"data: " + orjson.dumps(CHUNK) + b"\n\ndata: [DONE]\n\n") + stream(b"")
    text = b"".join(sent)
    assert text.startswith(b"event: message_start") and text.endswith(
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    responses.response(flow)
    egress.response(flow)
    ex = Exchange.of(flow)
    assert flow.response.content == text and b"chat.completion.chunk" in (ex.chat_response or b"")
    assert ex.answer is not None and ex.answer["content"] == "Hi"


def test_a_cut_stream_gets_the_formats_error_event(tctx) -> None:
    flow = routed("openai_responses", "text/event-stream", b"")
    tctx.master.addons.get("responses").responseheaders(flow)
    tctx.master.addons.get("egress").responseheaders(flow)
    stream = flow.response.stream
    stream(b"data: " + orjson.dumps({**CHUNK, "choices": [{"index": 0, "delta": {"content": "H"}}]}) + b"\n\n")
    event = stream.error_event("Upstream failed: gone", 502, "upstream_unreachable")
    assert b"event: response.failed" in event and event.endswith(b"\n\n") and b"event: error" in event
    assert stream.error_event("again", 502) == b": stream ended\n\n"  # one terminal sequence only


def test_a_whole_answer_is_translated(tctx) -> None:
    completion = {"id": "c", "object": "chat.completion", "created": 1, "model": "local-3",
                  "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hi"}}],
                  "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}  # fmt: skip
    flow = routed("openai_responses", "application/json", orjson.dumps(completion))
    tctx.master.addons.get("egress").response(flow)
    answer = json.loads(flow.response.content or b"")
    assert answer["object"] == "response" and answer["output"][0]["content"][0]["text"] == "Hi"
    assert json.loads(Exchange.of(flow).chat_response or b"") == completion


def test_an_error_is_reshaped_for_anthropic(tctx) -> None:
    body = b'{"error": {"message": "Quota exceeded.", "type": "rate_limit_error", "code": "RESOURCE_EXHAUSTED"}}'
    flow = routed("anthropic", "application/json", body, 429)
    tctx.master.addons.get("egress").response(flow)
    assert json.loads(flow.response.content or b"") == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Quota exceeded."},
    }


def test_the_view_shows_both_sides() -> None:
    flow = routed("anthropic", "application/json", b'{"type": "message", "content": []}')
    ex = Exchange.of(flow)
    ex.client_request = {"method": "POST", "path": "/v1/messages", "headers": [], "body": b'{"model": "local-3"}'}
    ex.chat_response = orjson.dumps({"id": "c", "object": "chat.completion", "model": "local-3",
                                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}}]})  # fmt: skip
    flow.request.content = orjson.dumps(
        {"model": "gemini-3-pro-preview", "messages": [{"role": "user", "content": "x"}]}
    )
    view = ClientFormatView()
    request = view.prettify(flow.request.content, Metadata(flow=flow, http_message=flow.request))
    assert "anthropic request, as the client sent it" in request and "the chat request it became" in request
    answer = view.prettify(flow.response.content or b"", Metadata(flow=flow, http_message=flow.response))
    assert "anthropic answer, as the client received it" in answer and "Hi" in answer.split("─" * 40)[1]
    assert view.render_priority(b"", Metadata(flow=flow)) > 2
    assert view.render_priority(b"", Metadata(flow=tflow.tflow())) < 0


def test_a_replay_is_translated_once_from_the_clients_request(tctx) -> None:
    from addon.request.client_request import ClientRequest
    from addon.request.replay import Replay

    tctx.options.add_option("translate_keep_client_request", int, 1 << 20, "")
    body = {"model": "local-3", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    flow = client_flow("/v1/messages", body, **{"x-api-key": "proxy-key"})
    ClientRequest().request(flow)
    Ingress().request(flow)
    chat = flow.request.content
    ex = Exchange.of(flow)
    assert ex.client_request is not None and ex.client_request["path"] == "/v1/messages"
    assert all(name != "x-api-key" for name, _ in ex.client_request["headers"])  # the key is never stored
    ex.endpoint, ex.key = "POST /v1/chat/completions", "k…1"  # what routing would have recorded
    flow.request.path = "/v1beta/openai/chat/completions"
    flow.is_replay = "request"
    Replay().request(flow)
    assert flow.request.path == "/v1/messages" and json.loads(flow.request.content or b"") == body
    ClientRequest().request(flow)
    Ingress().request(flow)
    assert flow.request.path == "/v1/chat/completions" and flow.request.content == chat
    assert Exchange.of(flow).client_format == "anthropic" and Exchange.of(flow).replay is not None
