"""Which requests are LLM exchanges, and in which format: by host and path, nothing else (pure).

A POST to a provider's host is recognised by its path: `.../chat/completions` (OpenAI Chat Completions, also
Gemini's OpenAI-compatible endpoint), `.../responses` (OpenAI Responses), `.../messages` (Anthropic Messages),
`.../models/M:generateContent` and `:streamGenerateContent` (Gemini native, Vertex AI too). Providers' hosts are
the few below, those of litellm's tables once they are loaded (recorder.py loads them off the event loop) and any
the user names (`capture_hosts`). Everything else is not an LLM exchange.
"""

from __future__ import annotations

import re
from typing import NamedTuple

BUILTIN_HOSTS = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "gemini",
    "aiplatform.googleapis.com": "vertex_ai",
    "openrouter.ai": "openrouter",
}
GEMINI_CALL = re.compile(r"/models/(?P<model>[^/:]+):(?P<method>streamGenerateContent|generateContent)$")


class Exchange(NamedTuple):
    format: str  # a key of formats.READERS
    provider: str  # litellm's provider name when known, else the host
    path_model: str | None  # the model named in the path (Gemini native), else None
    streamed_by_path: bool  # Gemini's streamGenerateContent: the path, not the body, asks for a stream


def provider_of(host: str, hosts: dict[str, str]) -> str | None:
    """The provider serving `host`: an exact entry, or a region subdomain of one (us-central1-aiplatform...)."""
    host = host.lower().rstrip(".")
    if host in hosts:
        return hosts[host]
    for known, provider in hosts.items():
        if host.endswith("-" + known) or host.endswith("." + known):
            return provider
    return None


def recognise(method: str, host: str, path: str, hosts: dict[str, str]) -> Exchange | None:
    """The exchange a request is, or None. `hosts`: host -> provider name (BUILTIN_HOSTS and the rest)."""
    if method.upper() != "POST":
        return None
    provider = provider_of(host, hosts)
    if provider is None:
        return None
    path = path.split("?", 1)[0].rstrip("/")
    if found := GEMINI_CALL.search(path):
        return Exchange("gemini_native", provider, found["model"], found["method"] == "streamGenerateContent")
    if path.endswith("/chat/completions"):
        return Exchange("openai_chat", provider, None, False)
    if path.endswith("/responses"):
        return Exchange("openai_responses", provider, None, False)
    if path.endswith("/messages"):
        return Exchange("anthropic", provider, None, False)
    return None


def parse_hosts(specs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`capture_hosts` entries, `host` or `host=provider`, as host -> provider. Raises ValueError for a bad one."""
    hosts = {}
    for spec in specs:
        host, _, provider = spec.partition("=")
        host = host.strip().lower()
        if not host or "/" in host or " " in host:
            raise ValueError(f"{spec!r} is not a host name (write e.g. llm.example.com or llm.example.com=openai)")
        hosts[host] = provider.strip() or host
    return hosts
