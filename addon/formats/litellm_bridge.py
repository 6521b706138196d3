"""litellm, the one place the proxy imports it: a library of facts (providers, prices, what Gemini accepts).

Importing litellm takes seconds of CPU (about 5 s here), so it never happens on the event loop: `warm()` starts
the import in a background thread (routing calls it when the addon loads) and returns a future that the event
loop can await (`asyncio.wrap_future(warm())`) while it goes on serving. The functions below are what the proxy
reads from litellm; each waits for that import if it has not finished, so a caller on the event loop checks
`ready()` first and awaits the future when it is not. Before the import, LITELLM_LOCAL_MODEL_COST_MAP is set (else
litellm downloads its price table at import); after it, litellm's debug output and loggers are quieted (it is a
library of facts here, its chatter would bury the proxy's log). tests/test_litellm_bridge.py checks each piece
against the installed litellm (tests/test_litellm_bridge_native.py the native transformation's), so an upgrade
that moves one fails there.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from types import ModuleType
from typing import Any, Literal, get_type_hints

logger = logging.getLogger(__name__)
QUIET_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx", "httpcore")
# litellm's answer for a Gemini model it has no entry for; warming asks it once so the first request does not.
PROBE_GEMINI_MODEL = "gemini-unknown"
PINNED_LITELLM = "1.110.2"  # the version these wrappers were written and tested against

_THREAD = "litellm import"
_lock = threading.Lock()
_future: Future[ModuleType] | None = None


def warm() -> Future[ModuleType]:
    """Start importing litellm in a background thread (once per process); the future of the module."""
    global _future
    with _lock:
        if _future is None:
            _future = Future()
            threading.Thread(target=_import_into, args=(_future,), name=_THREAD, daemon=True).start()
            atexit.register(_skip_finalizers_if_importing)
        return _future


def ready() -> bool:
    """True once litellm is imported: the functions below no longer wait (False too when its import failed)."""
    return _future is not None and _future.done() and _future.exception() is None


def state() -> str:
    """ "ready", "loading" (the import is under way, or not started) or "failed": what /health reports."""
    if _future is None or not _future.done():
        return "loading"
    return "failed" if _future.exception() is not None else "ready"


def _import_into(future: Future[ModuleType]) -> None:
    try:
        module = _import()
        # What every first Gemini request asks, computed here, off the loop. Before the result, too: litellm
        # imports lazily, and a daemon thread stopped mid-import at exit would hold an import lock that litellm's
        # finalizers then wait for forever. Once the future is done, this thread touches litellm no more.
        gemini_schema_fields()
        gemini_supported_params(PROBE_GEMINI_MODEL)
        openai_chat_params()
    except BaseException as e:  # the waiting requests get it (and answer 503); the log says it once
        logger.error(f"Cannot import litellm, so no chat request can be routed: {e!r}")
        future.set_exception(e)
        return
    future.set_result(module)


def _skip_finalizers_if_importing() -> None:
    """At exit while the import still runs (a SIGTERM in the first seconds): Python stops the daemon import thread
    wherever it is, possibly holding a module's import lock, and litellm's HTTP clients, finalized in the teardown
    that follows, import a module in `__del__` and would wait for that lock forever: the process would never exit.
    The proxy sends nothing through litellm's clients, so their finalizers have nothing to close: skip them."""
    if _future is None or _future.done():
        return
    for name, module in list(sys.modules.items()):
        if name != "litellm" and not name.startswith("litellm."):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, type) and value.__module__ == name and "__del__" in vars(value):
                value.__del__ = _no_finalizer  # type: ignore[attr-defined]  # `type` has no __del__; this class defines one


def _no_finalizer(self: object) -> None:
    pass


def _import() -> ModuleType:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    # Before the import too: litellm logs while it imports, through its own handler, at the root logger's level
    # (mitmproxy sets that to DEBUG).
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    import litellm

    litellm.suppress_debug_info = True
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return litellm


def _litellm() -> ModuleType:
    """The module, waiting for warm()'s import when it has not finished (starting it if nothing had)."""
    if threading.current_thread().name == _THREAD:  # warming: the import is done, the future not yet
        return _import()
    return warm().result()


def model_info(*names: str | None) -> Mapping[str, Any]:
    """The first of these names' entries in litellm's price/context table (`model_cost`), else {}."""
    costs = _litellm().model_cost
    return next((costs[n] for n in names if n and isinstance(costs.get(n), dict)), {})


def openai_compatible_providers() -> frozenset[str]:
    """Provider prefixes litellm serves through an OpenAI-compatible API (groq, deepseek, together_ai, ...)."""
    return frozenset(_litellm().openai_compatible_providers)


def provider_route(model: str) -> tuple[str, str, str | None] | None:
    """(upstream model, provider, api base or None) for a `provider/model` name; None when litellm cannot place it."""
    try:
        upstream, provider, _, base = _litellm().get_llm_provider(model)
    except Exception:  # litellm raises several types for names it cannot place
        return None
    return upstream, provider, base


@functools.cache
def gemini_supported_params(model: str) -> frozenset[str] | None:
    """The OpenAI request fields litellm translates for this Gemini model; None when litellm cannot place it."""
    try:
        found = _litellm().get_supported_openai_params(model, custom_llm_provider="gemini")
    except Exception:  # litellm raises assorted errors for odd names
        return None
    return frozenset(found or ())


@functools.cache
def openai_chat_params() -> frozenset[str]:
    """Every field of OpenAI's chat completion request, as litellm lists them."""
    return frozenset(_litellm().OPENAI_CHAT_COMPLETION_PARAMS)


@functools.cache
def gemini_schema_fields() -> frozenset[str]:
    """The keywords of Gemini's Schema proto: the fields of litellm's `Schema` TypedDict."""
    _litellm()
    from litellm.types.llms.vertex_ai import Schema

    return frozenset(get_type_hints(Schema))


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

    provider: Literal["vertex_ai", "gemini"] = "vertex_ai" if vertex else "gemini"
    try:
        # litellm types messages as its TypedDicts; these are client JSON, which litellm checks itself
        body = transform_request_body(messages, model, optional_params, provider, {}, None)  # type: ignore[arg-type]
    except Exception as e:  # litellm raises BadRequestError, ValueError and plain Exception for bad messages
        raise ValueError(_message(e)) from None
    return dict(body)


def is_gemini_3_or_newer(model: str) -> bool:
    """litellm's test for Gemini 3 (thinkingLevel instead of a budget; thought signatures required)."""
    from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import VertexGeminiConfig

    _litellm()
    return bool(VertexGeminiConfig._is_gemini_3_or_newer(model))


def gemini_3_thinking_level(effort: str, model: str) -> str:
    """The thinking level litellm sends Gemini 3 for an OpenAI reasoning_effort ("none" and "minimal" become
    "minimal" on Flash models, "low" on the others: Gemini 3 cannot stop thinking). ValueError when it has none."""
    _litellm()
    from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import VertexGeminiConfig

    try:
        config = VertexGeminiConfig._map_reasoning_effort_to_thinking_level(effort, model)
    except Exception as e:  # litellm raises its own error for an effort it does not know
        raise ValueError(_message(e)) from None
    return str(config["thinkingLevel"])


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


def anthropic_messages_adapter() -> Any:
    """litellm's Anthropic Messages <-> chat adapter (its experimental pass-through; litellm_formats.py uses it)."""
    _litellm()
    from litellm.llms.anthropic.messages.adapters.transformation import LiteLLMAnthropicMessagesAdapter

    return LiteLLMAnthropicMessagesAdapter()


def responses_completion_config() -> Any:
    """litellm's Responses <-> chat transformation (litellm_formats.py uses it)."""
    _litellm()
    from litellm.responses.litellm_completion_transformation.transformation import LiteLLMCompletionResponsesConfig

    return LiteLLMCompletionResponsesConfig
