"""addon/inspection/client_body.py: the client's request body, as client_request.py keeps it and as older native
flows kept it, reads the same; the tool check of a native flow finds its tools there."""

import gzip

import orjson
from mitmproxy.test import taddons, tflow

from addon.formats.exchange import Exchange
from addon.inspection.client_body import client_body, client_body_cut
from addon.inspection.report import Report

BODY = orjson.dumps(
    {
        "model": "local-model",
        "messages": [{"role": "user", "content": "write it"}],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "write",
                    "parameters": {
                        "type": "object",
                        "properties": {"filePath": {"type": "string"}, "content": {"type": "string"}},
                        "required": ["filePath", "content"],
                    },
                },
            }
        ],
    }
)


def test_kept_request_dict_bytes_and_nothing():
    stored = Exchange.from_state  # the record as a saved flow's plain data reads back
    assert (
        client_body(Exchange(client_request={"method": "POST", "path": "/v1/chat/completions", "body": BODY})) == BODY
    )
    assert client_body(stored({"client_request": BODY})) == BODY  # what the first native-path flows saved
    assert client_body(Exchange(client_request={"method": "GET", "path": "/v1/models"})) is None
    assert client_body(Exchange()) is None and client_body(None) is None
    assert client_body_cut(Exchange(client_request={"body": BODY[:10], "truncated": len(BODY)}))
    assert not client_body_cut(Exchange(client_request={"body": BODY}))
    assert client_body_cut(stored({"client_request": BODY[:10], "client_request_truncated": True}))


def test_a_native_flows_tool_calls_are_checked_against_the_clients_tools():
    """The flow's own request is Gemini's body (no OpenAI `tools`): the check must read the client's request."""
    with taddons.context(Report()):
        flow = tflow.tflow(resp=True)
        flow.request.content = orjson.dumps({"contents": [{"role": "user", "parts": [{"text": "write it"}]}]})
        flow.metadata["llm"] = Exchange(
            client_model="local-model",
            upstream_model="gemini-2.5-flash",
            client_request={"method": "POST", "path": "/v1/chat/completions", "body": BODY},
            answer={"content": "", "tool_calls": [{"id": "c1", "name": "write", "arguments": '{"filePath": "a"}'}]},
        )
        Report().annotate(flow, Exchange.of(flow))
    assert Exchange.of(flow).tool_checks == ["write (c1): missing required field 'content'"]
    assert flow.marked == ":warning:"


def test_a_compressed_client_body_is_not_read_so_the_decoded_request_is():
    """A gzip client's kept body is gzip (replay resends it as it came): the tool check reads the flow's request,
    which routing decoded, and still finds the problem."""
    with taddons.context(Report()):
        flow = tflow.tflow(resp=True)
        flow.request.content = BODY  # what routing forwarded: decoded
        flow.metadata["llm"] = Exchange(
            client_model="local-model",
            upstream_model="gemini-2.5-flash",
            client_request={
                "method": "POST",
                "path": "/v1/chat/completions",
                "headers": [["content-encoding", "gzip"]],
                "body": gzip.compress(BODY),
            },
            answer={"content": "", "tool_calls": [{"id": "c1", "name": "write", "arguments": '{"filePath": "a"}'}]},
        )
        ex = Exchange.of(flow)
        assert client_body(ex) is None
        Report().annotate(flow, ex)
    assert ex.tool_checks == ["write (c1): missing required field 'content'"]
