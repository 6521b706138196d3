"""Request fields Gemini's OpenAI endpoint refuses: translated where there is an equivalent, otherwise dropped.

The endpoint answers 400 `Invalid JSON payload received. Unknown name "<field>"` for any top-level name it does not
know, OpenAI's or a vendor's. SUPPORTED_FIELDS lists what Google documents for the endpoint; litellm's
`get_supported_openai_params(model, custom_llm_provider="gemini")` only narrows it per model (it knows which models
think, so reasoning_effort is dropped for gemini-2.0-flash): its list is what litellm translates for the native
API, so it also names `thinking` and `web_search_options`, which the OpenAI endpoint rejects. The caller calls
repair_fields for Gemini targets only.
"""

from __future__ import annotations

from typing import TypeGuard

from ..formats import litellm_bridge

# What Google's compatibility guide and API reference list for the endpoint (audio and top_logprobs: not verified).
SUPPORTED_FIELDS: frozenset[str] = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "n",
        "stop",
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "response_format",
        "reasoning_effort",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logprobs",
        "top_logprobs",
        "modalities",
        "audio",
        "extra_body",
    }
)
# Reported or known to be refused by the endpoint; never let one of these into SUPPORTED_FIELDS.
DENIED_FIELDS: frozenset[str] = frozenset(
    {
        "prompt_cache_key",
        "prompt_cache_retention",
        "web_search_options",
        "reasoning",
        "thinking",
        "parallel_tool_calls",
        "store",
        "metadata",
        "user",
        "service_tier",
        "safety_identifier",
        "logit_bias",
        "prediction",
        "verbosity",
        "functions",
        "function_call",
    }
)
_EFFORT_ALIASES = {"xhigh": "high", "max": "high"}  # OpenAI/Anthropic levels Gemini does not have
_GEMINI_3_OFF = frozenset({"none", "minimal", "disable"})  # efforts Gemini 3 models take as another level
_STREAM_OPTIONS = frozenset({"include_usage"})
_PROBE_MODEL = litellm_bridge.PROBE_GEMINI_MODEL  # litellm's answer for a Gemini model it has no entry for


def repair_fields(body: dict, upstream_model: str) -> list[str]:
    """Translate or drop the fields of a chat request that Gemini would refuse; returns one note per change."""
    notes: list[str] = []
    _translate_reasoning(body, notes)
    _translate_thinking(body, upstream_model, notes)
    _translate_functions(body, notes)
    _fix_reasoning_effort(body, upstream_model, notes)
    _clean_stream_options(body, notes)
    unsupported = _unsupported_for(upstream_model)
    for name in [n for n in body if n not in SUPPORTED_FIELDS or n in unsupported]:
        del body[name]
        notes.append(_drop_note(name, upstream_model, unsupported))
    return notes


def _translate_reasoning(body: dict, notes: list[str]) -> None:
    """OpenRouter/Responses style `reasoning: {"effort": X}` or `{"max_tokens": N}`."""
    reasoning = body.get("reasoning")
    if not isinstance(reasoning, dict):
        return
    effort, budget = reasoning.get("effort"), reasoning.get("max_tokens")
    if isinstance(effort, str) and "reasoning_effort" not in body:
        body["reasoning_effort"] = effort
        notes.append("translated reasoning.effort -> reasoning_effort")
    elif _is_int(budget) and _set_thinking_budget(body, budget):
        notes.append("translated reasoning.max_tokens -> extra_body.google.thinking_config.thinking_budget")
    else:
        return
    del body["reasoning"]


def _translate_thinking(body: dict, model: str, notes: list[str]) -> None:
    """Anthropic style `thinking: {"type": "enabled", "budget_tokens": N}`, for models litellm says can think."""
    thinking = body.get("thinking")
    budget = thinking.get("budget_tokens") if isinstance(thinking, dict) and thinking.get("type") == "enabled" else None
    if not _is_int(budget) or "thinking" not in _litellm_params(model) or not _set_thinking_budget(body, budget):
        return
    del body["thinking"]
    notes.append("translated thinking.budget_tokens -> extra_body.google.thinking_config.thinking_budget")


def _set_thinking_budget(body: dict, budget: int) -> bool:
    """Set extra_body.google.thinking_config unless the request already steers thinking; False when it does."""
    extra = body.get("extra_body", {})
    google = extra.get("google", {}) if isinstance(extra, dict) else None
    if not isinstance(google, dict) or "thinking_config" in google or "reasoning_effort" in body:
        return False
    google["thinking_config"] = {"thinking_budget": budget, "include_thoughts": True}
    body["extra_body"] = {**extra, "google": google}
    return True


def _translate_functions(body: dict, notes: list[str]) -> None:
    """The legacy `functions` / `function_call` pair -> `tools` / `tool_choice`."""
    functions = body.get("functions")
    if isinstance(functions, list) and "tools" not in body:
        body["tools"] = [{"type": "function", "function": f} for f in body.pop("functions")]
        notes.append("translated functions -> tools")
    call = body.get("function_call")
    name = call.get("name") if isinstance(call, dict) else None
    if "tool_choice" not in body and (call in ("none", "auto") or isinstance(name, str) and name):
        body["tool_choice"] = {"type": "function", "function": {"name": name}} if name else call
        del body["function_call"]
        notes.append("translated function_call -> tool_choice")


def _fix_reasoning_effort(body: dict, model: str, notes: list[str]) -> None:
    effort = body.get("reasoning_effort")
    if effort is None:
        return
    config = _thinking_config(body)
    if "thinking_budget" in config or "thinking_level" in config:
        del body["reasoning_effort"]
        notes.append("dropped field reasoning_effort (Gemini refuses it next to extra_body.google.thinking_config)")
        return
    if effort in _EFFORT_ALIASES:
        body["reasoning_effort"] = _EFFORT_ALIASES[effort]
        notes.append(f"mapped reasoning_effort {effort} -> {_EFFORT_ALIASES[effort]}")
    elif effort in _GEMINI_3_OFF and litellm_bridge.is_gemini_3_or_newer(model):
        # Gemini 3 cannot stop thinking and Pro has no "minimal": litellm's level for the effort, as natively.
        level = litellm_bridge.gemini_3_thinking_level(effort, model)
        if level == effort:
            return
        body["reasoning_effort"] = level
        notes.append(f"mapped reasoning_effort {effort} -> {level} (the nearest thinking level {model} takes)")


def _thinking_config(body: dict) -> dict:
    """extra_body.google.thinking_config, or {} when any step of the path is missing or not an object."""
    node: object = body
    for key in ("extra_body", "google", "thinking_config"):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def _clean_stream_options(body: dict, notes: list[str]) -> None:
    options = body.get("stream_options")
    if "stream_options" not in body or isinstance(options, dict) and options.keys() <= _STREAM_OPTIONS:
        return
    if not isinstance(options, dict):
        del body["stream_options"]
        notes.append("dropped field stream_options (not an object)")
        return
    for name in sorted(options.keys() - _STREAM_OPTIONS):
        del options[name]
        notes.append(f"dropped field stream_options.{name}")


def _drop_note(name: str, model: str, unsupported: frozenset[str]) -> str:
    if name in unsupported:
        return f"dropped field {name} (litellm lists no support for it on {model})"
    if name in DENIED_FIELDS or name in _openai_fields():
        return f"dropped field {name}"
    return f"dropped non-OpenAI field {name} (Gemini rejects unknown names)"


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _unsupported_for(model: str) -> frozenset[str]:
    """Supported fields litellm gives an unknown Gemini model but not this one."""
    return frozenset(SUPPORTED_FIELDS & (_litellm_params(_PROBE_MODEL) - _litellm_params(model)))


def _litellm_params(model: str) -> frozenset[str]:
    """What litellm translates for this model; a model it cannot place narrows nothing (the probe's list)."""
    found = litellm_bridge.gemini_supported_params(model)
    if found is None:
        found = litellm_bridge.gemini_supported_params(_PROBE_MODEL) if model != _PROBE_MODEL else None
    return found or frozenset()


def _openai_fields() -> frozenset[str]:
    return litellm_bridge.openai_chat_params()
