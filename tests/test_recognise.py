"""Which requests capture mode reads, and as what: host and path (addon/capture/readers/recognise.py)."""

from __future__ import annotations

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons

from addon.capture.readers.recognise import BUILTIN_HOSTS, parse_hosts, recognise
from addon.capture.recorder import Capture
from addon.formats import litellm_bridge

HOSTS = {**BUILTIN_HOSTS, "api.mistral.ai": "mistral"}


@pytest.mark.parametrize(
    "host, path, expected",
    [
        ("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
         ("gemini_native", "gemini", "gemini-2.5-flash", True)),
        ("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-pro:generateContent",
         ("gemini_native", "gemini", "gemini-2.5-pro", False)),
        ("us-central1-aiplatform.googleapis.com",
         "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash:streamGenerateContent",
         ("gemini_native", "vertex_ai", "gemini-2.5-flash", True)),
        ("generativelanguage.googleapis.com", "/v1beta/openai/chat/completions", ("openai_chat", "gemini", None, False)),
        ("api.openai.com", "/v1/responses", ("openai_responses", "openai", None, False)),
        ("api.openai.com", "/v1/chat/completions", ("openai_chat", "openai", None, False)),
        ("api.anthropic.com", "/v1/messages?beta=true", ("anthropic", "anthropic", None, False)),
        ("openrouter.ai", "/api/v1/chat/completions", ("openai_chat", "openrouter", None, False)),
        ("API.Mistral.ai", "/v1/chat/completions", ("openai_chat", "mistral", None, False)),
    ],
)  # fmt: skip
def test_recognised(host, path, expected):
    assert tuple(recognise("POST", host, path, HOSTS)) == expected


@pytest.mark.parametrize(
    "method, host, path",
    [
        ("GET", "api.openai.com", "/v1/responses"),  # not a POST
        ("POST", "registry.npmjs.org", "/v1/chat/completions"),  # not a provider's host
        ("POST", "evil-api.openai.com.example", "/v1/responses"),
        ("POST", "api.openai.com", "/v1/files"),
        ("POST", "api.anthropic.com", "/v1/messages/count_tokens"),
    ],
)
def test_not_recognised(method, host, path):
    assert recognise(method, host, path, HOSTS) is None


def test_capture_hosts_option():
    assert parse_hosts(["llm.example.com=openai", "gw.example.org"]) == {
        "llm.example.com": "openai",
        "gw.example.org": "gw.example.org",
    }
    addon = Capture()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, capture_hosts=["llm.example.com=openai"])
        assert recognise("POST", "llm.example.com", "/v1/chat/completions", addon.hosts)
        with pytest.raises(exceptions.OptionsError, match="Cannot parse capture_hosts"):
            tctx.configure(addon, capture_hosts=["https://llm.example.com/v1"])


def test_litellm_tables():
    """The hosts and prices capture mode reads from litellm (in a thread at start-up)."""
    hosts = litellm_bridge.provider_hosts()
    assert hosts["api.mistral.ai"] and hosts["api.publicai.co"] == "publicai"
    assert litellm_bridge.model_costs()["gemini/gemini-2.5-flash"]["input_cost_per_token"] > 0
