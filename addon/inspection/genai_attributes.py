"""An exchange as OpenTelemetry GenAI span attributes (pure: no mitmproxy, no OpenTelemetry import).

The names are the GenAI semantic conventions' (`gen_ai.*`, `server.*`, `error.type`); what only this proxy knows
goes under `translation_proxy.*`. Everything is read from the exchange record (formats/exchange.py) and the
request body, never from headers or the URL, so no credential can land in a span. Message content is added only
on request (`content_attributes`), in the conventions' JSON form: `gen_ai.system_instructions`,
`gen_ai.input.messages` ([{role, parts}]) and `gen_ai.output.messages` ([{role, parts, finish_reason}]).
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from ..formats.exchange import Exchange

NS = "translation_proxy."
Attributes = dict[str, Any]


class _Params(msgspec.Struct):
    """The request parameters the conventions name, as Chat Completions, Responses and Messages spell them;
    msgspec skips every other field (a long conversation is scanned, not decoded)."""

    temperature: Any = None
    top_p: Any = None
    top_k: Any = None
    max_tokens: Any = None
    max_completion_tokens: Any = None
    max_output_tokens: Any = None
    frequency_penalty: Any = None
    presence_penalty: Any = None
    seed: Any = None
    stop: Any = None
    stop_sequences: Any = None
    n: Any = None


_PARAMS = msgspec.json.Decoder(_Params)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def request_params(body: bytes) -> Attributes:
    """`gen_ai.request.*` for the parameters a request body sent; {} when it is not a JSON object."""
    try:
        p = _PARAMS.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return {}
    out: Attributes = {}
    for name, value in (
        ("temperature", p.temperature),
        ("top_p", p.top_p),
        ("top_k", p.top_k),
        ("frequency_penalty", p.frequency_penalty),
        ("presence_penalty", p.presence_penalty),
    ):
        if _number(value):
            out[f"gen_ai.request.{name}"] = float(value)
    limit = next((v for v in (p.max_tokens, p.max_completion_tokens, p.max_output_tokens) if _number(v)), None)
    if limit is not None:
        out["gen_ai.request.max_tokens"] = int(limit)
    if isinstance(p.seed, int) and not isinstance(p.seed, bool):
        out["gen_ai.request.seed"] = p.seed
    stop = p.stop if p.stop is not None else p.stop_sequences
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    if stops and all(isinstance(s, str) for s in stops):
        out["gen_ai.request.stop_sequences"] = stops
    if isinstance(p.n, int) and not isinstance(p.n, bool) and p.n != 1:
        out["gen_ai.request.choice.count"] = p.n
    return out


def provider_name(ex: Exchange) -> str:
    """`gen_ai.provider.name`: the conventions' name for where the request went."""
    provider = (ex.provider or "").lower()
    if ex.api == "vertex" or provider.startswith("vertex"):
        return "gcp.vertex_ai"
    if ex.api == "gemini" or ex.is_gemini or provider == "gemini":
        return "gcp.gemini"
    known = {"anthropic": "anthropic", "groq": "groq", "mistral": "mistral_ai", "deepseek": "deepseek", "xai": "x_ai"}
    return known.get(provider, provider or "openai")


def span_name(ex: Exchange) -> str:
    return f"chat {ex.upstream_model or ex.client_model or ''}".rstrip()


def start_attributes(ex: Exchange, host: str, port: int, flow_id: str, replica: str) -> Attributes:
    """What is known when the request goes upstream."""
    out: Attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider_name(ex),
        "gen_ai.request.model": ex.upstream_model or ex.client_model or "",
        "gen_ai.request.stream": ex.stream,
        "server.address": host,
        "server.port": port,
        NS + "client_model": ex.client_model or "",
        NS + "flow_id": flow_id,
        NS + "replica": replica,
        NS + "api": ex.api,
    }
    if ex.endpoint:
        out[NS + "endpoint"] = ex.endpoint
    if ex.fallback_of is not None:
        out[NS + "fallback.of"] = ex.fallback_of
        out[NS + "fallback.attempt"] = ex.attempt or 0
    if ex.replay:
        out[NS + "replay"] = int(ex.replay.get("n") or 1)
    return out


def response_head(raw: bytes | None) -> tuple[str | None, str | None]:
    """(id, model) of an upstream answer: a JSON body, or the first event of an SSE stream (OpenAI's `id` and
    `model`, Gemini's `responseId` and `modelVersion`); Nones when it says neither."""
    if not raw:
        return None, None
    text = raw.lstrip()
    if text.startswith(b"data:"):
        text = text[5:].split(b"\n", 1)[0]
    elif text.startswith(b"["):  # Gemini's streamGenerateContent without alt=sse: an array of answers
        return None, None
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    found_id, model = body.get("id", body.get("responseId")), body.get("model", body.get("modelVersion"))
    return (found_id if isinstance(found_id, str) else None), (model if isinstance(model, str) else None)


def _finish(reason: Any) -> str:
    return {"tool_calls": "tool_call", "function_call": "tool_call"}.get(str(reason), str(reason))


def usage_attributes(usage: Any) -> Attributes:
    """Token counts, as OpenAI's usage says them (Anthropic's input/output names too)."""
    if not isinstance(usage, dict):
        return {}
    out: Attributes = {}
    for name, keys in (
        ("input_tokens", ("prompt_tokens", "input_tokens")),
        ("output_tokens", ("completion_tokens", "output_tokens")),
    ):
        value = next((usage[k] for k in keys if isinstance(usage.get(k), int)), None)
        if value is not None:
            out[f"gen_ai.usage.{name}"] = value
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", usage.get("cache_read_input_tokens"))
    if isinstance(cached, int) and not isinstance(cached, bool):
        out["gen_ai.usage.cache_read.input_tokens"] = cached
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    if isinstance(reasoning, int) and not isinstance(reasoning, bool):
        out["gen_ai.usage.reasoning.output_tokens"] = reasoning
    return out


def error_type(ex: Exchange, status: int | None, failed: bool) -> str | None:
    """`error.type`: the HTTP status for an error answer, else what ended the exchange."""
    if status is not None and status >= 400:
        return str(status)
    if ex.timed_out:
        return "timeout"
    if ex.shutdown:
        return "shutdown"
    if failed:
        return "connection_error" if status is None else "stream_error"
    return None


def end_attributes(
    ex: Exchange, status: int | None, failed: bool, head: tuple[str | None, str | None], started: float
) -> Attributes:
    """What is known when the exchange ended: the answer, usage, session, the proxy's own findings."""
    out: Attributes = {}
    answer = ex.answer or {}
    response_id, model = head
    if response_id:
        out["gen_ai.response.id"] = response_id
    if model or (status == 200 and ex.upstream_model):
        out["gen_ai.response.model"] = model or ex.upstream_model
    if answer.get("finish_reason"):
        out["gen_ai.response.finish_reasons"] = [_finish(answer["finish_reason"])]
    out.update(usage_attributes(answer.get("usage")))
    if ex.stream and ex.t_first_chunk:
        out["gen_ai.response.time_to_first_chunk"] = max(0.0, ex.t_first_chunk - started)
    if status is not None:
        out["http.response.status_code"] = status
    if kind := error_type(ex, status, failed):
        out["error.type"] = kind
    session = ex.session or {}
    if session.get("id"):
        out["gen_ai.conversation.id"] = str(session["id"])
        out[NS + "session.turn"] = int(session.get("turn") or 0)
        if session.get("parent_id"):
            out[NS + "session.parent_id"] = str(session["parent_id"])
    calls = [c for c in answer.get("tool_calls") or () if isinstance(c, dict)]
    if calls:
        out[NS + "tool_calls"] = [str(c.get("name") or "") for c in calls]
    if ex.tool_checks:
        out[NS + "tool_call.findings"] = [str(f)[:300] for f in ex.tool_checks]
    if ex.repairs:
        out[NS + "repairs"] = [str(r) for r in ex.repairs]
    if ex.attempts:
        out[NS + "fallback.attempts"] = len(ex.attempts)
        out[NS + "fallback.models"] = [str(a.get("model") or "") for a in ex.attempts]
    if ex.answered_by:
        out[NS + "fallback.answered_by"] = ex.answered_by
    if ex.empty_answer:
        out[NS + "empty_answer"] = True
    return out


def scrub(attributes: Attributes, secrets: list[str]) -> Attributes:
    """The attributes with every secret (the upstream key, as it went on the wire) cut out of their strings."""
    if not secrets:
        return attributes

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            for secret in secrets:
                value = value.replace(secret, "[redacted]")
            return value
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return {name: clean(value) for name, value in attributes.items()}
