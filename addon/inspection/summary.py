"""Short human texts about one LLM exchange: the request summary, the answer, and the flow's comment line."""

from __future__ import annotations

import orjson

from ..formats.exchange import Exchange
from . import turn_text

LONG_STRING = 10_000
MIN_RATE_SPAN = 0.1  # seconds of streaming below which tokens per second says nothing (the answer came at once)


def shorten(value: object, limit: int = LONG_STRING) -> object:
    """The value with every string longer than `limit` cut to its start and "... (N chars)"."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:200]}... ({len(value):,} chars)"
    if isinstance(value, list):
        return [shorten(v, limit) for v in value]
    if isinstance(value, dict):
        return {k: shorten(v, limit) for k, v in value.items()}
    return value


def summarize_request(content: bytes, unchanged: int = 0) -> str:
    """The request as the log shows it: long strings shortened; tools: the first in full, the rest by name;
    the first `unchanged` messages (the part of a session's previous turn that is repeated) as a count."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return f"  request: {len(content):,} bytes, not JSON"
    if not isinstance(body, dict):
        return "  request: not an object"
    if unchanged and isinstance(body.get("messages"), list):
        body["messages"] = [f"({unchanged} earlier messages as in the previous turn)", *body["messages"][unchanged:]]
    tools = body.pop("tools", None)
    lines = ["  request: " + orjson.dumps(shorten(body), option=orjson.OPT_INDENT_2).decode()]
    if isinstance(tools, list) and tools:
        lines.append(f"  tools ({len(tools)}): first in full:")
        lines.append(orjson.dumps(shorten(tools[0]), option=orjson.OPT_INDENT_2).decode())
        names = [str(((t or {}).get("function") or {}).get("name", "?")) for t in tools[1:] if isinstance(t, dict)]
        if names:
            lines.append("  then: " + ", ".join(names))
    return "\n".join(lines)


def summarize_answer(ex: Exchange) -> str:
    answer = ex.answer or {}
    lines = []
    if answer.get("reasoning"):
        lines.append(f"  reasoning: {shorten(answer['reasoning'], 2000)}")
    if answer.get("content"):
        lines.append(f"  answer: {shorten(answer['content'], 2000)}")
    for call in answer.get("tool_calls") or []:
        lines.append(f"  tool call {call.get('name')} ({call.get('id')}): {shorten(call.get('arguments'), 2000)}")
    lines.append(f"  finish: {answer.get('finish_reason')}, usage: {answer.get('usage')}")
    return "\n".join(lines)


def price(ex: Exchange, usage: dict) -> float | None:
    """The exchange's cost from litellm's price table; None when a price is unknown (never guessed)."""
    price_in, price_out = ex.price_in, ex.price_out
    if price_in is None or price_out is None:
        return None
    # Cached prompt tokens at the cache price when litellm's table has one (the native path records it).
    details = usage.get("prompt_tokens_details")
    cached = (details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    price_cached = ex.price_cached
    if price_cached is None or not isinstance(cached, int):
        cached, price_cached = 0, 0.0
    cost = (usage.get("prompt_tokens", 0) - cached) * price_in + cached * price_cached
    return cost + usage.get("completion_tokens", 0) * price_out


def comment_line(ex: Exchange) -> str:
    """e.g. `s:3f2a #7 | local-model -> gemini-2.5-flash | 1,204 in / 310 out tokens | $0.0004 | ...`"""
    parts = [f"{ex.client_model} -> {ex.upstream_model}"]
    answer = ex.answer or {}
    usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else None
    if usage:
        parts.append(f"{usage.get('prompt_tokens', 0):,} in / {usage.get('completion_tokens', 0):,} out tokens")
        cost = price(ex, usage)
        if cost is not None:
            parts.append(f"${cost:.4f}" if cost >= 0.0001 else f"${cost:.6f}")
    start, first, end = ex.t_request, ex.t_first_chunk, ex.t_end
    if start and first:
        parts.append(f"first chunk {(first - start) * 1000:,.0f} ms")
    if usage and first and end and end - first >= MIN_RATE_SPAN and usage.get("completion_tokens"):
        parts.append(f"{usage['completion_tokens'] / (end - first):,.0f} tok/s")
    calls = answer.get("tool_calls") or []
    if calls:
        parts.append(f"{len(calls)} tool call{'s' if len(calls) > 1 else ''}")
    if findings := ex.tool_checks:
        parts.append(tool_check_note(findings))
    if attempts := ex.attempts:  # fallbacks.py: e.g. "tried gemini-2.5-flash 503, gemini-2.0-flash 200"
        parts.append("tried " + ", ".join(f"{a.get('upstream_model')} {a.get('status') or 'failed'}" for a in attempts))
    if ex.error:
        parts.append(f"error: {str(ex.error)[:120]}")
    if note := turn_text.comment_note(ex):
        parts.append(note)
    if ex.fallback_of:
        parts.insert(0, f"fallback attempt {ex.attempt} for {ex.fallback_of}")
    return turn_text.comment_prefix(ex) + " | ".join(parts)


def tool_check_note(findings: list[str]) -> str:
    """The first finding of the tool-call check, and how many more there are."""
    first = str(findings[0])
    first = first if len(first) <= 120 else first[:119] + "…"
    more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
    return f"tool-call problem: {first}{more}"
