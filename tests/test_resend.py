"""llm.client.copy and llm.resend (request/resend.py): a new flow holding a chat flow's client request."""

from __future__ import annotations

import json

from mitmproxy.test import taddons, tflow

from addon.formats.exchange import Exchange
from addon.request.resend import Resend, client_flow

BODY = json.dumps({"model": "local-model", "messages": [{"role": "user", "content": "hi"}]}).encode()


def routed_flow(**extra):
    flow = tflow.tflow(resp=True)
    flow.request.path = "/v1beta/openai/chat/completions"
    stored = {"method": "POST", "path": "/v1/chat/completions", "headers": [["content-type", "application/json"]]}
    flow.metadata["llm"] = Exchange(
        endpoint="POST /v1/chat/completions", client_request=stored | {"body": BODY} | extra
    )
    flow.comment, flow.marked = "local-model -> gemini-2.5-flash", ":wrench:"
    return flow


def test_the_new_flow_is_the_client_request_unsent():
    original = routed_flow()
    made = client_flow(original)
    assert made.id != original.id and made.response is None and made.is_replay is None and not made.live
    assert made.request.path == "/v1/chat/completions" and made.request.raw_content == BODY
    assert made.metadata == {
        "llm": Exchange(client_request=Exchange.of(original).client_request, resend_of=original.id)
    }
    assert made.comment.startswith(f"client request of {original.id}") and made.marked == ""


def test_a_cut_or_missing_client_request_makes_nothing(caplog):
    assert client_flow(routed_flow(truncated=99)) is None
    with taddons.context(Resend()) as tctx:
        tctx.master.commands.call("llm.client.copy", [tflow.tflow()])
    assert "no client request kept" in caplog.text


def test_the_commands_are_registered():
    with taddons.context(Resend()) as tctx:
        assert {"llm.client.copy", "llm.resend"} <= set(tctx.master.commands.commands)
