"""An OpenAI chat exchange in words, for the views: a request as its conversation (messages, tools offered,
parameters), an answer (assembled by chat_assembly.py) as its text, tool calls, the tool-call check and the table
of what each chunk added. Every view that shows a chat request or answer shows it through here."""

from __future__ import annotations

from typing import Any

import orjson
from mitmproxy import http
from mitmproxy.contentviews import Metadata

from ...formats.exchange import Exchange
from .. import media_placeholders, toolcheck
from ..chat_assembly import Assembly, assemble_json, assemble_sse, call_fields, from_answer
from ..client_body import client_body
from .document import TEXT_LIMIT, clip, indent, loads, shorten

CHUNK_ROWS = 2000  # rows of the chunk table before it is cut


def chat_request(body: bytes | None) -> dict | None:
    """The body as an OpenAI chat request (an object with a `messages` list), or None when it is not one."""
    value = loads(body) if body else None
    return value if isinstance(value, dict) and isinstance(value.get("messages"), list) else None


def offered(metadata: Metadata, ex: Exchange) -> dict[str, dict] | None:
    """Tool schemas offered by the flow's request, or None when the request body is unavailable."""
    request = getattr(metadata.flow, "request", None)
    if not isinstance(request, http.Request):
        return None
    body = loads(client_body(ex) or request.get_content(strict=False) or b"")  # native: the request is Gemini's
    return None if body is None else toolcheck.tool_schemas(body)


def request(body: dict, client_model: object = None) -> list[str]:
    messages, tools = body["messages"], found if isinstance(found := body.get("tools"), list) else []
    lines = [f"chat request: {len(messages)} messages, {len(tools)} tools", ""]
    if placeholders := media_placeholders.find(body):
        advice = media_placeholders.advice(client_model or body.get("model"))
        lines += [f"⚠ {advice}", *indent("\n".join(placeholders), 2), ""]
    lines.append("messages:")
    tool_names: dict[str, str] = {}  # call id -> tool name, to label the tool results
    for i, message in enumerate(messages):
        lines += _message_lines(i, message, tool_names) if isinstance(message, dict) else [f"[{i}] {message!r}"]
    lines += ["", f"tools offered ({len(tools)}):"]
    lines += [line for tool in tools if isinstance(tool, dict) for line in _tool_lines(tool)]
    lines += ["", "parameters:"]
    return lines + [f"  {k}: {clip(v)}" for k, v in body.items() if k not in ("messages", "tools")]


def _message_lines(i: int, message: dict, tool_names: dict[str, str]) -> list[str]:
    header = f"[{i}] {message.get('role', '(no role)')}"
    if call_id := message.get("tool_call_id"):
        header += f": tool result for {call_id} ({tool_names.get(call_id, 'unknown call')})"
    elif message.get("name"):
        header += f" ({message['name']})"
    text = _content_text(message.get("content"))
    lines = [header + (f"  ({len(text)} chars)" if len(text) > TEXT_LIMIT else "")]
    lines += indent(shorten(text), 4)
    if reasoning := message.get("reasoning_content") or message.get("reasoning"):
        lines += ["    reasoning:", *indent(shorten(str(reasoning)), 6)]
    for call in message.get("tool_calls") or []:
        call = call_fields(call) if isinstance(call, dict) else {"id": "", "name": repr(call), "arguments": ""}
        tool_names[call["id"]] = call["name"]
        lines.append(f"    tool call {call['name']} ({call['id']}):")
        lines += indent(_pretty_args(call["arguments"], cut=True), 6)
    return lines


def _content_text(content: Any) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return "\n".join(map(_part_text, content)) if isinstance(content, list) else clip(content)


def _part_text(part: Any) -> str:
    if not isinstance(part, dict):
        return clip(part)
    if isinstance(part.get("text"), str):
        return part["text"]
    detail = part.get(part.get("type", ""), "")
    url = detail.get("url", "") if isinstance(detail, dict) else ""
    return f"[{part.get('type', 'part')}{': ' + clip(url, 80) if url else ''}]"


def _tool_lines(tool: dict) -> list[str]:
    fn = tool["function"] if isinstance(tool.get("function"), dict) else tool
    params = parameters if isinstance(parameters := fn.get("parameters"), dict) else {}
    props = properties if isinstance(properties := params.get("properties"), dict) else {}
    required = names if isinstance(names := params.get("required"), list) else []
    args = ", ".join(_param(name, schema, name in required) for name, schema in props.items())
    description = str(fn.get("description") or "").strip().split("\n")[0]
    lines = [f"  {fn.get('name', '(no name)')}({args})"]
    return lines + [f"      {clip(description, 120)}"] if description else lines


def _param(name: str, schema: Any, required: bool) -> str:
    return f"{name}: {_type_name(schema)}*" if required else f"{name}?: {_type_name(schema)}"


def _type_name(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "any"
    if "enum" in schema and isinstance(schema["enum"], list):
        return clip("|".join(clip(v) for v in schema["enum"]), 60)
    if "const" in schema:
        return clip(schema["const"])
    variants = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(variants, list):
        return "|".join(_type_name(v) for v in variants)
    kind = schema.get("type")
    if kind == "array":
        return f"{_type_name(schema.get('items'))}[]"
    if isinstance(kind, list):
        return "|".join(map(str, kind))
    return str(kind) if kind else str(schema.get("$ref", "any")).rsplit("/", 1)[-1]


def response(asm: Assembly, ex: Exchange, offered: dict[str, dict] | None, title: str) -> list[str]:
    """The answer, the tool-call check and the chunk table. `ex` is the record of the flow whose stored body this
    is (chunk_times, error, body_truncated); an empty Exchange() otherwise."""
    stored = ex.answer if ex.body_truncated else None
    answer = from_answer(stored) if isinstance(stored, dict) else asm
    lines = [title, *_status_lines(asm, ex, answer is not asm)]
    lines += _answer_lines(answer) + _check_lines(answer, offered)
    return lines + (["", *_chunk_table(asm, ex.chunk_times)] if asm.chunks else [])


def upstream(raw: bytes, offered: dict[str, dict] | None) -> list[str]:
    """The upstream's answer assembled, then its raw events (or its raw body when it is not SSE)."""
    title = "upstream answer, before the proxy rewrote it"
    asm = assemble_sse(raw) if raw.lstrip()[:1] not in (b"{", b"[") else None
    if asm and asm.chunks:
        events = [f"[{i}] {c.raw.decode('utf-8', 'replace').rstrip()}" for i, c in enumerate(asm.chunks)]
        return [*response(asm, Exchange(), offered, title), "", "raw events:", *events]
    try:
        lines = response(assemble_json(raw), Exchange(), offered, title + " (JSON)")
    except ValueError as e:  # an upstream error body, say
        lines = [f"upstream body, before the proxy rewrote it: {e}"]
    return [*lines, "", "raw body:", raw.decode("utf-8", "replace")]


def _status_lines(asm: Assembly, ex: Exchange, from_stored: bool) -> list[str]:
    lines = []
    if ex.body_truncated:
        source = "is flow.metadata['llm']['answer']" if from_stored else "is partial (no stored answer)"
        lines.append(f"the stored body was cut at the cap; the answer below {source}")
    elif asm.chunks and not asm.done:
        lines.append("stream ended without [DONE] — cut or incomplete")
    if ex.error:
        lines.append(f"error: {ex.error}")
    return lines + [f"error in the body: {e}" for e in asm.errors]


def _answer_lines(asm: Assembly) -> list[str]:
    lines = [f"model: {asm.model}"] if asm.model else []
    lines += [f"finish_reason: {asm.finish_reason}", f"usage: {clip(asm.usage)}"]
    if asm.reasoning:
        lines += ["", "reasoning:", *indent(asm.reasoning, 2)]
    if asm.content:
        lines += ["", "text:", *indent(asm.content, 2)]
    for i, call in enumerate(asm.tool_calls):
        lines += ["", f"tool call [{i}] {call['name']} ({call['id'] or 'no id'}):"]
        lines += indent(_pretty_args(call["arguments"], cut=False), 2)
    return lines


def _check_lines(asm: Assembly, offered: dict[str, dict] | None) -> list[str]:
    if not asm.tool_calls:
        return []
    if offered is None:
        return ["", "tool-call check: skipped, the request body is not available"]
    findings = toolcheck.check_tool_calls(asm.tool_calls, offered)
    if not findings:
        fit = "the call fits" if len(asm.tool_calls) == 1 else f"all {len(asm.tool_calls)} calls fit"
        return ["", f"tool-call check: {fit} the offered tools"]
    return ["", f"tool-call check: {toolcheck.HEADLINE}:", *(f"  - {f}" for f in findings)]


def _chunk_table(asm: Assembly, times: list) -> list[str]:
    rows = [f"chunks ({len(asm.chunks)}):", f"{'#':>5}  {'time':>8}  added"]
    for i, chunk in enumerate(asm.chunks[:CHUNK_ROWS]):
        at = f"{times[i]:.3f}s" if i < len(times) and isinstance(times[i], int | float) else ""
        rows.append(f"{i:>5}  {at:>8}  {chunk.added}")
    if len(asm.chunks) > CHUNK_ROWS:
        rows.append(f"... ({len(asm.chunks) - CHUNK_ROWS} more chunks)")
    return rows


def _pretty_args(arguments: str, *, cut: bool) -> str:
    """Tool-call arguments as indented JSON; with `cut`, long strings in them shortened."""
    try:
        args = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        return f"(not valid JSON) {shorten(arguments) if cut else arguments}"
    return orjson.dumps(_shorten_strings(args) if cut else args, option=orjson.OPT_INDENT_2).decode()


def _shorten_strings(value: Any) -> Any:
    if isinstance(value, str):
        return shorten(value)
    if isinstance(value, dict):
        return {k: _shorten_strings(v) for k, v in value.items()}
    return [_shorten_strings(v) for v in value] if isinstance(value, list) else value
