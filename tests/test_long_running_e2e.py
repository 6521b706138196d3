"""End to end, for a proxy left running for days: the real upstream model in a header, stored stream bodies cut at
translate_keep_stream_bytes while the client and the annotations keep the whole answer (read back from a -w file
and through mitmweb's HTTP API), and mitmdump holding no finished flow in memory."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import httpx
import openai
import pytest
from mitmproxy import io

from tests.conftest import ProxyProcess
from tests.support import DIRECT

pytestmark = pytest.mark.e2e

BIG = 20_000  # characters in the answer; the fake streams them in 1,000-character chunks
CAP = 3_000  # translate_keep_stream_bytes for these tests


def client(proxy: ProxyProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key="anything", max_retries=0, timeout=30)


def streamed_text(proxy: ProxyProcess, prompt: str) -> str:
    stream = client(proxy).chat.completions.create(
        model="local-model", stream=True, messages=[{"role": "user", "content": prompt}]
    )
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def web_get(proxy: ProxyProcess, path: str):
    request = urllib.request.Request(
        f"http://127.0.0.1:{proxy.web_port}{path}", headers={"authorization": f"Bearer {proxy.web_token()}"}
    )
    with DIRECT.open(request, timeout=30) as response:
        return json.loads(response.read())


def test_the_upstream_model_is_in_a_header_and_the_body_keeps_the_client_name(openai_client):
    raw = openai_client.chat.completions.with_raw_response.create(
        model="local-model", messages=[{"role": "user", "content": "ping"}]
    )
    assert raw.headers["x-upstream-model"] == "gemini-2.5-flash"
    assert raw.parse().model == "local-model"
    with openai_client.chat.completions.with_streaming_response.create(
        model="local-3", stream=True, messages=[{"role": "user", "content": "ping"}]
    ) as streamed:
        assert streamed.headers["x-upstream-model"] == "gemini-3-pro-preview"
        assert {chunk.model for chunk in streamed.parse()} == {"local-3"}


def test_a_stored_stream_is_cut_at_the_cap_and_the_answer_stays_whole_in_the_saved_file(proxy_factory, tmp_path):
    saved = tmp_path / "flows.mitm"
    proxy = proxy_factory("-w", str(saved), "--set", f"translate_keep_stream_bytes={CAP}")
    assert streamed_text(proxy, f"a long one [big:{BIG}]") == ("0123456789" * BIG)[:BIG]
    proxy.stop()
    with saved.open("rb") as f:
        [flow] = [f for f in io.FlowReader(f).stream() if f.request.path.endswith("/chat/completions")]
    meta = flow.metadata["llm"]
    assert len(flow.response.content) <= CAP < BIG and len(meta["upstream_raw"]) <= CAP
    assert meta["body_truncated"] is True
    assert meta["answer"]["content"] == ("0123456789" * BIG)[:BIG]


def test_mitmweb_says_the_stored_body_was_cut(proxy_factory):
    proxy = proxy_factory("--set", f"translate_keep_stream_bytes={CAP}", web=True)
    assert len(streamed_text(proxy, f"a long one [big:{BIG}]")) == BIG
    [flow] = [f for f in web_get(proxy, "/flows") if f["request"]["path"].endswith("/chat/completions")]
    assert flow["response"]["contentLength"] <= CAP
    view = web_get(proxy, f"/flows/{flow['id']}/response/content/{urllib.parse.quote('LLM chat')}.json")
    assert "the stored body was cut at the cap" in view["text"]
    assert "0123456789" * 50 in view["text"].replace("\n", "")  # the whole answer, from the annotations


def census(proxy: ProxyProcess) -> dict:
    """What tests/flow_census.py counts in the proxy process (flows held, finished ones, other connections)."""
    with DIRECT.open(f"{proxy.root_url}/_census", timeout=60) as response:
        return json.loads(response.read())


def test_mitmdump_keeps_no_finished_flow(proxy_factory):
    proxy = proxy_factory("-s", "tests/flow_census.py")
    for n in range(30):
        streamed_text(proxy, f"hello {n}")
    held = census(proxy)
    assert held["finished"] == 0 and held["flows"] <= 1, held  # only the census request itself


# An addon that keeps every chat flow: the census must see each one (the test above would pass nothing else).
LEAK = """
kept = []


class KeepsEveryFlow:
    def response(self, flow):
        if flow.request.path.endswith("/chat/completions"):  # not the start-up's health checks: an exact count
            kept.append(flow)


addons = [KeepsEveryFlow()]
"""


def test_the_census_counts_the_flows_an_addon_keeps(proxy_factory, tmp_path):
    leak = tmp_path / "keeps_every_flow.py"
    leak.write_text(LEAK)
    proxy = proxy_factory("-s", "tests/flow_census.py", "-s", str(leak))
    for n in range(5):
        streamed_text(proxy, f"hello {n}")
    held = census(proxy)
    assert held["finished"] == 5 and held["flows"] == 6, held  # the five answers, and the census request


def stream_on(http: httpx.Client, prompt: str) -> bytes:
    body = {"model": "local-model", "stream": True, "messages": [{"role": "user", "content": prompt}]}
    with http.stream("POST", "/chat/completions", json=body) as response:
        return response.read()  # to the end of the body, so that the connection can carry the next request


@pytest.mark.parametrize(
    "mode",
    [
        pytest.param([], id="default"),
        # Found for issue 25: stream_relay.route() (an opt-in speed patch since issue 23) kept a Route on the
        # upstream's Http1Client that held the HttpStream (so its flow) after the stream was done, until the
        # connection closed or carried another streamed answer. The Route now holds the stream weakly.
        pytest.param(["--set", "translate_speed_patches=true"], id="speed patches on"),
    ],
)
def test_a_connection_kept_open_keeps_no_finished_flow(proxy_factory, mode):
    proxy = proxy_factory("-s", "tests/flow_census.py", *mode)
    with httpx.Client(base_url=proxy.base_url, trust_env=False, timeout=30) as http:
        for n in range(3):  # chunks apart in time: the upstream's reads come one chunk at a time, as in a real stream
            assert b"data: [DONE]" in stream_on(http, f"hello {n} [chunks:4:50]")
        held = census(proxy)
    assert held["open"] == 1, held  # the client's connection, kept open for all three answers
    assert held["finished"] == 0 and held["flows"] <= 1, held
