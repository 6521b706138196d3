"""opencode.json loading (JSONC, {env:}, {file:}) and resolution of a requested model name to an upstream Target.

Pure functions, no mitmproxy. litellm is imported lazily (it takes seconds): provider prefixes and token prices.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple
from urllib.parse import urlsplit

GOOGLE_BASE = "https://generativelanguage.googleapis.com/v1beta/openai/"
MAX_NAME_LENGTH = 256
_SELF_HOSTS = frozenset({"localhost", "127.0.0.1", "0.0.0.0", "::1"})
# OpenAI-compatible bases that litellm's get_llm_provider() leaves as None. No "openai": unlisted names such as
# Groq's "openai/gpt-oss-120b" belong to the default upstream, not to api.openai.com.
_KNOWN_BASES = {"openrouter": "https://openrouter.ai/api/v1", "gemini": GOOGLE_BASE}
_STRING = r'"(?:[^"\\\n]|\\.)*"'
_COMMENT = re.compile(_STRING + r"|//[^\n]*|/\*.*?\*/", re.S)
_TRAILING_COMMA = re.compile(_STRING + r"|,(?=\s*[\]}])")
_ENV_REF = re.compile(r"\{env:([^}]+)\}")
_FILE_REF = re.compile(r"\{file:([^}]+)\}")
_BAD_CHAR = re.compile(r"[\x00-\x20\x7f-\x9f?#%\\]")
_JSON_KIND = {dict: "an object", list: "a list", str: "a string", bool: "true or false", int: "a number",
              float: "a number"}


class ConfigError(ValueError):
    """opencode.json cannot be used; the message names the file, the line when known, and the problem."""


@dataclass(frozen=True)
class Settings:
    api_base: str | None
    api_key: str | None
    default_model: str = "gemini-2.5-flash"
    proxy_port: int = 8000
    GOOGLE_BASE: ClassVar[str] = GOOGLE_BASE


@dataclass(frozen=True)
class Model:
    key: str
    id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Provider:
    id: str
    name: str | None = None
    api: str | None = None
    base_url: str | None = None  # options.baseURL, else api
    api_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    models: dict[str, Model] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # options.proxy.models
    fallbacks: dict[str, tuple[str, ...]] = field(default_factory=dict)  # options.proxy.fallbacks
    repairs: bool | None = None  # options.proxy.repairs

    def lookup(self, name: str) -> str | None:
        """The model key this provider lists `name` under (by key, by id, or as a proxy alias), else None."""
        if name in self.models or name in self.aliases:
            return name
        return next((m.key for m in self.models.values() if m.id == name), None)


@dataclass(frozen=True)
class OpencodeConfig:
    path: str
    providers: dict[str, Provider]
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def model_names(self) -> list[dict[str, Any]]:
        """Entries for /v1/models: each bare model key once, in file order."""
        seen: dict[str, str] = {}
        for provider in self.providers.values():
            for key in provider.models:
                seen.setdefault(key, provider.id)
        return [{"id": k, "object": "model", "created": 0, "owned_by": p} for k, p in seen.items()]


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


def load_config(path: str, env: Mapping[str, str] | None = None) -> OpencodeConfig:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist; create it or point the proxy at another file.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"Config file {path} cannot be read as UTF-8 text: {e}.") from e
    return parse_config(text, path, os.environ if env is None else env)


def parse_config(text: str, path: str, env: Mapping[str, str]) -> OpencodeConfig:
    try:
        data = json.loads(_strip_jsonc(_substitute(text, path, env)))
    except json.JSONDecodeError as e:
        raise ConfigError(f"Config file {path} is not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}.") from e
    try:
        providers = _field(_expect(data, dict, "the top level"), "provider", dict, "") or {}
        return OpencodeConfig(path, {k: _provider(k, v) for k, v in providers.items()}, env)
    except _WrongType as e:
        raise ConfigError(f"Config file {path}: {e}; fix it in the file.") from None


def _substitute(text: str, path: str, env: Mapping[str, str]) -> str:
    """Apply {env:VAR} and {file:path} as opencode does: on the raw text, values JSON-escaped."""
    text = _ENV_REF.sub(lambda m: _escape(env.get(m[1], "")), text)
    return _FILE_REF.sub(lambda m: _file_value(m, text, path), text)


def _file_value(match: re.Match[str], text: str, path: str) -> str:
    """The trimmed content of a {file:} reference; left alone on a line that is a // comment."""
    if text[text.rfind("\n", 0, match.start()) + 1 : match.start()].lstrip().startswith("//"):
        return match[0]
    ref = match[1]
    target = Path(ref).expanduser() if ref.startswith("~/") else Path(path).parent / ref
    try:
        return _escape(target.read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError) as e:
        line = text.count("\n", 0, match.start()) + 1
        reason = getattr(e, "strerror", None) or str(e)
        problem = f"{{file:{ref}}} cannot be read from {target} ({reason})"
        raise ConfigError(f"Config file {path}, line {line}: {problem}.") from e


def _escape(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


def _strip_jsonc(text: str) -> str:
    """Blank out comments and trailing commas, leaving every other character in place (errors keep line/col)."""
    text = _COMMENT.sub(lambda m: m[0] if m[0][0] == '"' else re.sub(r"[^\n]", " ", m[0]), text)
    return _TRAILING_COMMA.sub(lambda m: " " if m[0] == "," else m[0], text)


class _WrongType(Exception):
    """A value of the wrong JSON type; parse_config adds the file name."""


def _provider(pid: str, raw: Any) -> Provider:
    at = f"provider.{pid}"
    options = _field(_expect(raw, dict, at), "options", dict, at) or {}
    proxy = _field(options, "proxy", dict, f"{at}.options") or {}
    fallbacks = _map(proxy, "fallbacks", list, f"{at}.options.proxy")
    for k, names in fallbacks.items():
        for i, name in enumerate(names):
            _expect(name, str, f"{at}.options.proxy.fallbacks.{k}[{i}]")
    api = _field(raw, "api", str, at)
    return Provider(
        id=pid,
        name=_field(raw, "name", str, at),
        api=api,
        base_url=_field(options, "baseURL", str, f"{at}.options") or api or None,
        api_key=_field(options, "apiKey", str, f"{at}.options") or None,
        headers=_map(options, "headers", str, f"{at}.options"),
        models={k: _model(k, v, f"{at}.models.{k}") for k, v in _map(raw, "models", dict, at).items()},
        aliases=_map(proxy, "models", str, f"{at}.options.proxy"),
        fallbacks={k: tuple(v) for k, v in fallbacks.items()},
        repairs=_field(proxy, "repairs", bool, f"{at}.options.proxy"),
    )


def _model(key: str, raw: dict[str, Any], at: str) -> Model:
    return Model(key, _field(raw, "id", str, at) or None, _field(raw, "name", str, at))


def _map(obj: dict[str, Any], key: str, kind: type, at: str) -> dict[str, Any]:
    """obj[key]: an object whose values all are `kind`, {} when absent."""
    return {k: _expect(v, kind, f"{at}.{key}.{k}") for k, v in (_field(obj, key, dict, at) or {}).items()}


def _field(obj: dict[str, Any], key: str, kind: type, at: str) -> Any:
    value = obj.get(key)
    return None if value is None else _expect(value, kind, f"{at}.{key}".lstrip("."))


def _expect(value: Any, kind: type, where: str) -> Any:
    if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return value
    got = "null" if value is None else _JSON_KIND.get(type(value), type(value).__name__)
    raise _WrongType(f"{where} must be {_JSON_KIND[kind]}, not {got}")


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
        (p for p in config.providers.values() if p.base_url and not is_self(p.base_url, settings.proxy_port)), None)
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
    litellm = _litellm()
    if prefix not in {*litellm.openai_compatible_providers, *_KNOWN_BASES, "mistral"}:
        return None
    try:
        upstream, provider, _, base = litellm.get_llm_provider(model)
    except Exception:  # litellm raises several types for names it cannot place
        return None
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
        client_model=model, upstream_model=route.upstream, api_base=route.base, api_key=route.key or None,
        headers=dict(route.headers), provider=provider.id if provider else None, litellm_model=litellm_model,
        is_gemini=gemini, fallbacks=fallbacks, context_window=info.get("max_input_tokens"),
        input_cost_per_token=info.get("input_cost_per_token"), output_cost_per_token=info.get("output_cost_per_token"),
    )


def _looks_gemini(base: str, upstream: str) -> bool:
    host = urlsplit(base).hostname or ""
    google = host == "generativelanguage.googleapis.com" or host.endswith("aiplatform.googleapis.com")
    return google or upstream.removeprefix("models/").startswith("gemini")


def _cost_info(upstream: str, litellm_model: str, gemini: bool) -> dict[str, Any]:
    costs = _litellm().model_cost
    keys = [upstream, f"gemini/{upstream}" if gemini else None, litellm_model]
    return next((costs[k] for k in keys if k and isinstance(costs.get(k), dict)), {})


def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def mask_key(key: str | None) -> str:
    """A key as logs may show it: 'AIza…x9' (at most 6 characters of it), '…' for short keys."""
    if not key:
        return "(none)"
    return "…" if len(key) < 16 else f"{key[:4]}…{key[-2:]}"
