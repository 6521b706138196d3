"""Resolution: where a request for a model name goes, from opencode.json and the environment (a Target).

Pure functions, no mitmproxy. litellm's facts (provider prefixes, token prices) come through formats.litellm_bridge,
which waits for litellm's import: a caller on the event loop awaits litellm_bridge.warm() first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple
from urllib.parse import urlsplit

from ..formats import litellm_bridge
from .opencode_config import GOOGLE_BASE, OpencodeConfig, Provider

MAX_NAME_LENGTH = 256
_SELF_HOSTS = frozenset({"localhost", "127.0.0.1", "0.0.0.0", "::1"})
# OpenAI-compatible bases that litellm's get_llm_provider() leaves as None. No "openai": unlisted names such as
# Groq's "openai/gpt-oss-120b" belong to the default upstream, not to api.openai.com.
_KNOWN_BASES = {"openrouter": "https://openrouter.ai/api/v1", "gemini": GOOGLE_BASE}
_BAD_CHAR = re.compile(r"[\x00-\x20\x7f-\x9f?#%\\]")


@dataclass(frozen=True)
class Settings:
    api_base: str | None
    api_key: str | None
    default_model: str = "gemini-2.5-flash"
    proxy_port: int = 8000
    GOOGLE_BASE: ClassVar[str] = GOOGLE_BASE


@dataclass(frozen=True)
class Target:
    client_model: str
    upstream_model: str
    api_base: str
    api_key: str | None
    headers: dict[str, str]
    provider: str | None
    litellm_model: str
    is_gemini: bool
    fallbacks: tuple[str, ...] = ()
    context_window: int | None = None
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None


class _Route(NamedTuple):
    upstream: str
    base: str
    key: str | None
    headers: Mapping[str, str]
    provider: Provider | None = None
    model_key: str | None = None
    litellm_model: str | None = None  # None means "openai/<upstream>"


def resolve(config: OpencodeConfig, model: str, settings: Settings) -> Target:
    """Where a request for `model` goes; ValueError for an unusable name.

    `P/X` is provider P's model X, else the first provider listing the name goes. A provider pointing elsewhere
    gets the request (model `id` or key). An alias provider (its baseURL is this proxy) and names nowhere in the
    file go to the default upstream: settings.api_base, else the first provider pointing elsewhere, else Google,
    with the alias's options.proxy.models mapping or settings.default_model (unlisted names stay as they are).
    Names with a litellm provider prefix (groq/..., openrouter/...) go to that provider.
    """
    check_model_name(model)
    found = _find(config, model)
    if not found:
        route = _litellm_route(config, model) or _default_route(config, model, settings, None)
    elif is_self(found[0].base_url, settings.proxy_port):
        route = _default_route(config, model, settings, found)
    else:
        route = _provider_route(config, settings, *found)
    return _target(model, route)


def check_model_name(model: str) -> None:
    """Raise ValueError unless `model` is a name worth resolving (no empty/over-long names, control or URL chars)."""
    if not model:
        raise ValueError("The model name is empty; ask for a model such as 'local-model'.")
    if len(model) > MAX_NAME_LENGTH:
        raise ValueError(f"The model name is {len(model)} characters long; at most {MAX_NAME_LENGTH} are allowed.")
    if bad := _BAD_CHAR.search(model):
        raise ValueError(f"The model name {model[:80]!r} contains {bad[0]!r}, which a model name may not contain.")
    if any(part in ("", ".", "..") for part in model.split("/")):
        raise ValueError(f"The model name {model!r} has an empty, '.' or '..' path segment; use 'provider/model'.")


def is_self(base_url: str | None, proxy_port: int) -> bool:
    """True when `base_url` points at this proxy (a loopback/any host on the proxy's port)."""
    if not base_url:
        return False
    parts = urlsplit(base_url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    return (parts.hostname or "") in _SELF_HOSTS and port == proxy_port


def _find(config: OpencodeConfig, model: str) -> tuple[Provider, str] | None:
    """(provider, model key): `P/X` listed in P, else the first provider listing `model`, else P with X unlisted."""
    prefix, _, rest = model.partition("/")
    owner = config.providers.get(prefix) if rest else None
    if owner and (key := owner.lookup(rest)):
        return owner, key
    listed = ((p, p.lookup(model)) for p in config.providers.values())
    return next(((p, k) for p, k in listed if k), None) or ((owner, rest) if owner else None)


def _default_route(
    config: OpencodeConfig, model: str, settings: Settings, found: tuple[Provider, str] | None
) -> _Route:
    """Alias providers (baseURL = this proxy) and names not in the file go to the default upstream."""
    alias, key = found or (None, model)
    upstream_provider = next(
        (p for p in config.providers.values() if p.base_url and not is_self(p.base_url, settings.proxy_port)), None
    )
    owner = None if settings.api_base else upstream_provider  # its key and headers only go to its own base
    base = settings.api_base or (owner.base_url if owner and owner.base_url else GOOGLE_BASE)
    api_key = settings.api_key or (alias.api_key if alias else None) or (owner.api_key if owner else None)
    if alias and key in alias.models:
        upstream = alias.aliases.get(key) or settings.default_model
    else:
        upstream = alias.aliases.get(key, key) if alias else model
    return _Route(upstream, base, api_key, owner.headers if owner else {}, alias, key)


def _provider_route(config: OpencodeConfig, settings: Settings, provider: Provider, key: str) -> _Route:
    """A provider that is not this proxy: its baseURL, else litellm's base for its id, else the default upstream."""
    entry = provider.models.get(key)
    upstream = entry.id if entry and entry.id else key
    if provider.base_url:
        return _Route(upstream, provider.base_url, provider.api_key, provider.headers, provider, key)
    route = _litellm_route(config, f"{provider.id}/{upstream}") or _default_route(config, upstream, settings, None)
    return route._replace(key=provider.api_key or route.key, provider=provider, model_key=key)


def _litellm_route(config: OpencodeConfig, model: str) -> _Route | None:
    """`groq/llama-3.1-8b-instant` and the like: litellm knows the provider's OpenAI-compatible base."""
    prefix, _, rest = model.partition("/")
    if not rest:
        return None
    if prefix not in {*litellm_bridge.openai_compatible_providers(), *_KNOWN_BASES, "mistral"}:
        return None
    placed = litellm_bridge.provider_route(model)
    if placed is None:
        return None
    upstream, provider, base = placed
    base = base or _KNOWN_BASES.get(provider)
    return _Route(upstream, base, _env_key(config.env, provider), {}, litellm_model=model) if base else None


def _env_key(env: Mapping[str, str], provider: str) -> str | None:
    """GROQ_API_KEY for groq; TOGETHER_AI_/TOGETHERAI_/TOGETHER_API_KEY for together_ai, and so on."""
    names = (provider.upper(), provider.replace("_", "").upper(), provider.split("_")[0].upper())
    return next((env[f"{n}_API_KEY"] for n in names if env.get(f"{n}_API_KEY")), None)


def _target(model: str, route: _Route) -> Target:
    provider = route.provider
    litellm_model = route.litellm_model or f"openai/{route.upstream}"
    forced = provider.repairs if provider else None
    gemini = _looks_gemini(route.base, route.upstream) if forced is None else forced
    own = provider.fallbacks if provider else {}
    fallbacks = own.get(route.model_key or model) or own.get(model, ())
    info = _cost_info(route.upstream, litellm_model, gemini)
    return Target(
        client_model=model,
        upstream_model=route.upstream,
        api_base=route.base,
        api_key=route.key or None,
        headers=dict(route.headers),
        provider=provider.id if provider else None,
        litellm_model=litellm_model,
        is_gemini=gemini,
        fallbacks=fallbacks,
        context_window=info.get("max_input_tokens"),
        input_cost_per_token=info.get("input_cost_per_token"),
        output_cost_per_token=info.get("output_cost_per_token"),
    )


def _looks_gemini(base: str, upstream: str) -> bool:
    host = urlsplit(base).hostname or ""
    google = host == "generativelanguage.googleapis.com" or host.endswith("aiplatform.googleapis.com")
    return google or upstream.removeprefix("models/").startswith("gemini")


def _cost_info(upstream: str, litellm_model: str, gemini: bool) -> Mapping[str, Any]:
    return litellm_bridge.model_info(upstream, f"gemini/{upstream}" if gemini else None, litellm_model)


def mask_key(key: str | None) -> str:
    """A key as logs may show it: 'AIza…x9' (at most 6 characters of it), '…' for short keys."""
    if not key:
        return "(none)"
    return "…" if len(key) < 16 else f"{key[:4]}…{key[-2:]}"
