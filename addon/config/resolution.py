"""Resolution: where a request for a model name goes, from opencode.json and the environment (a Target).

Pure functions, no mitmproxy. litellm's facts (provider prefixes, token prices) come through formats.litellm_bridge,
which waits for litellm's import: a caller on the event loop awaits litellm_bridge.warm() first.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from ..formats import litellm_bridge
from . import keys, native_route
from .keys import Key, mask_key
from .model_name import check_model_name
from .opencode_config import GOOGLE_BASE, OpencodeConfig, Provider

__all__ = ["Settings", "Target", "check_model_name", "is_alias", "is_self", "mask_key", "resolve"]

# OpenAI-compatible bases that litellm's get_llm_provider() leaves as None. No "openai": unlisted names such as
# Groq's "openai/gpt-oss-120b" belong to the default upstream, not to api.openai.com.
_KNOWN_BASES = {"openrouter": "https://openrouter.ai/api/v1", "gemini": GOOGLE_BASE}


@dataclass(frozen=True)
class Settings:
    api_base: str | None
    api_key: str | None
    default_model: str = "gemini-2.5-flash"
    proxy_port: int = 8000  # the listen port
    listen_host: str = ""  # the listen address ("" = every interface)
    GOOGLE_BASE: ClassVar[str] = GOOGLE_BASE


@dataclass(frozen=True)
class Target:
    client_model: str
    upstream_model: str
    api_base: str
    api_key: str | None
    headers: dict[str, str]
    provider: str | None
    key_source: str | None  # where api_key came from: an env var name or an opencode.json field path
    key_hint: str  # what to set (or check) when the upstream gets no key or refuses it
    litellm_model: str
    is_gemini: bool
    fallbacks: tuple[str, ...] = ()
    context_window: int | None = None
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    api: str = "openai"  # "gemini" / "vertex": Gemini's native generateContent API (native_route.py)
    cache_read_cost_per_token: float | None = None


class _Route(NamedTuple):
    upstream: str
    base: str
    key: Key
    headers: Mapping[str, str]
    provider: Provider | None = None
    model_key: str | None = None
    litellm_model: str | None = None  # None means "openai/<upstream>"
    api: str = "openai"


def resolve(config: OpencodeConfig, model: str, settings: Settings) -> Target:
    """Where a request for `model` goes; ValueError for an unusable name.

    `P/X` is provider P's model X, else the first provider listing the name goes. A provider pointing elsewhere
    gets the request (model `id` or key). An alias provider (is_alias) and names nowhere in the file go to the
    default upstream: settings.api_base, else the first provider pointing elsewhere, else Google, with the
    alias's options.proxy.models mapping or settings.default_model (unlisted names stay as they are). Names with
    a litellm provider prefix (groq/..., openrouter/...) go to that provider. Keys: see keys.py.
    """
    check_model_name(model)
    found = _find(config, model)
    if not found:
        route = (
            _native_route(config, model, settings)
            or _litellm_route(config, model)
            or _default_route(config, model, settings, None)
        )
    else:
        route = declared_route(config, settings, *found) or _litellm_provider_route(config, settings, *found)
    return _target(model, route)


def is_alias(provider: Provider, settings: Settings) -> bool:
    """An alias provider stands for this proxy: it carries an `options.proxy.models` mapping, even an empty one
    (whatever its baseURL says, so replicas behind a balancer and other addresses of this proxy count), or its
    baseURL is this proxy's own listen address. (`fallbacks` or `repairs` alone do not make one.)"""
    return provider.proxy_models or is_self(provider.base_url, settings.proxy_port, settings.listen_host)


def is_self(base_url: str | None, proxy_port: int, listen_host: str = "") -> bool:
    """True when `base_url` names this proxy's listen address: its port, on a loopback or any-address host or
    on the listen host itself."""
    found = keys.origin(base_url)
    if not found or found[2] != proxy_port:
        return False
    host = found[1]
    if host == listen_host or host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _find(config: OpencodeConfig, model: str) -> tuple[Provider, str] | None:
    """(provider, model key): `P/X` listed in P, else the first provider listing `model`, else P with X unlisted."""
    prefix, _, rest = model.partition("/")
    owner = config.providers.get(prefix) if rest else None
    if owner and (key := owner.lookup(rest)):
        return owner, key
    listed = ((p, p.lookup(model)) for p in config.providers.values())
    return next(((p, k) for p, k in listed if k), None) or ((owner, rest) if owner else None)


def declared_route(config: OpencodeConfig, settings: Settings, provider: Provider, key: str) -> _Route | None:
    """The route of provider's model `key`, without litellm; None for a provider with no baseURL (litellm's)."""
    if is_alias(provider, settings):
        return _default_route(config, key, settings, (provider, key))
    entry = provider.models.get(key)
    upstream = entry.id if entry and entry.id else key
    if native := native_route.provider_route(provider, upstream, config.env):
        return _native_key(native, settings)._replace(model_key=key)
    if not provider.base_url:
        return None
    own = Key(provider.api_key, keys.field_path(provider.id), keys.field_path(provider.id))
    found = keys.choose(own, keys.gemini_key(provider.base_url, settings.api_key, settings.api_base))
    return _Route(upstream, provider.base_url, found, provider.headers, provider, key)


def _default_route(
    config: OpencodeConfig, model: str, settings: Settings, found: tuple[Provider, str] | None
) -> _Route:
    """Alias providers and names not in the file go to the default upstream. The alias's own apiKey is the
    client's key for this proxy: never sent upstream."""
    alias, key = found or (None, model)
    owner = None if settings.api_base else default_provider(config, settings)
    base = settings.api_base or (owner.base_url if owner and owner.base_url else GOOGLE_BASE)
    own = Key(owner.api_key, keys.field_path(owner.id), keys.field_path(owner.id)) if owner else None
    api_key = keys.choose(keys.gemini_key(base, settings.api_key, settings.api_base), own)
    if alias and key in alias.models:
        upstream = alias.aliases.get(key) or settings.default_model
    else:
        upstream = alias.aliases.get(key, key) if alias else model
    if native := _native_route(config, upstream, settings):  # an alias for gemini/<model> or vertex_ai/<model>
        return native._replace(provider=alias, model_key=key)
    return _Route(upstream, base, api_key, owner.headers if owner else {}, alias, key)


def default_provider(config: OpencodeConfig, settings: Settings) -> Provider | None:
    """The first provider with a baseURL that is not an alias and speaks the OpenAI-compatible API: the default
    upstream without GEMINI_API_BASE."""
    return next(
        (
            p
            for p in config.providers.values()
            if p.base_url and not is_alias(p, settings) and native_route.provider_api(p) == "openai"
        ),
        None,
    )


def _native_route(config: OpencodeConfig, model: str, settings: Settings) -> _Route | None:
    """`gemini/<model>` and `vertex_ai/<model>`: Gemini's native API (native_route.py)."""
    native = native_route.prefixed_route(config, model, settings.api_key)
    return _native_key(native, settings) if native else None


def _native_key(native: native_route.NativeRoute, settings: Settings) -> _Route:
    """A native route with its key told as keys.py tells it: the provider's own apiKey, else GEMINI_API_KEY for
    Google's host; Vertex AI needs none (google-auth's token)."""
    provider = native.provider
    own = Key(provider.api_key, keys.field_path(provider.id), keys.field_path(provider.id)) if provider else None
    if native.api != "gemini":
        key = Key(None, None, "GOOGLE_APPLICATION_CREDENTIALS")
    else:
        key = keys.choose(own, keys.gemini_key(native.base, settings.api_key, settings.api_base))
    return _Route(native.upstream, native.base, key, native.headers, provider, api=native.api)


def _litellm_provider_route(config: OpencodeConfig, settings: Settings, provider: Provider, key: str) -> _Route:
    """A provider without a baseURL: litellm's base for its id (with its apiKey), else the default upstream."""
    entry = provider.models.get(key)
    upstream = entry.id if entry and entry.id else key
    route = _litellm_route(config, f"{provider.id}/{upstream}")
    if route is None:
        return _default_route(config, upstream, settings, None)._replace(provider=provider, model_key=key)
    own = Key(provider.api_key, keys.field_path(provider.id), keys.field_path(provider.id))
    return route._replace(key=keys.choose(own, route.key), provider=provider, model_key=key)


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
    return _Route(upstream, base, env_key(config.env, provider), {}, litellm_model=model) if base else None


def env_key(env: Mapping[str, str], provider: str) -> Key:
    """GROQ_API_KEY for groq; TOGETHER_AI_/TOGETHERAI_/TOGETHER_API_KEY for together_ai, and so on."""
    names = [
        f"{n}_API_KEY" for n in (provider.upper(), provider.replace("_", "").upper(), provider.split("_")[0].upper())
    ]
    found = next((n for n in names if env.get(n)), None)
    return Key(env[found], found, found) if found else Key(None, None, names[0])


def _target(model: str, route: _Route) -> Target:
    provider = route.provider
    native = native_route.LITELLM_PREFIX.get(route.api)
    litellm_model = f"{native}/{route.upstream}" if native else route.litellm_model or f"openai/{route.upstream}"
    forced = provider.repairs if provider else None
    gemini = bool(native) or (_looks_gemini(route.base, route.upstream) if forced is None else forced)
    own = provider.fallbacks if provider else {}
    fallbacks = own.get(route.model_key or model) or own.get(model, ())
    info = _cost_info(route.upstream, litellm_model, gemini)
    return Target(
        client_model=model,
        upstream_model=route.upstream,
        api_base=route.base,
        api_key=route.key.value or None,
        headers=dict(route.headers),
        provider=provider.id if provider else None,
        key_source=route.key.source if route.key.value else None,
        key_hint=route.key.hint,
        litellm_model=litellm_model,
        is_gemini=gemini,
        fallbacks=fallbacks,
        context_window=info.get("max_input_tokens"),
        input_cost_per_token=info.get("input_cost_per_token"),
        output_cost_per_token=info.get("output_cost_per_token"),
        api=route.api,
        cache_read_cost_per_token=info.get("cache_read_input_token_cost"),
    )


def _looks_gemini(base: str, upstream: str) -> bool:
    return keys.is_google(base) or upstream.removeprefix("models/").startswith("gemini")


def _cost_info(upstream: str, litellm_model: str, gemini: bool) -> Mapping[str, Any]:
    return litellm_bridge.model_info(upstream, f"gemini/{upstream}" if gemini else None, litellm_model)
