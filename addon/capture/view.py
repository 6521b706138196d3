"""The "LLM chat" contentview of capture mode: every recognised format shown as the reverse proxy shows OpenAI chat.

A request is read into an OpenAI chat body by its format's reader and shown as the conversation, after what is new
in its session's turn (as the reverse proxy's view shows it); an answer (JSON
or stream) is read into chat.completion chunks and shown as the assembled answer, the tool-call check against the
tools the request offered, and the table of what each event added. Flows that capture mode did not recognise are
shown as the reverse proxy's "LLM chat" shows them. capture_mode.py registers this view in place of that one (same name).
"""

from __future__ import annotations

import orjson
from mitmproxy import http
from mitmproxy.contentviews import Metadata

from ..formats.exchange import Exchange
from ..formats.sse import encode_event
from ..inspection import toolcheck, turn_text
from ..inspection.chat_assembly import assemble_json, assemble_sse, from_answer, split_events
from ..inspection.chatview import ChatView
from ..inspection.render import conversation
from ..inspection.render.document import NOT_MINE, OVER_CHAT, Section, record
from .readers import READERS, TITLES
from .recorder import reader_request

DONE = b"data: [DONE]\n\n"


class CaptureChatView(ChatView):
    name = "LLM chat"

    def sections(self, data: bytes, metadata: Metadata, ex: Exchange) -> list[Section | None] | None:
        meta, flow = _capture_meta(metadata), metadata.flow
        if meta is None or not isinstance(flow, http.HTTPFlow):  # only an HTTP flow has a capture record
            return super().sections(data, metadata, ex)
        title = f"{TITLES[str(meta.capture)]} via {meta.host}"
        if isinstance(metadata.http_message, http.Request):
            head = [f"{title}, read as OpenAI chat", "", *turn_text.view_lines(meta)]
            return [Section(None, [*head, *conversation.request(reader_request(flow, meta))])]
        offered = _offered(flow, meta)
        if not data.strip():
            if meta.answer is None:
                raise ValueError("This response has no body and no answer in flow.metadata['llm'].")
            asm, title = from_answer(meta.answer), f"{title}: answer (body not stored)"
        elif data.lstrip()[:1] == b"{":
            asm, title = assemble_json(as_completion(data, meta)), f"{title} (JSON)"
        else:
            asm, title = assemble_sse(as_chunks(data, meta)), f"{title}, stream read as chunks"
        return [Section(None, conversation.response(asm, meta, offered, title))]

    def render_priority(self, data: bytes, metadata: Metadata) -> float:
        if _capture_meta(metadata) is None:
            return super().render_priority(data, metadata)
        return OVER_CHAT if data.strip() or isinstance(metadata.http_message, http.Response) else NOT_MINE


def _capture_meta(metadata: Metadata) -> Exchange | None:
    """The record of a flow capture mode recognised as an LLM exchange."""
    ex = record(metadata)
    return ex if ex.capture in READERS and ex.client_model is not None else None


def _offered(flow: http.HTTPFlow, meta: Exchange) -> dict[str, dict] | None:
    try:
        return toolcheck.tool_schemas(reader_request(flow, meta))
    except (ValueError, KeyError, TypeError):
        return None


def as_completion(data: bytes, meta: Exchange) -> bytes:
    """A whole answer of the flow's format as a chat.completion body. Raises ValueError when it is not one."""
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise ValueError(f"The answer is not JSON: {e}.") from None
    if not isinstance(body, dict):
        raise ValueError("The answer is not a JSON object.")
    return orjson.dumps(READERS[str(meta.capture)].completion(body))


def as_chunks(data: bytes, meta: Exchange) -> bytes:
    """A stream of the flow's format as a stream of chat.completion.chunk events, ending in [DONE] when it ended."""
    reader = READERS[str(meta.capture)].Stream()
    out, finished = [], False
    for event in split_events(data):
        for chunk in reader.chunks(event.data) if event.data is not None else ():
            out.append(encode_event(orjson.dumps(chunk)))
            finished = finished or any(
                c.get("finish_reason") for c in chunk.get("choices") or () if isinstance(c, dict)
            )
    return b"".join(out) + (DONE if finished else b"")
