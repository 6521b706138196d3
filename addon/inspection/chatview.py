"""mitmproxy contentviews for OpenAI chat completions.

`ChatView` ("LLM chat") shows a request as the conversation (messages, tools offered, other
parameters) and a response (JSON or SSE) as the assembled assistant answer, the tool-call check
and a table of the chunks. `LLMUpstreamRawView` ("LLM upstream raw", chosen by hand) shows the
upstream's stream before the proxy rewrote it, from the exchange record's `upstream_raw` (formats/exchange.py).
The entry script registers both with `contentviews.add(...)`.
"""

from __future__ import annotations

from typing import Any

import orjson
from mitmproxy import http
from mitmproxy.contentviews import Contentview, Metadata

from ..formats.exchange import Exchange
from . import media_placeholders, toolcheck, turn_text
from .chat_assembly import Assembly, assemble_json, assemble_sse, call_fields, from_answer
from .client_body import client_body

TEXT_LIMIT, HEAD, TAIL = 2000, 1200, 600  # request strings longer than TEXT_LIMIT keep HEAD + TAIL
CHUNK_ROWS = 2000  # rows of the chunk table before it is cut
NOT_CHAT = "Not an OpenAI chat completion request or response."


class ChatView(Contentview):
    name = "LLM chat"
    syntax_highlight = "none"

    def prettify(self, data: bytes, metadata: Metadata) -> str:
        kind = _kind(data, metadata)
        llm = _llm(metadata)
        if kind == "request":
            return "\n".join([*turn_text.view_lines(llm), render_request(orjson.loads(data), llm.client_model)])
        if kind == "json":
            return render_response(assemble_json(data), llm, _offered(metadata), "chat completion (JSON)")
        if kind == "sse":
            return render_response(assemble_sse(data), llm, _offered(metadata), "chat completion stream")
        if kind == "stored":
            title = "chat completion: response body not stored; answer from flow.metadata['llm']['answer']"
            return render_response(from_answer(llm.answer or {}), llm, _offered(metadata), title)
        raise ValueError(NOT_CHAT)

    def render_priority(self, data: bytes, metadata: Metadata) -> float:
        return 2.0 if _kind(data, metadata) else -1.0


class LLMUpstreamRawView(Contentview):
    name = "LLM upstream raw"
    syntax_highlight = "none"

    def prettify(self, data: bytes, metadata: Metadata) -> str:
        raw = _llm(metadata).upstream_raw
        if not raw:
            raise ValueError("This flow has no upstream_raw in flow.metadata['llm'].")
        return render_upstream(raw, _offered(metadata))

    def render_priority(self, data: bytes, metadata: Metadata) -> float:
        return -1.0


def render_upstream(raw: bytes, offered: dict[str, dict] | None) -> str:
    """The upstream's answer assembled, then its raw events (or its raw body when it is not SSE)."""
    title = "upstream answer, before the proxy rewrote it"
    asm = assemble_sse(raw) if raw.lstrip()[:1] not in (b"{", b"[") else None
    if asm and asm.chunks:
        events = [f"[{i}] {c.raw.decode('utf-8', 'replace').rstrip()}" for i, c in enumerate(asm.chunks)]
        return "\n".join([render_response(asm, Exchange(), offered, title), "", "raw events:", *events])
    try:
        text = render_response(assemble_json(raw), Exchange(), offered, title + " (JSON)")
    except ValueError as e:  # an upstream error body, say
        text = f"upstream body, before the proxy rewrote it: {e}"
    return f"{text}\n\nraw body:\n{raw.decode('utf-8', 'replace')}"


# --- what the data is -------------------------------------------------------------------------


def _kind(data: bytes, metadata: Metadata) -> str | None:
    """ "request", "json", "sse", "stored" (empty response body, answer in metadata) or None."""
    head = data[:64].lstrip()
    if not head:
        stored = isinstance(metadata.http_message, http.Response) and _llm(metadata).answer
        return "stored" if isinstance(stored, dict) else None
    if not head.startswith(b"{"):
        sse = metadata.content_type == "text/event-stream" or head.startswith((b"data:", b":"))
        return "sse" if sse and (b"chat.completion.chunk" in data or _chat_path(metadata)) else None
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if isinstance(body, dict) and isinstance(body.get("messages"), list):
        return "request"
    if isinstance(body, dict) and isinstance(body.get("choices"), list):
        return "json"
    return None


def _chat_path(metadata: Metadata) -> bool:
    request = getattr(metadata.flow, "request", None) or metadata.http_message
    return isinstance(request, http.Request) and request.path.split("?")[0].endswith("/chat/completions")


def _llm(metadata: Metadata) -> Exchange:
    """The flow's exchange record; an empty one for data without a flow of this proxy."""
    flow = metadata.flow
    return (Exchange.find(flow) if flow is not None else None) or Exchange()


def _offered(metadata: Metadata) -> dict[str, dict] | None:
    """Tool schemas offered by the flow's request, or None when the request body is unavailable."""
    request = getattr(metadata.flow, "request", None)
    if not isinstance(request, http.Request):
        return None
    client = client_body(_llm(metadata))  # the native path: the flow's request is Gemini's body
    try:
        return toolcheck.tool_schemas(orjson.loads(client or request.get_content(strict=False) or b""))
    except orjson.JSONDecodeError:
        return None


# --- requests ---------------------------------------------------------------------------------


def render_request(body: dict, client_model: object = None) -> str:
    messages, tools = body["messages"], offered if isinstance(offered := body.get("tools"), list) else []
    lines = [f"chat request: {len(messages)} messages, {len(tools)} tools", ""]
    if found := media_placeholders.find(body):
        lines += [
            f"⚠ {media_placeholders.advice(client_model or body.get('model'))}",
            *_indent("\n".join(found), 2),
            "",
        ]
    lines.append("messages:")
    tool_names: dict[str, str] = {}  # call id -> tool name, to label the tool results
    for i, message in enumerate(messages):
        lines += _message_lines(i, message, tool_names) if isinstance(message, dict) else [f"[{i}] {message!r}"]
    lines += ["", f"tools offered ({len(tools)}):"]
    lines += [line for tool in tools if isinstance(tool, dict) for line in _tool_lines(tool)]
    lines += ["", "parameters:"]
    lines += [f"  {k}: {_one_line(v)}" for k, v in body.items() if k not in ("messages", "tools")]
    return "\n".join(lines)


def _message_lines(i: int, message: dict, tool_names: dict[str, str]) -> list[str]:
    header = f"[{i}] {message.get('role', '(no role)')}"
    if call_id := message.get("tool_call_id"):
        header += f": tool result for {call_id} ({tool_names.get(call_id, 'unknown call')})"
    elif message.get("name"):
        header += f" ({message['name']})"
    text = _content_text(message.get("content"))
    lines = [header + (f"  ({len(text)} chars)" if len(text) > TEXT_LIMIT else "")]
    lines += _indent(_shorten(text), 4)
    if reasoning := message.get("reasoning_content") or message.get("reasoning"):
        lines += ["    reasoning:", *_indent(_shorten(str(reasoning)), 6)]
    for call in message.get("tool_calls") or []:
        call = call_fields(call) if isinstance(call, dict) else {"id": "", "name": repr(call), "arguments": ""}
        tool_names[call["id"]] = call["name"]
        lines.append(f"    tool call {call['name']} ({call['id']}):")
        lines += _indent(_pretty_args(call["arguments"], shorten=True), 6)
    return lines


def _content_text(content: Any) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        return _one_line(content)
    return "\n".join(_part_text(part) for part in content)


def _part_text(part: Any) -> str:
    if not isinstance(part, dict):
        return _one_line(part)
    if isinstance(part.get("text"), str):
        return part["text"]
    detail = part.get(part.get("type", ""), "")
    url = detail.get("url", "") if isinstance(detail, dict) else ""
    return f"[{part.get('type', 'part')}{': ' + _clip(url, 80) if url else ''}]"


def _tool_lines(tool: dict) -> list[str]:
    fn = tool["function"] if isinstance(tool.get("function"), dict) else tool
    params = parameters if isinstance(parameters := fn.get("parameters"), dict) else {}
    props = properties if isinstance(properties := params.get("properties"), dict) else {}
    required = names if isinstance(names := params.get("required"), list) else []
    args = ", ".join(_param(name, schema, name in required) for name, schema in props.items())
    description = str(fn.get("description") or "").strip().split("\n")[0]
    lines = [f"  {fn.get('name', '(no name)')}({args})"]
    return lines + [f"      {_clip(description, 120)}"] if description else lines


def _param(name: str, schema: Any, required: bool) -> str:
    return f"{name}: {_type_name(schema)}*" if required else f"{name}?: {_type_name(schema)}"


def _type_name(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "any"
    if "enum" in schema and isinstance(schema["enum"], list):
        return _clip("|".join(_one_line(v) for v in schema["enum"]), 60)
    if "const" in schema:
        return _one_line(schema["const"])
    variants = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(variants, list):
        return "|".join(_type_name(v) for v in variants)
    kind = schema.get("type")
    if kind == "array":
        return f"{_type_name(schema.get('items'))}[]"
    if isinstance(kind, list):
        return "|".join(map(str, kind))
    return str(kind) if kind else str(schema.get("$ref", "any")).rsplit("/", 1)[-1]


# --- responses --------------------------------------------------------------------------------


def render_response(asm: Assembly, llm: Exchange, offered: dict[str, dict] | None, title: str) -> str:
    """The answer, the tool-call check and the chunk table. `llm` is the exchange record of the flow whose
    stored body this is (chunk_times, error, body_truncated); an empty Exchange() otherwise."""
    stored = llm.answer if llm.body_truncated else None
    answer = from_answer(stored) if isinstance(stored, dict) else asm
    lines = [title, *_status_lines(asm, llm, answer is not asm)]
    lines += _answer_lines(answer) + _check_lines(answer, offered)
    if asm.chunks:
        lines += ["", *_chunk_table(asm, llm.chunk_times)]
    return "\n".join(lines)


def _status_lines(asm: Assembly, llm: Exchange, from_stored: bool) -> list[str]:
    lines = []
    if llm.body_truncated:
        source = "is flow.metadata['llm']['answer']" if from_stored else "is partial (no stored answer)"
        lines.append(f"the stored body was cut at the cap; the answer below {source}")
    elif asm.chunks and not asm.done:
        lines.append("stream ended without [DONE] — cut or incomplete")
    if llm.error:
        lines.append(f"error: {llm.error}")
    lines += [f"error in the body: {e}" for e in asm.errors]
    return lines


def _answer_lines(asm: Assembly) -> list[str]:
    lines = [f"model: {asm.model}"] if asm.model else []
    lines += [f"finish_reason: {asm.finish_reason}", f"usage: {_one_line(asm.usage)}"]
    if asm.reasoning:
        lines += ["", "reasoning:", *_indent(asm.reasoning, 2)]
    if asm.content:
        lines += ["", "text:", *_indent(asm.content, 2)]
    for i, call in enumerate(asm.tool_calls):
        lines += ["", f"tool call [{i}] {call['name']} ({call['id'] or 'no id'}):"]
        lines += _indent(_pretty_args(call["arguments"], shorten=False), 2)
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


# --- text helpers -----------------------------------------------------------------------------


def _pretty_args(arguments: str, *, shorten: bool) -> str:
    try:
        args = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        return f"(not valid JSON) {_shorten(arguments) if shorten else arguments}"
    return orjson.dumps(_shorten_strings(args) if shorten else args, option=orjson.OPT_INDENT_2).decode()


def _shorten_strings(value: Any) -> Any:
    if isinstance(value, str):
        return _shorten(value)
    if isinstance(value, dict):
        return {k: _shorten_strings(v) for k, v in value.items()}
    return [_shorten_strings(v) for v in value] if isinstance(value, list) else value


def _shorten(text: str) -> str:
    """Cut the middle out of long text, saying how much went."""
    if len(text) <= TEXT_LIMIT:
        return text
    return f"{text[:HEAD]}\n... ({len(text) - HEAD - TAIL} chars) ...\n{text[-TAIL:]}"


def _clip(text: str, limit: int) -> str:
    """One line of at most `limit` characters."""
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=repr).decode()
    return _clip(text, 200)


def _indent(text: str, n: int) -> list[str]:
    return [" " * n + line for line in text.split("\n")] if text else []
