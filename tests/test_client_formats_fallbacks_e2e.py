"""Responses and Messages clients with the proxy's key, fallbacks and the empty-answer retry: a fallback's answer
and a retried stream reach the client in its own format, and a wrong key is refused in its error shape."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest

from tests.conftest import ProxyProcess, free_port, start_proxy
from tests.fake_gemini import FakeGemini
from tests.test_fallbacks_e2e import KEY, fallback_config, upstream_models

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def proxy(fake_gemini: FakeGemini, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    port = free_port()
    started = start_proxy(
        fake_gemini,
        tmp_path_factory.mktemp("format-fallbacks"),
        "--set",
        "translate_retry_empty_answer=true",
        port=port,
        config=fallback_config(port),
        env={"PROXY_API_KEY": KEY},
    )
    yield started
    started.stop()


@pytest.fixture
def claude(proxy: ProxyProcess, fake: FakeGemini) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.root_url, api_key=KEY, max_retries=0, timeout=30)


@pytest.fixture
def oai(proxy: ProxyProcess, fake: FakeGemini) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key=KEY, max_retries=0, timeout=30)


@pytest.mark.parametrize("stream", [False, True])
def test_a_fallbacks_answer_comes_in_anthropics_format(
    claude: anthropic.Anthropic, fake: FakeGemini, stream: bool
) -> None:
    messages: list = [{"role": "user", "content": f"[error:503:1] fall back {stream}"}]
    if stream:
        with claude.messages.stream(model="local-model", max_tokens=50, messages=messages) as events:
            answer = events.get_final_message()
    else:
        answer = claude.messages.create(model="local-model", max_tokens=50, messages=messages)
    assert answer.content[0].text.startswith("Hello from fake Gemini.")  # type: ignore[union-attr]
    assert answer.model == "local-model"
    assert upstream_models(fake) == ["gemini-2.5-flash", "gemini-2.0-flash"]


def test_an_empty_stream_is_asked_again_and_comes_in_the_responses_format(oai: openai.OpenAI, fake: FakeGemini) -> None:
    events = list(oai.responses.create(model="local-model", input="[empty:1] say something", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed" and kinds.count("response.created") == 1
    assert events[-1].response.output_text.startswith("Hello from fake Gemini.")
    assert len(fake.chat_requests()) == 2


def test_a_wrong_key_is_refused_in_each_format(proxy: ProxyProcess) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        anthropic.Anthropic(base_url=proxy.root_url, api_key="wrong", max_retries=0).messages.create(
            model="local-model", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=proxy.base_url, api_key="wrong", max_retries=0).responses.create(
            model="local-model", input="x"
        )
