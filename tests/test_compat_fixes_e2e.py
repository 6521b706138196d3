"""End to end, through mitm_run.sh and the openai SDK: the OpenAI-compatible path's share of issue 15.

An empty answer (Gemini's MALFORMED_FUNCTION_CALL on its compatible endpoint) asked for once more with
translate_retry_empty_answer, streamed and whole; marked and logged without it; cached tokens reaching the client
and the comment; an attachment opencode sent as text marked and its fix logged.
"""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from mitmproxy import io as mitmio

from tests.conftest import ProxyProcess, start_proxy
from tests.fake_gemini import FakeGemini

pytestmark = pytest.mark.e2e

PLACEHOLDER = 'ERROR: Cannot read "crash.png" (this model does not support image input). Inform the user.'


@pytest.fixture
def retrying(fake_gemini: FakeGemini, fake: FakeGemini, tmp_path: Path):
    saved = tmp_path / "flows.mitm"
    proxy = start_proxy(fake_gemini, tmp_path, "--set", "translate_retry_empty_answer=true", "-w", str(saved))
    yield proxy, saved
    proxy.stop()


def client(proxy: ProxyProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key="anything", max_retries=0, timeout=30)


def read_flows(path: Path) -> list:
    with path.open("rb") as f:
        return [flow for flow in mitmio.FlowReader(f).stream() if "client_model" in flow.metadata.get("llm", {})]


def test_an_empty_answer_is_asked_for_once_more_before_the_client_gets_a_byte(retrying, fake):
    proxy, saved = retrying
    sdk = client(proxy)
    stream = sdk.chat.completions.create(
        model="local-model", messages=[{"role": "user", "content": "[empty:1] streamed"}], stream=True
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith("Hello from fake Gemini")
    assert {c.model for c in chunks} == {"local-model"}
    whole = sdk.chat.completions.create(model="local-model", messages=[{"role": "user", "content": "[empty:1] whole"}])
    assert whole.choices[0].message.content.startswith("Hello from fake Gemini") and whole.model == "local-model"
    assert len(fake.chat_requests()) == 4  # each asked twice
    proxy.stop()
    originals = [f for f in read_flows(saved) if "fallback_of" not in f.metadata["llm"]]
    assert len(originals) == 2
    for flow in originals:
        assert "tried gemini-2.5-flash 200 (empty), gemini-2.5-flash 200" in flow.comment and flow.marked == ""
    assert "empty answer from gemini-2.5-flash (no text, no tool calls): asking once more" in proxy.log_text()


def test_without_the_option_an_empty_answer_is_marked_and_logged(proxy, fake):
    since = proxy.log_size()
    answer = client(proxy).chat.completions.create(
        model="local-model", messages=[{"role": "user", "content": "[empty] [cached:900] nothing"}]
    )
    assert not answer.choices[0].message.content and answer.choices[0].finish_reason == "stop"
    assert answer.usage.prompt_tokens_details.cached_tokens == 900  # passed through from the endpoint
    assert len(fake.chat_requests()) == 1
    log = proxy.log_text(since)
    assert "empty answer (no text, no tool calls)" in log and "MALFORMED_FUNCTION_CALL" in log
    assert "translate_retry_empty_answer=true" in log
    assert "(900 cached)" in log  # the comment line counts them, and the price takes them at the cache price


def test_an_attachment_opencode_sent_as_text_is_named_with_its_fix(proxy, fake):
    since = proxy.log_size()
    content = [{"type": "text", "text": "Why does the app crash?"}, {"type": "text", "text": PLACEHOLDER}]
    client(proxy).chat.completions.create(model="local-model", messages=[{"role": "user", "content": content}])
    log = proxy.log_text(since)
    assert "opencode sent an attachment as text because it thinks 'local-model' cannot read it" in log
    assert '"modalities": {"input": ["text", "image", "pdf"], "output": ["text"]}' in log and PLACEHOLDER in log
    assert "attachment sent as text by opencode" in log  # the flow's comment
