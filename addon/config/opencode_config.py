"""opencode.json loading: JSONC, {env:} and {file:} as opencode substitutes them, providers and their models.

Pure functions, no mitmproxy. Where a requested model goes is resolution.py's concern.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GOOGLE_BASE = "https://generativelanguage.googleapis.com/v1beta/openai/"
_STRING = r'"(?:[^"\\\n]|\\.)*"'
_COMMENT = re.compile(_STRING + r"|//[^\n]*|/\*.*?\*/", re.S)
_TRAILING_COMMA = re.compile(_STRING + r"|,(?=\s*[\]}])")
_ENV_REF = re.compile(r"\{env:([^}]+)\}")
_FILE_REF = re.compile(r"\{file:([^}]+)\}")
_JSON_KIND = {
    dict: "an object",
    list: "a list",
    str: "a string",
    bool: "true or false",
    int: "a number",
    float: "a number",
}


class ConfigError(ValueError):
    """opencode.json cannot be used; the message names the file, the line when known, and the problem."""


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
    npm: str | None = None
    upstream_api: str | None = None  # options.proxy.api: "openai", "gemini" or "vertex" (native_route.py)
    project: str | None = None  # options.project (Vertex AI, as @ai-sdk/google-vertex spells it)
    location: str | None = None  # options.location
    proxy_models: bool = False  # options.proxy.models is there: an alias of this proxy, whatever its baseURL

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
        npm=_field(raw, "npm", str, at),
        upstream_api=_upstream_api(_field(proxy, "api", str, f"{at}.options.proxy"), at),
        project=_field(options, "project", str, f"{at}.options") or None,
        location=_field(options, "location", str, f"{at}.options") or None,
        proxy_models=proxy.get("models") is not None,
    )


UPSTREAM_APIS = ("openai", "gemini", "vertex")


def _upstream_api(value: str | None, at: str) -> str | None:
    if value is not None and value not in UPSTREAM_APIS:
        raise _WrongType(f"{at}.options.proxy.api is {value!r}; use one of {', '.join(UPSTREAM_APIS)}")
    return value


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
