"""Every litellm internal the proxy uses, wrapped in one place, so that a litellm upgrade fails here, loudly.

litellm is imported lazily (it takes seconds): callers import it at start-up off the event loop, or per request
once it is loaded. Each wrapped piece has its own test (tests/test_litellm_bridge_native.py).
"""

from __future__ import annotations

import os
from typing import Any

PINNED_LITELLM = "1.110.2"  # the version these wrappers were written and tested against


def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else importing litellm fetches prices online
    import litellm

    litellm.suppress_debug_info = True
    return litellm


# --- Gemini native transformation ---
# OpenAI chat body -> Gemini generateContent body, with litellm's own code: its parameter mapping
# (GoogleAIStudioGeminiConfig / VertexGeminiConfig.map_openai_params: tools -> functionDeclarations, tool_choice,
# response_format -> responseSchema, stop, seed, temperature, max_tokens, reasoning_effort -> thinkingConfig)
# and its request-body transformation (transform_request_body: messages -> contents, system_instruction,
# thought signatures from `__thought__` tool-call ids). Not its sync_transform_request_body: that one may create
# context caches over HTTP. Media URLs that litellm would download are refused before it sees them
# (gemini/native_request.py), so nothing here touches the network.


def gemini_config(vertex: bool) -> Any:
    """litellm's Gemini config object: Google AI Studio's, or Vertex AI's."""
    _litellm()
    if vertex:
        from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import VertexGeminiConfig

        return VertexGeminiConfig()
    from litellm.llms.gemini.chat.transformation import GoogleAIStudioGeminiConfig

    return GoogleAIStudioGeminiConfig()


def gemini_generation_params(params: dict[str, Any], model: str, vertex: bool) -> dict[str, Any]:
    """The OpenAI parameters (all but messages) as litellm's optional_params for Gemini; unknown ones dropped.

    Raises ValueError for values Gemini cannot take (litellm's own message, e.g. an unknown reasoning_effort).
    """
    try:
        return gemini_config(vertex).map_openai_params(dict(params), {}, model, drop_params=True)
    except Exception as e:  # litellm raises its own exception types (UnsupportedParamsError and the like)
        raise ValueError(_message(e)) from None


def gemini_request_body(
    messages: list[dict[str, Any]], optional_params: dict[str, Any], model: str, vertex: bool
) -> dict[str, Any]:
    """litellm's generateContent body (contents, system_instruction, tools, toolConfig, generationConfig)."""
    from litellm.llms.vertex_ai.gemini.transformation import transform_request_body

    provider = "vertex_ai" if vertex else "gemini"
    try:
        body = transform_request_body(messages, model, optional_params, provider, {}, None)
    except Exception as e:  # litellm raises BadRequestError, ValueError and plain Exception for bad messages
        raise ValueError(_message(e)) from None
    return dict(body)


def is_gemini_3_or_newer(model: str) -> bool:
    """litellm's test for Gemini 3 (thinkingLevel instead of a budget; thought signatures required)."""
    from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import VertexGeminiConfig

    _litellm()
    return bool(VertexGeminiConfig._is_gemini_3_or_newer(model))


def supports_reasoning(model: str) -> bool:
    """Does litellm's model table say this Gemini model thinks (and so can send thought summaries)?"""
    litellm = _litellm()
    if is_gemini_3_or_newer(model):
        return True
    try:
        return bool(litellm.supports_reasoning(model=model, custom_llm_provider="gemini"))
    except Exception:  # litellm raises for models its table does not know
        return False


def _message(error: Exception) -> str:
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    return str(text).removeprefix("litellm.BadRequestError: ").strip()


# --- Provider hosts and prices (capture mode) ---
# Read in a thread at start-up: the first call imports litellm.


def provider_hosts() -> dict[str, str]:
    """Host -> provider for the providers litellm knows by URL: its OpenAI-compatible endpoints (no provider name
    given: the host stands in) and its JSON-configured providers (llms/openai_like/providers.json)."""
    _litellm()
    from pathlib import Path
    from urllib.parse import urlsplit

    import orjson
    from litellm import constants

    hosts = {
        entry.split("/")[0].lower(): entry.split("/")[0].lower() for entry in constants.openai_compatible_endpoints
    }
    table = Path(constants.__file__).parent / "llms" / "openai_like" / "providers.json"
    if table.is_file():
        for name, spec in orjson.loads(table.read_bytes()).items():
            if isinstance(spec, dict) and isinstance(spec.get("base_url"), str):
                hosts[(urlsplit(spec["base_url"]).hostname or "").lower()] = name
    hosts.pop("", None)
    return hosts


def model_costs() -> dict[str, dict[str, Any]]:
    """litellm's price table (model -> input_cost_per_token, output_cost_per_token, cache_read_input_token_cost)."""
    return _litellm().model_cost
