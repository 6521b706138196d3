"""The native Gemini path end to end: the openai SDK -> the real proxy (mitm_run.sh) -> a strict native fake
Gemini, and Vertex AI with a fake OAuth token endpoint and a service-account file made in the test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from mitmproxy import io as mitmio

from tests.conftest import ProxyProcess, free_port, start_proxy
from tests.fake_gemini import FakeGemini
from tests.fake_gemini_native import KEY, FakeNativeGemini, Reply

pytestmark = pytest.mark.e2e

ALIASES = {
    "native-3": "gemini/gemini-3-pro-preview",
    "native-25": "gemini/gemini-2.5-flash",
    "vertex-3": "vertex_ai/gemini-3-pro-preview",
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read",
            "description": "Read a file.",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
        },
    }
]


def native_config(port: int, native: FakeNativeGemini) -> dict[str, Any]:
    return {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "local": {
                "npm": "@ai-sdk/openai-compatible",
                "options": {"baseURL": f"http://127.0.0.1:{port}/v1", "proxy": {"models": ALIASES}},
                "models": {name: {} for name in ALIASES},
            },
            "google": {
                "npm": "@ai-sdk/google",
                "options": {"baseURL": native.gemini_base, "apiKey": native.key, "proxy": {"api": "gemini"}},
                "models": {"gemini-2.5-flash": {}},
            },
            "vertex": {
                "npm": "@ai-sdk/google-vertex",
                "options": {"baseURL": native.vertex_base, "proxy": {"api": "vertex"}},
                "models": {},
            },
        },
    }


def service_account(path: Path, token_uri: str) -> Any:
    """A service-account JSON file with a fresh RSA key; returns the public key for the fake to check."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    account = {
        "type": "service_account",
        "project_id": "fake-project",
        "private_key_id": "fake-key-1",
        "private_key": pem,
        "client_email": "proxy@fake-project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(account))
    return key.public_key()


@pytest.fixture(scope="module")
def native_proxy(
    fake_gemini: FakeGemini, native: FakeNativeGemini, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ProxyProcess, Path]]:
    workdir = tmp_path_factory.mktemp("native")
    native.public_key = service_account(workdir / "sa.json", native.token_uri)
    port, saved = free_port(), workdir / "flows.mitm"
    proxy = start_proxy(
        fake_gemini,
        workdir,
        "-w",
        str(saved),
        port=port,
        config=native_config(port, native),
        env={"GOOGLE_APPLICATION_CREDENTIALS": str(workdir / "sa.json")},
    )
    yield proxy, saved
    proxy.stop()


@pytest.fixture
def client(native_proxy: tuple[ProxyProcess, Path], native: FakeNativeGemini) -> openai.OpenAI:
    native.reset()
    return openai.OpenAI(base_url=native_proxy[0].base_url, api_key="anything", max_retries=0)


def test_a_whole_answer_shows_reasoning_cached_and_reasoning_tokens(
    client: openai.OpenAI, native: FakeNativeGemini
) -> None:
    answer = client.chat.completions.create(model="native-3", messages=[{"role": "user", "content": "hi"}])
    message = answer.choices[0].message
    assert answer.model == "native-3"
    assert message.content == "Hello from native Gemini."
    assert message.model_extra["reasoning_content"] == "Thinking it over."
    assert answer.usage.prompt_tokens_details.cached_tokens == 100
    assert answer.usage.completion_tokens_details.reasoning_tokens == 30
    sent = native.requests[-1]
    assert sent["path"] == "/v1beta/models/gemini-3-pro-preview:generateContent"
    assert sent["headers"]["x-goog-api-key"] == KEY
    assert sent["body"]["generationConfig"] == {"thinkingConfig": {"includeThoughts": True}}


def test_a_streamed_tool_call_comes_back_and_its_signature_reaches_gemini_3(
    client: openai.OpenAI, native: FakeNativeGemini
) -> None:
    native.script(Reply(text="", calls=[("read", {"path": "a.txt"})]), Reply(text="It says A."))
    messages: list[dict] = [{"role": "user", "content": "read a.txt"}]
    stream = client.chat.completions.create(
        model="native-3", messages=messages, tools=TOOLS, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    reasoning = "".join(c.choices[0].delta.model_extra.get("reasoning_content") or "" for c in chunks if c.choices)
    calls = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or ()]
    assert reasoning == "Thinking it over."
    assert [(c.index, c.function.name, c.function.arguments) for c in calls] == [(0, "read", '{"path":"a.txt"}')]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == 30
    assert native.requests[-1]["query"] == "alt=sse"
    call = calls[0]
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump(exclude={"index"})]},
        {"role": "tool", "tool_call_id": call.id, "content": "A"},
    ]
    follow = client.chat.completions.create(model="native-3", messages=messages, tools=TOOLS)
    assert follow.choices[0].message.content == "It says A."
    signature = native.requests[-1]["body"]["contents"][1]["parts"][0]["thoughtSignature"]
    assert signature in native.signatures


def test_the_strict_fake_refuses_an_unsigned_gemini_3_call_the_proxy_did_not_see(native: FakeNativeGemini) -> None:
    import urllib.request

    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "go"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "read", "args": {}}}]},
        ]
    }
    request = urllib.request.Request(
        native.gemini_base + "/models/gemini-3-pro-preview:generateContent",
        json.dumps(body).encode(),
        {"x-goog-api-key": KEY, "content-type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400 and b"thought_signature" in caught.value.read()


def test_a_malformed_function_call_is_an_error_for_the_client(client: openai.OpenAI, native: FakeNativeGemini) -> None:
    native.script(Reply(text="", thought=None, finish="MALFORMED_FUNCTION_CALL"))
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="native-25", messages=[{"role": "user", "content": "x"}], tools=TOOLS)
    assert caught.value.status_code == 502 and "MALFORMED_FUNCTION_CALL" in caught.value.message
    native.script(Reply(text="", thought=None, finish="UNEXPECTED_TOOL_CALL"))
    stream = client.chat.completions.create(model="native-25", messages=[{"role": "user", "content": "x"}], stream=True)
    with pytest.raises(openai.APIError, match="UNEXPECTED_TOOL_CALL"):
        list(stream)


def test_upstream_errors_and_untranslatable_requests_are_openai_shaped(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="does not download media"):
        client.chat.completions.create(
            model="native-25",
            messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a"}}]}],
        )
    with pytest.raises(openai.BadRequestError, match="reasoning_effort"):
        client.chat.completions.create(
            model="native-25",
            messages=[{"role": "user", "content": "x"}],
            reasoning_effort="loud",  # type: ignore[arg-type]
        )


def test_vertex_ai_gets_a_token_minted_from_the_service_account(
    client: openai.OpenAI, native: FakeNativeGemini, native_proxy: tuple[ProxyProcess, Path]
) -> None:
    for _ in range(2):
        answer = client.chat.completions.create(model="vertex-3", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content == "Hello from native Gemini."
    sent = native.requests[-2:]
    assert len(sent) == 2 and all(
        r["path"].startswith("/v1/projects/fake-project/locations/us-central1/") for r in sent
    )
    assert len(native.tokens_issued) == 1, "the token is minted once and reused while valid"
    assert sent[-1]["headers"]["Authorization"] == f"Bearer {native.tokens_issued[0]}"
    log = native_proxy[0].log_text()
    assert native.tokens_issued[0] not in log and KEY not in log


def test_saved_flows_hold_the_native_exchange_and_the_client_request(
    client: openai.OpenAI, native: FakeNativeGemini, native_proxy: tuple[ProxyProcess, Path]
) -> None:
    # Two failed tool-call finishes of its own (whole and streamed), so the test needs no other test's flows.
    native.script(Reply(text="", thought=None, finish="MALFORMED_FUNCTION_CALL"))
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="native-25", messages=[{"role": "user", "content": "x"}], tools=TOOLS)
    native.script(Reply(text="", thought=None, finish="UNEXPECTED_TOOL_CALL"))
    with pytest.raises(openai.APIError):
        list(
            client.chat.completions.create(model="native-25", messages=[{"role": "user", "content": "x"}], stream=True)
        )
    client.chat.completions.create(model="native-25", messages=[{"role": "user", "content": "saved?"}])
    client.chat.completions.create(model="vertex-3", messages=[{"role": "user", "content": "saved?"}])
    proxy, saved = native_proxy
    proxy.stop()
    with saved.open("rb") as f:
        native = [f for f in mitmio.FlowReader(f).stream() if f.metadata.get("llm", {}).get("api")]
    flows = [f for f in native if not f.metadata["llm"].get("error")]
    assert {f.metadata["llm"]["api"] for f in flows} == {"gemini", "vertex"}
    failed = [f for f in native if f.metadata["llm"].get("error")]
    assert len(failed) >= 2 and all(f.marked for f in failed), "the failed tool-call finishes are marked"
    for flow in flows:
        llm = flow.metadata["llm"]
        assert b"contents" in flow.request.content and b"messages" not in flow.request.content
        assert json.loads(llm["client_request"]["body"])["messages"]  # client_request.py keeps it for every chat flow
        # A turn of a session, read from the client's messages (the request upstream is Gemini's own format).
        assert llm["session"]["id"].startswith("fp-") and llm["session"]["turn"] >= 1
        assert flow.comment.endswith(f" | {llm['session']['tag']} #{llm['session']['turn']}")
        assert llm["answer"]["usage"]["prompt_tokens_details"]["cached_tokens"] == 100
        assert b"chat.completion" in flow.response.content
        wire = bytes(flow.request.headers).decode() + json.dumps(llm, default=str)
        assert KEY not in wire and "ya29.fake" not in wire.replace("ya29...", "")
