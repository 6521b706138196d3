"""Routing's hooks called directly: local endpoints, validation, resolution, rewriting, options."""

import asyncio
import json
import logging
from concurrent.futures import Future

import pytest
from mitmproxy import exceptions, http
from mitmproxy.addonmanager import Loader
from mitmproxy.test import taddons, tflow

from addon.formats import litellm_bridge
from addon.formats.exchange import Exchange
from addon.request import routing, upstream_request
from addon.request.routing import Routing
from tests.support import configure_routing

CONFIG = {
    "$schema": "https://opencode.ai/config.json",
    "provider": {
        "local": {
            "options": {
                "baseURL": "http://127.0.0.1:8000/v1",
                "proxy": {"models": {"local-model": "gemini-2.5-flash"}},
            },
            "models": {"local-model": {}},
        }
    },
}


@pytest.fixture
def addon_ctx(tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "AIzaSy-test-key-000000000000")
    addon = Routing()
    with taddons.context(addon) as tctx:
        configure_routing(tctx, addon, CONFIG, tmp_path)
        yield addon, tctx


def chat_flow(body: dict | bytes, path: str = "/v1/chat/completions"):
    flow = tflow.tflow(live=True)
    flow.client_conn.sockname = ("127.0.0.1", 8000)
    flow.request.method, flow.request.path = "POST", path
    flow.request.content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return flow


def test_chat_is_rewritten_for_the_upstream(addon_ctx):
    addon, _ = addon_ctx
    flow = chat_flow({"model": "local-model", "messages": [{"role": "user", "content": "hi"}], "x_extra": 1})
    addon.request(flow)
    body = json.loads(flow.request.content)
    assert flow.response is None
    assert flow.request.url == "http://upstream.test/v1beta/openai/chat/completions"
    assert body["model"] == "gemini-2.5-flash" and body["messages"][0]["content"] == "hi"
    assert flow.request.headers["authorization"] == "Bearer AIza...00"  # the flow only ever holds the mask
    assert Exchange.of(flow).litellm_model == "openai/gemini-2.5-flash"


def test_defaults_are_off_unless_set(addon_ctx):
    addon, tctx = addon_ctx
    flow = chat_flow({"model": "local-model", "messages": [{"role": "user", "content": "hi"}]})
    addon.request(flow)
    assert "temperature" not in json.loads(flow.request.content)
    tctx.configure(addon, translate_default_temperature="0.7", translate_default_max_tokens=1000)
    flow = chat_flow({"model": "local-model", "messages": [{"role": "user", "content": "hi"}]})
    addon.request(flow)
    body = json.loads(flow.request.content)
    assert body["temperature"] == 0.7 and body["max_tokens"] == 1000


@pytest.mark.parametrize("text", ["warm", "3", "-1"])
def test_bad_temperature_is_refused(addon_ctx, text):
    addon, tctx = addon_ctx
    with pytest.raises(exceptions.OptionsError, match="translate_default_temperature"):
        tctx.configure(addon, translate_default_temperature=text)


def test_parse_temperature():
    assert routing.parse_temperature("") is None and routing.parse_temperature("0") == 0.0


def test_health_and_models(addon_ctx):
    addon, _ = addon_ctx
    flow = tflow.tflow(live=True)
    flow.request.path = "/health"
    addon.request(flow)
    assert json.loads(flow.response.content)["models"] == 1
    flow = tflow.tflow(live=True)
    flow.request.path = "/v1/models"
    addon.request(flow)
    assert [m["id"] for m in json.loads(flow.response.content)["data"]] == ["local-model"]


def test_bad_body_is_answered_locally(addon_ctx):
    addon, _ = addon_ctx
    flow = chat_flow(b"{nope")
    addon.request(flow)
    assert flow.response.status_code == 400
    assert json.loads(flow.response.content)["error"]["code"] == "invalid_json"


def test_options_survive_a_script_reload(addon_ctx):
    """mitmproxy keeps option values on reload only when the declaration (help text included) is unchanged."""
    addon, tctx = addon_ctx
    tctx.configure(addon, translate_repair_schemas=False, translate_max_body=1234, translate_default_temperature="0.5")
    Routing().load(Loader(tctx.master))  # the declarations a reloaded script makes
    assert tctx.options.translate_repair_schemas is False
    assert tctx.options.translate_max_body == 1234 and tctx.options.translate_default_temperature == "0.5"


@pytest.mark.parametrize(
    "address",
    [
        "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions",
        "http://127.0.0.1:8080/v1/embeddings?x=1",
        "https://[::1]/v1/chat/completions",
    ],
)
def test_parsed_url_is_what_the_url_setter_would_set(address):
    expected, flow = tflow.tflow(), tflow.tflow()
    expected.request.url = address
    flow.request.scheme, flow.request.host, flow.request.port, flow.request.path = upstream_request.parsed_url(address)
    assert (flow.request.scheme, flow.request.host, flow.request.port, flow.request.path) == (
        expected.request.scheme,
        expected.request.host,
        expected.request.port,
        expected.request.path,
    )
    assert flow.request.headers == expected.request.headers


HI = [{"role": "user", "content": "hi"}]


def test_forwarded_requests_carry_the_hop_mark_and_marked_ones_are_refused(addon_ctx):
    addon, _ = addon_ctx
    flow = chat_flow({"model": "local-model", "messages": HI})
    addon.request(flow)
    mark = flow.request.headers["x-translation-proxy-hop"]
    assert mark.startswith(addon.instance) and "provider=local" in mark and "model=local-model" in mark
    # The same request arriving at any translation proxy (this one, or a replica sharing its config) is a loop.
    for receiver in (addon, Routing()):
        receiver.watch = addon.watch
        looped = chat_flow({"model": "gemini-2.5-flash", "messages": HI})
        looped.request.headers["x-translation-proxy-hop"] = mark
        receiver.request(looped)
        error = json.loads(looped.response.content)["error"]
        assert looped.response.status_code == 508 and error["code"] == "loop_detected"
        assert "provider 'local'" in error["message"] and "'local-model'" in error["message"]
        assert "options.proxy" in error["message"] and "127.0.0.1:8000" in error["message"]
        assert looped.request.host == "127.0.0.1"  # answered here, not sent on


def test_passthrough_carries_the_hop_mark(addon_ctx):
    addon, _ = addon_ctx
    flow = chat_flow({"input": "x"}, path="/v1/embeddings")
    addon.request(flow)
    assert flow.response is None and flow.request.headers["x-translation-proxy-hop"].startswith(addon.instance)


@pytest.mark.parametrize(
    ("path", "method", "body", "status"),
    [
        ("/health", "GET", b"", 200),
        ("/v1/models", "GET", b"", 200),
        ("/v1/chat/completions", "POST", b"{nope", 400),
        ("/v1/chat/completions", "GET", b"", 405),
    ],
)
def test_answers_of_the_proxy_itself_name_the_proxy(addon_ctx, path, method, body, status):
    """mitmdump's line for them reads `GET http://127.0.0.1:8000/health << 200`, not the reverse target's URL."""
    addon, _ = addon_ctx
    flow = chat_flow(body, path=path)
    flow.request.method = method
    flow.request.url = "https://generativelanguage.googleapis.com" + path  # as reverse mode leaves it
    addon.request(flow)
    assert flow.response.status_code == status
    assert flow.request.pretty_url == "http://127.0.0.1:8000" + path


def test_spaces_in_provider_ids(addon_ctx, tmp_path):
    addon, tctx = addon_ctx
    config = {
        "provider": {"KTDS Model": {"options": {"baseURL": "https://ktds.test/v1", "apiKey": "ktds-key-00000000"}}}
    }
    (tmp_path / "ktds.json").write_text(json.dumps(config))
    tctx.configure(addon, translate_config=str(tmp_path / "ktds.json"))
    flow = chat_flow({"model": "KTDS Model/gemini-3-flash-preview", "messages": HI})
    addon.request(flow)
    assert flow.response is None and flow.request.url == "https://ktds.test/v1/chat/completions"
    assert json.loads(flow.request.content)["model"] == "gemini-3-flash-preview"
    assert Exchange.of(flow).key == "ktds...00"


def test_no_key_is_said_in_the_flow_and_the_log(addon_ctx, monkeypatch, caplog):
    addon, tctx = addon_ctx
    monkeypatch.delenv("GEMINI_API_KEY")
    tctx.configure(addon, translate_api_base="http://gateway.test/v1/")
    flow = chat_flow({"model": "local-model", "messages": HI})
    with caplog.at_level(logging.INFO):
        addon.request(flow)
    meta = Exchange.of(flow)
    assert "authorization" not in flow.request.headers
    assert meta.key == "no key for gateway.test"
    assert meta.key_hint == "The proxy sent no key to gateway.test: set GEMINI_API_KEY."
    assert "local-model: no key for gateway.test; set GEMINI_API_KEY." in caplog.text


def test_route_table_is_logged_when_running_and_on_reload(addon_ctx, caplog, tmp_path):
    addon, tctx = addon_ctx
    with caplog.at_level(logging.INFO):
        addon.running()
    table = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Routes from")]
    assert (
        len(table) == 1
        and "  local-model -> gemini-2.5-flash @ upstream.test, key GEMINI_API_KEY (AIza...00)" in table[0]
    )
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    caplog.clear()
    placeholder = {
        "provider": {
            "p": {"options": {"baseURL": "https://p.test/v1", "apiKey": "your-api-key-here"}, "models": {"m": {}}}
        }
    }
    (tmp_path / "opencode.json").write_text(json.dumps(placeholder))
    addon.watch.stamp = None  # as if the file changed since the last look
    with caplog.at_level(logging.INFO):
        addon.request(chat_flow({"model": "m", "messages": HI}))
    assert "m -> m @ p.test, key provider.p.options.apiKey (your...re)" in caplog.text
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("looks like a placeholder" in w for w in warnings), warnings


def test_a_compatible_flow_records_the_cache_price_for_its_cached_tokens(addon_ctx):
    addon, _ = addon_ctx
    flow = chat_flow({"model": "local-model", "messages": [{"role": "user", "content": "hi"}]})
    addon.request(flow)
    meta = Exchange.of(flow)
    # gemini-2.5-flash in litellm's table: cached prompt tokens cost a fraction of the others.
    assert meta.price_cached is not None and 0 < meta.price_cached < meta.price_in


# ---------------------------------------------------------------- litellm's import, off the event loop


@pytest.fixture
def litellm_importing(monkeypatch):
    """litellm_bridge as it is while its import thread still runs: a future nobody has resolved yet."""
    pending: Future = Future()
    monkeypatch.setattr(litellm_bridge, "_future", pending)
    return pending


def test_warm_up_health_and_models_do_not_wait_for_litellm(addon_ctx, litellm_importing):
    addon, _ = addon_ctx
    answers = {}
    for path in ("/health", "/v1/models"):
        flow = tflow.tflow(live=True)
        flow.request.method, flow.request.path = "GET", path
        assert addon.request(flow) is None and flow.response.status_code == 200
        answers[path] = json.loads(flow.response.content)
    assert answers["/health"]["litellm"] == "loading" and answers["/v1/models"]["data"]
    litellm_importing.set_exception(ImportError("broken"))
    flow = tflow.tflow(live=True)
    flow.request.method, flow.request.path = "GET", "/health"
    addon.request(flow)
    assert json.loads(flow.response.content)["litellm"] == "failed"


def test_warm_up_a_chat_request_waits_for_litellm_not_the_loop(addon_ctx, litellm_importing):
    addon, _ = addon_ctx
    flow = chat_flow({"model": "local-model", "messages": [{"role": "user", "content": "hi"}]})

    async def scenario():
        waiting = asyncio.ensure_future(addon.request(flow))
        await asyncio.sleep(0.05)
        assert not waiting.done() and flow.request.host != "upstream.test"  # nothing resolved yet
        import litellm

        litellm_importing.set_result(litellm)
        await asyncio.wait_for(waiting, 5)

    asyncio.run(scenario())
    assert flow.response is None and flow.request.url == "http://upstream.test/v1beta/openai/chat/completions"
    assert json.loads(flow.request.content)["model"] == "gemini-2.5-flash"


def test_warm_up_failed_import_answers_503_instead_of_forwarding(addon_ctx, litellm_importing):
    addon, _ = addon_ctx
    flow = chat_flow({"model": "local-model", "messages": []})
    litellm_importing.set_exception(ImportError("No module named 'litellm'"))

    async def scenario():
        await addon.request(flow)

    asyncio.run(scenario())
    assert flow.response.status_code == 503
    assert b"importing litellm failed: No module named 'litellm'" in flow.response.content
    assert flow.request.host != "upstream.test"


def routed_keeping_the_client_request(addon_ctx, sent: dict) -> tuple[http.HTTPFlow, dict]:
    """`sent` through ClientRequest then routing, as proxy.py orders them: the flow and the client request kept."""
    from addon.request.client_request import ClientRequest

    addon, tctx = addon_ctx
    keeper = ClientRequest()
    tctx.master.addons.add(keeper)
    flow = chat_flow(sent)
    keeper.request(flow)
    addon.request(flow)
    return flow, Exchange.of(flow).client_request


def test_the_kept_client_body_is_a_patch_of_the_forwarded_one(addon_ctx):
    from addon.request.client_request import complete, whole

    sent = {"model": "local-model", "messages": [{"role": "user", "content": "x" * 100_000}], "stream": False}
    flow, stored = routed_keeping_the_client_request(addon_ctx, sent)
    assert "body" not in stored and len(json.dumps(stored["body_patch"]["ops"])) < 100  # not the 100 kB again
    assert not complete(stored)  # a patch is sent only once made whole
    rebuilt = whole(stored, flow.request.raw_content)
    assert complete(rebuilt) and json.loads(rebuilt["body"]) == sent


TOOLS = [
    {
        "type": "function",
        "function": {"name": "read", "parameters": {"$schema": "s", "type": "object", "additionalProperties": False}},
    }
]


def test_a_raw_history_is_not_read_again_to_keep_the_client_body(addon_ctx, monkeypatch):
    """The patch of a body whose messages routing forwarded as they came compares only the fields around them
    (the Gemini repairs changed its tools): reading a 1 MB history twice cost ~35 ms of the 1 MB benchmark row."""
    from addon.formats import kept_body
    from addon.request.client_request import whole

    def read_whole(*args):
        raise AssertionError("kept_body.make read the whole body")

    monkeypatch.setattr(kept_body, "make", read_whole)
    sent = {"model": "local-model", "messages": [{"role": "user", "content": "x" * 100_000}], "tools": TOOLS}
    flow, stored = routed_keeping_the_client_request(addon_ctx, sent)
    assert b'"$schema"' not in flow.request.content and "body" not in stored
    assert json.loads(whole(stored, flow.request.raw_content)["body"]) == sent


def test_a_history_a_repair_decoded_is_compared_whole(addon_ctx, monkeypatch):
    """A repair that decodes the messages (a thought signature restored into them) leaves no raw history to share:
    the patch is made from both whole bodies, and still gives the client's back."""
    from addon.formats import kept_body
    from addon.request.client_request import whole

    made = []
    monkeypatch.setattr(kept_body, "make", lambda *a, make=kept_body.make: made.append(1) or make(*a))
    monkeypatch.setattr(upstream_request.thought_signatures, "may_restore", lambda *a: True)
    sent = {"model": "local-model", "messages": [{"role": "user", "content": "x" * 100_000}], "tools": TOOLS}
    flow, stored = routed_keeping_the_client_request(addon_ctx, sent)
    assert made and "body" not in stored
    assert json.loads(whole(stored, flow.request.raw_content)["body"]) == sent
