"""Which API an upstream speaks: OpenAI-compatible (the default), Gemini's native API, or Vertex AI's.

Pure functions, no mitmproxy. A provider opts in with `options.proxy.api` ("gemini" or "vertex"), or by the
AI SDK package opencode itself would use for it (`@ai-sdk/google`, `@ai-sdk/google-vertex`). Model names with
litellm's prefixes `gemini/` and `vertex_ai/` go to the native path too: to the first provider in the file that
speaks it, else to Google (GEMINI_API_KEY) or Vertex AI (project and location from the environment).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from .opencode_config import OpencodeConfig, Provider

GEMINI_NATIVE_BASE = "https://generativelanguage.googleapis.com/v1beta"
NATIVE_PREFIXES = {"gemini": "gemini", "vertex_ai": "vertex"}  # litellm's prefix -> our API name
LITELLM_PREFIX = {"gemini": "gemini", "vertex": "vertex_ai"}
_NPM_API = {"@ai-sdk/google": "gemini", "@ai-sdk/google-vertex": "vertex"}
PROJECT_ENV = ("GOOGLE_CLOUD_PROJECT", "VERTEXAI_PROJECT", "VERTEX_PROJECT")
LOCATION_ENV = ("GOOGLE_CLOUD_LOCATION", "VERTEXAI_LOCATION", "VERTEX_LOCATION")


class NativeRoute(NamedTuple):
    upstream: str
    base: str
    key: str | None
    headers: Mapping[str, str]
    provider: Provider | None
    api: str


def provider_api(provider: Provider | None) -> str:
    """The API a provider's upstream speaks: its options.proxy.api, else what its npm package implies."""
    if provider is None:
        return "openai"
    return provider.upstream_api or _NPM_API.get(provider.npm or "", "openai")


def native_base(api: str, base_url: str | None, provider: Provider | None, env: Mapping[str, str]) -> str:
    """The base that `/models/<model>:generateContent` is appended to; ValueError when Vertex lacks a project."""
    if base_url:
        base = base_url.rstrip("/")
        return base.removesuffix("/openai") if api == "gemini" else base
    if api == "gemini":
        return GEMINI_NATIVE_BASE
    project = (provider.project if provider else None) or _first(env, PROJECT_ENV)
    location = (provider.location if provider else None) or _first(env, LOCATION_ENV) or "global"
    if not project:
        raise ValueError(
            "Vertex AI needs a project: set options.project on the provider in opencode.json, "
            "or GOOGLE_CLOUD_PROJECT in the environment."
        )
    host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
    return f"https://{host}/v1/projects/{project}/locations/{location}/publishers/google"


def provider_route(provider: Provider, upstream: str, env: Mapping[str, str]) -> NativeRoute | None:
    """The native route of a provider that speaks a native API; None for OpenAI-compatible ones."""
    api = provider_api(provider)
    if api == "openai":
        return None
    base = native_base(api, provider.base_url, provider, env)
    key = provider.api_key if api == "gemini" else None
    return NativeRoute(upstream, base, key, provider.headers, provider, api)


def prefixed_route(config: OpencodeConfig, model: str, gemini_key: str | None) -> NativeRoute | None:
    """`gemini/<model>` or `vertex_ai/<model>`: the first provider of that API in the file, else Google's own."""
    prefix, _, upstream = model.partition("/")
    api = NATIVE_PREFIXES.get(prefix)
    if not api or not upstream:
        return None
    owner = next((p for p in config.providers.values() if provider_api(p) == api), None)
    if owner is not None:
        route = provider_route(owner, upstream, config.env)
        assert route is not None
        return route._replace(key=route.key or (gemini_key if api == "gemini" else None))
    base = native_base(api, None, None, config.env)
    return NativeRoute(upstream, base, gemini_key if api == "gemini" else None, {}, None, api)


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((env[n] for n in names if env.get(n)), None)
