"""addon/request/client_host.py: mitmproxy keeps the client's Host for the kept client request; the target's goes on."""

from mitmproxy import http
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.test import taddons, tflow

from addon.formats.exchange import Exchange
from addon.request.client_host import ClientHost
from addon.request.client_request import ClientRequest


def test_a_reverse_proxy_keeps_the_clients_host_header():
    addon = ClientHost()
    with taddons.context(Proxyserver(), addon) as tctx:
        tctx.configure(addon, mode=["reverse:https://generativelanguage.googleapis.com"])
        assert not tctx.options.keep_host_header
        addon.running()
        assert tctx.options.keep_host_header


def test_a_regular_proxy_is_left_alone():
    addon = ClientHost()
    with taddons.context(Proxyserver(), addon) as tctx:
        addon.running()
        assert not tctx.options.keep_host_header


def test_the_client_request_keeps_the_clients_host_and_the_target_gets_its_own():
    flow = tflow.tflow()
    flow.request = http.Request.make("POST", "https://generativelanguage.googleapis.com/v1/chat/completions", b"{}")
    flow.request.headers["Host"] = "localhost:8000"  # kept by mitmproxy (keep_host_header), as the client sent it
    kept, host = ClientRequest(), ClientHost()
    with taddons.context(kept, host):
        kept.request(flow)
        host.request(flow)
    assert ["Host", "localhost:8000"] in Exchange.of(flow).client_request["headers"]
    assert flow.request.headers["Host"] == "generativelanguage.googleapis.com"
