"""Short human texts about one LLM exchange: the request summary, the answer, the repairs' line and the flow's
comment line."""

from __future__ import annotations

import re
from collections.abc import Iterable

import orjson

from ..formats.exchange import Exchange
from . import turn_text

LONG_STRING = 10_000
EMPTY_NOTE = "empty answer (no text, no tool calls)"
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


def summarize_request(content: bytes, unchanged: int = 0, called: Iterable[str] = ()) -> str:
    """The request as the log shows it: long strings shortened; tools: those the answer `called` in full, the rest
    by name; the first `unchanged` messages (the part of a session's previous turn that is repeated) as a count."""
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
        wanted = set(called)
        shown = [t for t in tools if isinstance(t, dict) and _tool_name(t) in wanted]
        names = [_tool_name(t) for t in tools if isinstance(t, dict) and t not in shown]
        if shown:
            lines.append(f"  tools ({len(tools)}): the one{'s' if len(shown) > 1 else ''} called, in full:")
            lines += [orjson.dumps(shorten(tool), option=orjson.OPT_INDENT_2).decode() for tool in shown]
            lines.append("  and: " + ", ".join(names) if names else "")
        else:
            lines.append(f"  tools ({len(tools)}), none called: " + ", ".join(names))
    return "\n".join(line for line in lines if line)


def _tool_name(tool: dict) -> str:
    return str((tool.get("function") or {}).get("name", "?"))


def indented(label: str, text: object) -> str:
    """`  label: text`, the text's further lines indented under it, so a multi-line answer keeps the block's shape."""
    return f"  {label}: " + str(text).replace("\n", "\n      ")


def summarize_answer(ex: Exchange) -> str:
    answer = ex.answer or {}
    lines = []
    if answer.get("reasoning"):
        lines.append(indented("reasoning", shorten(answer["reasoning"], 2000)))
    if answer.get("content"):
        lines.append(indented("answer", shorten(answer["content"], 2000)))
    for call in answer.get("tool_calls") or []:
        lines.append(indented(f"tool call {call.get('name')} ({call.get('id')})", shorten(call.get("arguments"), 2000)))
    usage = orjson.dumps(answer.get("usage"), default=str).decode()
    lines.append(f"  finish: {answer.get('finish_reason')}, usage: {usage}")
    return "\n".join(lines)


_PER_CALL = re.compile(r"^(?P<what>.+ (?:for|of)) call (?P<call>\S+)$")  # `restored thought signature for call X`
# A repair of one tool's schema or one streamed tool call: `tools[3] bash: removed $schema; removed ...`.
_PER_ITEM = re.compile(r"^(?:tools\[\d+\] (?P<tool>[^:]*)|tool call (?P<call>\d+)): (?P<what>.+)$")


def repair_line(repairs: list[str]) -> str | None:
    """All of an exchange's repairs on one line, those of each tool schema and each streamed call counted, e.g.
    `  repaired: 10 tool schemas (removed $schema, additionalProperties); dropped field prompt_cache_key`; the
    details stay in the flow (its exchange record's `repairs`)."""
    groups: dict[str, tuple[set[str], dict[str, None]]] = {}  # "tool schema"/"tool call" -> (items, what was done)
    rest: dict[str, list[str]] = {}  # what was done -> the calls it was done for (none: said as it is)
    for repair in repairs:
        found = _PER_ITEM.match(repair)
        if found is None:
            per_call = _PER_CALL.match(repair)
            what, call = (per_call["what"], per_call["call"]) if per_call else (repair, None)
            rest.setdefault(what, []).extend([call] if call else [])
            continue
        kind, item = ("tool schema", found["tool"]) if found["tool"] is not None else ("tool call", found["call"])
        items, done = groups.setdefault(kind, (set(), {}))
        items.add(item)
        done.update(dict.fromkeys(found["what"].split("; ")))
    parts = [f"{turn_text.plural(len(items), kind)} ({_what(done)})" for kind, (items, done) in groups.items()]
    parts += [_calls_note(what, calls) for what, calls in rest.items()]
    return f"  repaired: {'; '.join(parts)}" if parts else None


def _calls_note(what: str, calls: list[str]) -> str:
    """`restored thought signature for call call_1`, or for several: `... for 3 calls (call_1, call_2, call_3)`."""
    if len(calls) <= 1:
        return f"{what} call {calls[0]}" if calls else what
    shown = ", ".join(calls[:3]) + (", …" if len(calls) > 3 else "")
    return f"{what} {len(calls)} calls ({shown})"


def _what(done: dict[str, None]) -> str:
    """`removed $schema, additionalProperties; inlined $ref #/defs/x`: the same verb told once."""
    removed = [what.removeprefix("removed ") for what in done if what.startswith("removed ")]
    others = [what for what in done if not what.startswith("removed ")]
    text = "; ".join(([f"removed {', '.join(removed)}"] if removed else []) + others)
    return text if len(text) <= 200 else text[:199] + "…"


def price(ex: Exchange, usage: dict) -> float | None:
    """The exchange's cost from litellm's price table; None when a price is unknown (never guessed)."""
    price_in, price_out = ex.price_in, ex.price_out
    if price_in is None or price_out is None:
        return None
    # Cached prompt tokens (either path reports them when Gemini does) at the cache price when litellm has one.
    cached, price_cached = cached_tokens(usage), ex.price_cached
    if price_cached is None:
        cached, price_cached = 0, 0.0
    cost = (usage.get("prompt_tokens", 0) - cached) * price_in + cached * price_cached
    return cost + usage.get("completion_tokens", 0) * price_out


def cached_tokens(usage: dict) -> int:
    """usage.prompt_tokens_details.cached_tokens, 0 when absent or not a count."""
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    return cached if isinstance(cached, int) and not isinstance(cached, bool) else 0


def comment_line(ex: Exchange) -> str:
    """What went wrong and what was called first, then the model and the numbers, the session's tag last, e.g.
    `2 tool calls: read, bash | local-model -> gemini-2.5-flash | 1,204 in / 310 out tokens | $0.0004 | ... | s:3f2a #7`:
    mitmweb's Comment column starts about 120 px wide, so what a person looks for comes first."""
    answer = ex.answer or {}
    parts = [f"error: {str(ex.error)[:120]}"] if ex.error else []
    if ex.empty_answer:
        parts.append(EMPTY_NOTE)
    if findings := ex.tool_checks:
        parts.append(tool_check_note(findings))
    if calls := answer.get("tool_calls") or []:
        parts.append(tool_calls_note(calls))
    if ex.media_placeholders:
        parts.append("attachment sent as text by opencode: set the model's modalities")
    parts.append(f"{ex.client_model} -> {ex.upstream_model}")
    usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else None
    if usage:
        cached = cached_tokens(usage)
        tokens_in = f"{usage.get('prompt_tokens', 0):,} in" + (f" ({cached:,} cached)" if cached else "")
        parts.append(f"{tokens_in} / {usage.get('completion_tokens', 0):,} out tokens")
        cost = price(ex, usage)
        if cost is not None:
            parts.append(f"${cost:.4f}" if cost >= 0.0001 else f"${cost:.6f}")
    start, first, end = ex.t_request, ex.t_first_chunk, ex.t_end
    if start and first:
        parts.append(f"first chunk {(first - start) * 1000:,.0f} ms")
    if usage and first and end and end - first >= MIN_RATE_SPAN and usage.get("completion_tokens"):
        parts.append(f"{usage['completion_tokens'] / (end - first):,.0f} tok/s")
    if attempts := ex.attempts:  # fallbacks.py: e.g. "tried gemini-2.5-flash 503, gemini-2.0-flash 200"
        parts.append("tried " + ", ".join(_attempt_note(a) for a in attempts))
    if note := turn_text.comment_note(ex):
        parts.append(note)
    if session := turn_text.comment_prefix(ex).removesuffix(" | "):  # the session's part, as sessions tell it
        parts.append(session)
    if ex.fallback_of:
        parts.insert(0, f"fallback attempt {ex.attempt} for {ex.fallback_of}")
    if ex.recorded:  # offline_replay.py: the answer came from a --server-replay file
        parts.insert(0, "recorded answer")
    if replay := ex.replay:  # request/replay.py: mitmweb's Replay, mitmdump -C, llm.resend
        parts.insert(0, f"replay {replay.get('n', 1)}")
    return " | ".join(parts)


def tool_calls_note(calls: list[dict]) -> str:
    """`2 tool calls: read, bash` (the first four names)."""
    names = [str(call["name"]) for call in calls if isinstance(call, dict) and call.get("name")]
    more = f" +{len(names) - 4}" if len(names) > 4 else ""
    return f"{turn_text.plural(len(calls), 'tool call')}" + (f": {', '.join(names[:4])}{more}" if names else "")


def _attempt_note(attempt: dict) -> str:
    empty = " (empty)" if attempt.get("empty") else ""
    return f"{attempt.get('upstream_model')} {attempt.get('status') or 'failed'}{empty}"


def tool_check_note(findings: list[str]) -> str:
    """The first finding of the tool-call check, and how many more there are."""
    first = str(findings[0])
    first = first if len(first) <= 120 else first[:119] + "…"
    more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
    return f"tool-call problem: {first}{more}"
