"""The route table: each model opencode.json declares -> upstream model @ host, and where its key comes from.

Logged at start-up and after each reload, so a user sees where requests will go before sending one; a route to
Gemini's native API or to Vertex AI says so (the rest speak OpenAI's chat API to their host). Built
without litellm (it takes seconds to import): a provider without a baseURL shows "litellm's base for <id>".
Pure functions, no mitmproxy.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from . import keys, resolution
from .opencode_config import OpencodeConfig


class Row(NamedTuple):
    model: str  # as a client asks for it: the bare key, or `P/X` when another provider lists the key first
    upstream: str
    host: str
    key: keys.Key
    api: str = "openai"  # "gemini" (Gemini's native generateContent API) or "vertex" (Vertex AI's)


API_NOTES = {"gemini": " (Gemini's native API)", "vertex": " (Vertex AI, native API)"}


def rows(config: OpencodeConfig, settings: resolution.Settings) -> list[Row]:
    """One row per model a provider declares (its models and its options.proxy.models), in file order."""
    table: list[Row] = []
    first: dict[str, str] = {}  # model key -> the provider that lists it first
    for provider in config.providers.values():
        for key in dict.fromkeys([*provider.models, *provider.aliases]):
            first.setdefault(key, provider.id)
            name = key if first[key] == provider.id else f"{provider.id}/{key}"
            route = resolution.declared_route(config, settings, provider, key)
            if route is None:
                own = keys.Key(provider.api_key, keys.field_path(provider.id), keys.field_path(provider.id))
                found = keys.choose(own, resolution.env_key(config.env, provider.id))
                table.append(Row(name, key, f"litellm's base for {provider.id!r}", found))
            else:
                table.append(Row(name, route.upstream, keys.host_of(route.base), route.key, route.api))
    return table


def lines(config: OpencodeConfig, settings: resolution.Settings) -> list[tuple[int, str]]:
    """(log level, text): the table as one INFO record, then a WARNING per missing or placeholder key."""
    table = rows(config, settings)
    text = [f"Routes from {config.path} ({len(table)} models):"]
    warnings = []
    for row in table:
        text.append(
            f"  {row.model} -> {row.upstream} @ {row.host}{API_NOTES.get(row.api, '')}, key {_key_text(row.key)}"
        )
        if not row.key.value:
            warnings.append(f"{row.model}: no key for {row.host}; set {row.key.hint} if the upstream needs one.")
        elif keys.is_placeholder(row.key.value):
            warnings.append(
                f"{row.model}: the key from {row.key.source} ({keys.mask_key(row.key.value)}) looks like a "
                f"placeholder, not a key; put the real key there."
            )
    if not table:
        text.append("  (none declared: every name goes to the default upstream)")
    return [(logging.INFO, "\n".join(text)), *((logging.WARNING, w) for w in warnings)]


def _key_text(key: keys.Key) -> str:
    return f"{key.source} ({keys.mask_key(key.value)})" if key.value else "none"
