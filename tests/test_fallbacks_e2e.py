"""End to end: a model whose upstream fails (503, 429, refused connection) is answered by its fallback.

One proxy for the module, started as mitm_run.sh starts it, with a proxy key (the attempts carry the client's) and
opencode.json naming fallbacks: local-model (gemini-2.5-flash) falls back to local-b (gemini-2.0-flash), and
dead-model (a provider whose port refuses connections) and hole-model (one that never accepts a connection) fall
back to local-b too. The fake's script markers decide which requests fail: [error:503:1] fails only the first
request with that text.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import io

from tests.conftest import ProxyProcess, free_port, opencode_config, start_proxy
from tests.fake_gemini import FakeGemini
from tests.test_faults_e2e import black_hole  # noqa: F401  (a module fixture: a port that never accepts)

pytestmark = pytest.mark.e2e

KEY = "proxy-key-for-fallback-tests"


def fallback_config(port: int, hole_port: int | None = None) -> dict[str, Any]:
    config = opencode_config(port, {"local-model": "gemini-2.5-flash", "local-b": "gemini-2.0-flash"})
    config["provider"]["local"]["options"]["proxy"]["fallbacks"] = {"local-model": ["local-b"]}
    for name, upstream_port in (("dead", free_port()), ("hole", hole_port)):
        if upstream_port is None:
            continue
        config["provider"][name] = {
            "npm": "@ai-sdk/openai-compatible",
            "name": f"{name}: no answer",
            "options": {
                "baseURL": f"http://127.0.0.1:{upstream_port}/v1",
                "apiKey": "k",
                "proxy": {"fallbacks": {f"{name}-model": ["local-b"]}},
            },
            "models": {f"{name}-model": {"id": "gemini-2.5-pro"}},
        }
    return config


@pytest.fixture(scope="module")
def proxy(fake_gemini: FakeGemini, black_hole: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    port = free_port()
    started = start_proxy(
        fake_gemini,
        tmp_path_factory.mktemp("fallbacks"),
        "--set",
        "translate_connect_timeout=1",
        port=port,
        config=fallback_config(port, black_hole),
        env={"PROXY_API_KEY": KEY},
    )
    yield started
    started.stop()


def chat(
    proxy: ProxyProcess, text: str, model: str = "local-model", stream: bool = False
) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]})
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
    try:
        conn.request(
            "POST", "/v1/chat/completions", body, {"content-type": "application/json", "authorization": f"Bearer {KEY}"}
        )
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def upstream_models(fake: FakeGemini) -> list[str]:
    return [r["body"]["model"] for r in fake.chat_requests()]


@pytest.mark.parametrize("code", [503, 500, 429])
def test_a_failing_first_target_is_answered_by_the_fallback(proxy, fake, code):
    status, headers, body = chat(proxy, f"[error:{code}:1] hello")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["model"] == "local-model"
    assert "You said: [error:" in answer["choices"][0]["message"]["content"]
    assert headers["x-upstream-model"] == "gemini-2.0-flash"
    assert upstream_models(fake) == ["gemini-2.5-flash", "gemini-2.0-flash"]
    # The attempt carried the client's request, not the first target's rewrite: same messages, the upstream key.
    first, second = fake.chat_requests()
    assert first["body"]["messages"] == second["body"]["messages"]
    assert second["headers"]["Authorization"] == f"Bearer {fake.key}"


def test_when_every_target_fails_the_client_gets_the_last_error_with_its_headers(proxy, fake):
    status, headers, body = chat(proxy, "[error:429] busy everywhere")
    assert status == 429
    assert headers["retry-after"] == "7"
    assert json.loads(body)["error"]["type"] == "rate_limit_error"
    assert upstream_models(fake) == ["gemini-2.5-flash", "gemini-2.0-flash"]


def test_a_client_error_is_not_retried(proxy, fake):
    status, _, body = chat(proxy, "[error:400] bad request")
    assert status == 400, body
    assert upstream_models(fake) == ["gemini-2.5-flash"]


def test_a_refused_connection_falls_back_through_the_error_page(proxy, fake):
    status, headers, body = chat(proxy, "nobody home", model="dead-model")
    assert status == 200, body
    assert json.loads(body)["model"] == "dead-model"
    assert headers["content-length"] == str(len(body))
    assert upstream_models(fake) == ["gemini-2.0-flash"]


def test_a_refused_connection_whose_fallback_fails_gets_that_error(proxy, fake):
    status, headers, body = chat(proxy, "[error:503] nobody home, and busy", model="dead-model")
    assert status == 503
    assert json.loads(body)["error"]["message"] == "The model is overloaded. Please try again later."
    assert upstream_models(fake) == ["gemini-2.0-flash"]


def test_a_connect_timeout_falls_back(proxy, fake):
    status, _, body = chat(proxy, "anyone?", model="hole-model")
    assert status == 200, body
    assert json.loads(body)["model"] == "hole-model" and upstream_models(fake) == ["gemini-2.0-flash"]


def test_no_retry_once_the_stream_has_begun(proxy, fake):
    status, _, body = chat(proxy, "cut me [cut]", stream=True)
    assert status == 200
    assert body.rstrip().endswith(b'"code":"upstream_unreachable"}}')  # the stream's own error event
    assert upstream_models(fake) == ["gemini-2.5-flash"]


def test_a_client_that_leaves_during_an_attempt_has_the_attempts_upstream_closed(proxy, fake):
    body = json.dumps(
        {
            "model": "local-model",
            "stream": True,
            "messages": [{"role": "user", "content": "[error:503:1] long [chunks:60:100]"}],
        }
    )
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
    conn.request(
        "POST", "/v1/chat/completions", body, {"content-type": "application/json", "authorization": f"Bearer {KEY}"}
    )
    deadline = time.monotonic() + 5
    while len(fake.chat_requests()) < 2:  # the attempt has reached the upstream: leave now
        assert time.monotonic() < deadline, f"no fallback attempt reached the fake: {fake.chat_requests()}"
        time.sleep(0.05)
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    left = fake.wait_event("disconnect")
    assert left["seq"] == fake.chat_requests()[1]["seq"] and left["text"].startswith("client disconnected mid-stream")


def test_a_streaming_client_gets_the_fallbacks_whole_stream_under_its_name(proxy, fake):
    # 8 chunks 0.1 s apart: the attempt outlives a look of the timeouts, which must not take it for a client gone.
    status, headers, body = chat(proxy, "[error:503:1] stream please [chunks:8:100]", stream=True)
    assert status == 200, body
    assert headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix(b"data: ") for line in body.split(b"\n\n") if line.startswith(b"data: ")]
    assert events[-1] == b"[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["model"] for c in chunks} == {"local-model"}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "".join(f"chunk {n} " for n in range(8))
    assert upstream_models(fake) == ["gemini-2.5-flash", "gemini-2.0-flash"]


def test_saved_flows_record_every_attempt(fake_gemini, fake, tmp_path):
    port = free_port()
    saved = tmp_path / "flows.mitm"
    proxy = start_proxy(
        fake_gemini, tmp_path, "-w", str(saved), port=port, config=fallback_config(port), env={"PROXY_API_KEY": KEY}
    )
    try:
        assert chat(proxy, "[error:503:1] record me")[0] == 200
        assert chat(proxy, "nobody home", model="dead-model")[0] == 200
    finally:
        proxy.stop()
    flows = [f for f in read_flows(saved) if "client_model" in f.metadata.get("llm", {})]  # not /health
    originals = [f for f in flows if "fallback_of" not in f.metadata["llm"]]
    attempts = [f for f in flows if "fallback_of" in f.metadata["llm"]]
    assert len(originals) == len(attempts) == 2

    first = next(f for f in originals if f.metadata["llm"]["client_model"] == "local-model")
    meta = first.metadata["llm"]
    assert [(a["model"], a["upstream_model"], a.get("status")) for a in meta["attempts"]] == [
        ("local-model", "gemini-2.5-flash", 503),
        ("local-b", "gemini-2.0-flash", 200),
    ]
    assert meta["answered_by"] == "local-b" and meta["upstream_model"] == "gemini-2.0-flash"
    assert "record me" in meta["answer"]["content"] and not meta.get("error")
    assert first.response.status_code == 200 and "tried gemini-2.5-flash 503, gemini-2.0-flash 200" in first.comment
    # Every attempt names its original, carries the client's name, and got the answer its original passed on.
    assert sorted(f.metadata["llm"]["fallback_of"] for f in attempts) == sorted(f.id for f in originals)
    for attempt in attempts:
        original = next(f for f in originals if f.id == attempt.metadata["llm"]["fallback_of"])
        assert attempt.comment.startswith(f"fallback attempt 1 for {original.id}")
        assert attempt.metadata["llm"]["client_model"] == original.metadata["llm"]["client_model"]
        assert attempt.metadata["llm"]["upstream_model"] == "gemini-2.0-flash"
        assert attempt.response.status_code == 200 and original.metadata["llm"]["answered_by"] == "local-b"
        assert json.loads(original.response.content)["model"] == original.metadata["llm"]["client_model"]
    # The attempts were made from the client's request as it came, proxy key included: it stays out of the file.
    assert KEY.encode() not in saved.read_bytes() and fake.key.encode() not in saved.read_bytes()

    dead = next(f for f in originals if f.metadata["llm"]["client_model"] == "dead-model")
    tries = dead.metadata["llm"]["attempts"]
    assert tries[0]["upstream_model"] == "gemini-2.5-pro" and "error" in tries[0]
    assert tries[1]["status"] == 200 and dead.response.status_code == 200


def read_flows(path: Path) -> list:
    with path.open("rb") as f:
        return list(io.FlowReader(f).stream())
