"""The response side: every answer goes back under the name the client asked for, in OpenAI's shape.

Streams are rewritten event by event as they pass (stream_rewrite); whole JSON answers are rewritten in
`response`; upstream errors are reshaped (errors). The upstream key in the flow is masked as soon as the upstream
has answered, so mitmweb, saved flows and the log only ever show the masked form.
"""

from __future__ import annotations

import logging
import sys
import time

import orjson
from mitmproxy import ctx, http

from ..formats import errors
from ..formats.answer import Answer
from ..gemini import stream_toolcalls, thought_signatures
from ..runtime import error_pages, upstream_key, wire
from ..runtime.option_help import one_paragraph
from . import native_responses
from .stream_rewrite import StreamOptions, StreamRewriter

logger = logging.getLogger(__name__)


def llm_meta(flow: http.HTTPFlow) -> dict | None:
    """The routing facts of a flow this proxy carries now; None for flows read back from a file, whose hooks
    run again on loading (mitmdump -nr, mitmweb --rfile) and must not be rewritten a second time, and for answers
    played back from a recording (--server-replay), which were rewritten when they were recorded."""
    meta = flow.metadata.get("llm")
    live = flow.live and flow.is_replay != "response"
    return meta if live and isinstance(meta, dict) and "key" in meta else None


def failure(meta: dict) -> tuple[int, str, str]:
    """Status, code and message for a flow that ended without a complete answer."""
    if meta.get("shutdown"):
        return 503, "proxy_shutting_down", str(meta["error"])
    if meta.get("timed_out"):
        return 504, "upstream_timeout", f"Upstream {meta.get('api_base')} timed out: {meta['error']}"
    return 502, "upstream_unreachable", f"Upstream {meta.get('api_base')} failed: {meta['error']}"


def client_message(body: bytes) -> str:
    """An error body as the client reads it: the message of an OpenAI-shaped error, else the start of the body."""
    try:
        error = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        error = None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return body[:300].decode("utf-8", "replace")


class Responses:
    def load(self, loader) -> None:
        loader.add_option(
            "translate_repair_stream_tools",
            bool,
            True,
            one_paragraph("""
            Gemini repair: give streamed tool calls an index and a non-empty id each, and finish_reason
            "tool_calls" when calls were made.
            """),
        )
        loader.add_option(
            "translate_repair_errors",
            bool,
            True,
            one_paragraph("""
            Reshape upstream errors (Gemini wraps them in a list) into OpenAI's {"error": {...}} shape.
            """),
        )
        loader.add_option(
            "translate_keep_stream_bytes",
            int,
            4 * 1024 * 1024,
            one_paragraph("""
            How much of each streamed body the flow keeps, per side (sent to the client, and the upstream's raw
            stream). Beyond it the stored body is cut; the assembled answer stays complete.
            """),
        )

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        meta = llm_meta(flow)
        if meta is None or not flow.response:
            return
        upstream_key.detach_key(flow.request)
        if meta.get("passthrough"):
            return
        flow.response.headers["x-upstream-model"] = meta["upstream_model"]
        is_sse = flow.response.headers.get("content-type", "").startswith("text/event-stream")
        if flow.response.status_code != 200 or not is_sse:
            return
        gemini = meta.get("is_gemini", False)
        options = StreamOptions(
            client_model=meta["client_model"],
            repair_tool_calls=gemini and ctx.options.translate_repair_stream_tools,
            pack_signatures=gemini and ctx.options.translate_repair_signatures,
            # A fallback attempt's client gets the stored body (fallbacks.py): it must be whole.
            keep_bytes=sys.maxsize if "fallback_of" in meta else ctx.options.translate_keep_stream_bytes,
            hold_empty=meta.get("hold_empty", False),  # fallbacks.py may ask again for an empty answer
        )
        flow.response.headers.pop("content-length", None)
        if flow.request.http_version == "HTTP/1.1":
            flow.response.headers["transfer-encoding"] = "chunked"
        stream_class = native_responses.NativeStream if native_responses.is_native(meta) else StreamRewriter
        flow.response.stream = stream_class(options, meta.get("t_request"))

    def response(self, flow: http.HTTPFlow) -> None:
        meta = llm_meta(flow)
        if meta is None or not flow.response or meta.get("passthrough") or meta.get("answered_by"):
            return
        meta["t_end"] = time.time()
        if isinstance(flow.response.stream, StreamRewriter):
            return self.finish_stream(flow, meta, flow.response.stream)
        meta.setdefault("t_first_chunk", meta["t_end"])
        if flow.response.status_code >= 400:
            return self.reshape_error(flow, meta)
        if native_responses.is_native(meta):
            return native_responses.rewrite_completion(flow, meta)
        self.rewrite_completion(flow, meta)

    def finish_stream(self, flow: http.HTTPFlow, meta: dict, rewriter: StreamRewriter) -> None:
        flow.response.stream = False
        flow.response.content = bytes(rewriter.sent.data)
        meta.update(
            t_first_chunk=rewriter.t_first,
            chunk_times=rewriter.chunk_times,
            upstream_raw=bytes(rewriter.upstream.data),
            answer=rewriter.answer.to_dict(),
            body_truncated=rewriter.sent.truncated or rewriter.upstream.truncated,
            stream_done=rewriter.saw_done,
        )
        meta["repairs"] = meta.get("repairs", []) + rewriter.repairs
        if getattr(rewriter, "error", None):  # a native stream that ended in an error event
            meta["error"] = rewriter.error

    def finish_whole_stream(self, flow: http.HTTPFlow, meta: dict, rewriter: StreamRewriter) -> None:
        """The stream reached [DONE] (or the upstream's end) before the connection went: the client has the whole
        answer, and a client that closes right after [DONE] (the openai SDK does) has cut nothing. mitmproxy
        records that close as the flow's error when it comes before the upstream's end of body; the flow is a
        complete answer, saved and shown as one."""
        logger.debug(f"{flow.error.msg if flow.error else 'connection closed'} after the stream's end: not a failure")
        flow.error = None
        flow.response.timestamp_end = flow.response.timestamp_end or meta["t_end"]
        self.finish_stream(flow, meta, rewriter)

    def reshape_error(self, flow: http.HTTPFlow, meta: dict) -> None:
        status = flow.response.status_code
        reshaped = errors.normalize_upstream_error(status, flow.response.content or b"")
        if ctx.options.translate_repair_errors and reshaped is not None:
            flow.response.content = reshaped
            flow.response.headers["content-type"] = "application/json"
            meta["repairs"] = meta.get("repairs", []) + ["error reshaped to OpenAI's shape"]
        if flow.response.status_code in (401, 403) and meta.get("key_hint"):  # which key went where (keys.py)
            flow.response.content = errors.with_hint(flow.response.content or b"", meta["key_hint"])
        meta["error"] = f"upstream {status}: {client_message(flow.response.content or b'')}"

    def rewrite_completion(self, flow: http.HTTPFlow, meta: dict) -> None:
        try:
            body = orjson.loads(flow.response.content or b"")
        except orjson.JSONDecodeError:
            return
        if not isinstance(body, dict):
            return
        body["model"] = meta["client_model"]
        if meta.get("is_gemini"):
            notes = stream_toolcalls.fix_message_response(body) if ctx.options.translate_repair_stream_tools else []
            if ctx.options.translate_repair_signatures:
                for choice in body.get("choices") or ():
                    message = choice.get("message") if isinstance(choice, dict) else None
                    if isinstance(message, dict) and isinstance(message.get("tool_calls"), list):
                        notes += thought_signatures.pack_tool_calls(message["tool_calls"])
            meta["repairs"] = meta.get("repairs", []) + notes
        answer = Answer()
        answer.add_completion(body)
        meta["answer"] = answer.to_dict()
        flow.response.content = orjson.dumps(body)

    def error(self, flow: http.HTTPFlow) -> None:
        meta = llm_meta(flow)
        if meta is None:
            return
        upstream_key.detach_key(flow.request)
        if meta.get("answered_by"):  # a fallback attempt's answer goes to the client instead (fallbacks.py)
            return
        meta["t_end"] = time.time()
        rewriter = flow.response.stream if flow.response else None
        if isinstance(rewriter, StreamRewriter) and (rewriter.saw_done or rewriter.finished) and not meta.get("error"):
            return self.finish_whole_stream(flow, meta, rewriter)
        meta["error"] = meta.get("error") or (flow.error.msg if flow.error else "unknown error")
        status, code, message = failure(meta)
        if isinstance(rewriter, StreamRewriter):
            # The client has the headers and part of the stream: its last event says what happened.
            event = errors.sse_error_event(message, status, code)
            if wire.write_sse_error_and_end(flow, event):
                rewriter.sent.add(event)
                meta["error_event_sent"] = True
            self.finish_stream(flow, meta, rewriter)
            return
        error_pages.override.set(error_pages.page(status, message, code))
