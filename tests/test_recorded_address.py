"""Flows read back from a file keep the address they were recorded with (request/recorded_address.py)."""

from __future__ import annotations

from mitmproxy.test import tflow

from addon.request.recorded_address import KEY, RecordedAddress


def recorded_flow():
    """A live flow routed to a gateway, as the proxy leaves it at the end of the request side."""
    flow = tflow.tflow(live=True, resp=True)
    flow.request.headers["Host"] = "127.0.0.1:8000"
    flow.request.url = "https://gateway.example:8443/v1beta/openai/chat/completions"
    return flow


def loaded(flow):
    """The flow as mitmproxy's reverse mode loads it from a file: pointed at today's reverse target."""
    copy = flow.copy()
    copy.live = False
    copy.request.host, copy.request.port = "generativelanguage.googleapis.com", 443
    copy.request.scheme = "https"
    return copy


def test_a_loaded_flow_gets_its_recorded_address_back():
    addon = RecordedAddress()
    flow = recorded_flow()
    addon.request(flow)
    assert flow.metadata[KEY]["host"] == "gateway.example" and flow.metadata[KEY]["port"] == 8443
    back = loaded(flow)
    assert back.request.pretty_url.startswith("https://generativelanguage.googleapis.com/")
    addon.requestheaders(back)
    assert back.request.url == "https://gateway.example:8443/v1beta/openai/chat/completions"
    assert back.request.headers["host"] == "gateway.example:8443"


def test_the_proxys_own_answer_keeps_the_proxys_address():
    addon = RecordedAddress()
    flow = tflow.tflow(live=True, resp=True)
    flow.request.url = "http://127.0.0.1:8000/health"
    flow.server_conn.timestamp_start = None  # nothing was dialled
    addon.request(flow)
    back = loaded(flow)
    addon.requestheaders(back)
    assert back.request.url == "http://127.0.0.1:8000/health"


def test_older_files_fall_back_to_the_upstream_connection_the_flow_made():
    addon = RecordedAddress()
    flow = recorded_flow()
    flow.server_conn.address, flow.server_conn.tls = ("gateway.example", 8443), True
    back = loaded(flow)  # no address kept: written before this addon
    assert KEY not in back.metadata
    addon.requestheaders(back)
    assert back.request.pretty_url == "https://gateway.example:8443/v1beta/openai/chat/completions"
    never = loaded(recorded_flow())
    never.server_conn.timestamp_start = None
    addon.requestheaders(never)  # nothing known: left as mitmproxy loaded it
    assert never.request.host == "generativelanguage.googleapis.com"


def test_live_flows_are_not_moved_and_replays_record_their_new_address():
    addon = RecordedAddress()
    flow = recorded_flow()
    flow.metadata[KEY] = {"scheme": "http", "host": "old.example", "port": 80, "host_header": "old.example"}
    addon.requestheaders(flow)  # live: routing decides where it goes
    assert flow.request.host == "gateway.example"
    flow.is_replay = "request"
    addon.request(flow)
    assert flow.metadata[KEY]["host"] == "gateway.example"
