"""The response side: every answer goes back under the name the client asked for, in OpenAI's shape.

Streams are rewritten event by event as they pass (stream_rewrite); whole JSON answers are rewritten in
`response`; upstream errors are reshaped (errors). The `error` hook is the one place that decides what the client
of a failed exchange gets: an error page (set as flow.response, sent by stream_end.py) before the answer began, an
SSE error event as the last of a begun stream, or the answer of a fallback (fallbacks.py set it) when one came. The upstream key in the flow is masked as soon as the upstream
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
from ..formats.exchange import Exchange
from ..gemini import stream_toolcalls, thought_signatures
from ..runtime import error_pages, stream_end, upstream_key
from ..runtime.option_help import one_paragraph
from . import native_responses
from .stream_rewrite import StreamOptions, StreamRewriter, rewriter_of

logger = logging.getLogger(__name__)


def routed(flow: http.HTTPFlow) -> Exchange | None:
    """The record of a flow this proxy sent upstream and carries now; None for flows read back from a file, whose hooks
    run again on loading (mitmdump -nr, mitmweb --rfile) and must not be rewritten a second time, and for answers
    played back from a recording (--server-replay), which were rewritten when they were recorded."""
    if not flow.live or flow.is_replay == "response":
        return None
    ex = Exchange.find(flow)
    return ex if ex is not None and ex.key is not None else None


def failure(ex: Exchange) -> tuple[int, str, str]:
    """Status, code and message for a flow that ended without a complete answer."""
    if ex.shutdown:
        return 503, "proxy_shutting_down", str(ex.error)
    if ex.timed_out:
        return 504, "upstream_timeout", f"Upstream {ex.api_base} timed out: {ex.error}"
    return 502, "upstream_unreachable", f"Upstream {ex.api_base} failed: {ex.error}"


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
        ex = routed(flow)
        if ex is None or not flow.response:
            return
        upstream_key.detach_key(flow.request)
        if ex.passthrough:
            return
        flow.response.headers["x-upstream-model"] = ex.upstream_model or ""
        is_sse = flow.response.headers.get("content-type", "").startswith("text/event-stream")
        if flow.response.status_code != 200 or not is_sse:
            return
        gemini = ex.is_gemini
        options = StreamOptions(
            client_model=ex.client_model or "",
            repair_tool_calls=gemini and ctx.options.translate_repair_stream_tools,
            pack_signatures=gemini and ctx.options.translate_repair_signatures,
            # A fallback attempt's client gets the stored body (fallbacks.py): it must be whole.
            keep_bytes=sys.maxsize if ex.fallback_of is not None else ctx.options.translate_keep_stream_bytes,
            hold_empty=ex.hold_empty,  # fallbacks.py may ask again for an empty answer
        )
        flow.response.headers.pop("content-length", None)
        if flow.request.http_version == "HTTP/1.1":
            flow.response.headers["transfer-encoding"] = "chunked"
        stream_class = native_responses.NativeStream if native_responses.is_native(ex) else StreamRewriter
        flow.response.stream = stream_class(options, ex.t_request)

    def response(self, flow: http.HTTPFlow) -> None:
        ex = routed(flow)
        response = flow.response
        if ex is None or not response or ex.passthrough or ex.answered_by:
            return
        ex.t_end = time.time()
        if (rewriter := rewriter_of(flow)) is not None:
            return self.finish_stream(response, ex, rewriter)
        if ex.t_first_chunk is None:
            ex.t_first_chunk = ex.t_end
        if response.status_code >= 400:
            return self.reshape_error(response, ex)
        if native_responses.is_native(ex):
            return native_responses.rewrite_completion(flow, ex)
        self.rewrite_completion(response, ex)

    def finish_stream(self, response: http.Response, ex: Exchange, rewriter: StreamRewriter) -> None:
        response.stream = False
        response.content = bytes(rewriter.sent.data)
        ex.t_first_chunk = rewriter.t_first
        ex.chunk_times = rewriter.chunk_times
        ex.upstream_raw = bytes(rewriter.upstream.data)
        ex.answer = rewriter.answer.to_dict()
        ex.body_truncated = rewriter.sent.truncated or rewriter.upstream.truncated
        ex.stream_done = rewriter.saw_done
        ex.repairs = ex.repairs + rewriter.repairs
        if rewriter.error:  # a native stream that ended in an error event
            ex.error = rewriter.error

    def finish_whole_stream(
        self, flow: http.HTTPFlow, response: http.Response, ex: Exchange, rewriter: StreamRewriter
    ) -> None:
        """The stream reached [DONE] (or the upstream's end) before the connection went: the client has the whole
        answer, and a client that closes right after [DONE] (the openai SDK does) has cut nothing. mitmproxy
        records that close as the flow's error when it comes before the upstream's end of body; the flow is a
        complete answer, saved and shown as one."""
        logger.debug(f"{flow.error.msg if flow.error else 'connection closed'} after the stream's end: not a failure")
        flow.error = None
        response.timestamp_end = response.timestamp_end or ex.t_end
        self.finish_stream(response, ex, rewriter)

    def reshape_error(self, response: http.Response, ex: Exchange) -> None:
        status = response.status_code
        reshaped = errors.normalize_upstream_error(status, response.content or b"")
        if ctx.options.translate_repair_errors and reshaped is not None:
            response.content = reshaped
            response.headers["content-type"] = "application/json"
            ex.repairs = ex.repairs + ["error reshaped to OpenAI's shape"]
        if response.status_code in (401, 403) and ex.key_hint:  # which key went where (keys.py)
            response.content = errors.with_hint(response.content or b"", ex.key_hint)
        ex.error = f"upstream {status}: {client_message(response.content or b'')}"

    def rewrite_completion(self, response: http.Response, ex: Exchange) -> None:
        try:
            body = orjson.loads(response.content or b"")
        except orjson.JSONDecodeError:
            return
        if not isinstance(body, dict):
            return
        body["model"] = ex.client_model
        if ex.is_gemini:
            notes = stream_toolcalls.fix_message_response(body) if ctx.options.translate_repair_stream_tools else []
            if ctx.options.translate_repair_signatures:
                for choice in body.get("choices") or ():
                    message = choice.get("message") if isinstance(choice, dict) else None
                    if isinstance(message, dict) and isinstance(message.get("tool_calls"), list):
                        notes += thought_signatures.pack_tool_calls(message["tool_calls"])
            ex.repairs = ex.repairs + notes
        answer = Answer()
        answer.add_completion(body)
        ex.answer = answer.to_dict()
        response.content = orjson.dumps(body)

    def error(self, flow: http.HTTPFlow) -> None:
        ex = routed(flow)
        if ex is None:
            return
        upstream_key.detach_key(flow.request)
        if ex.answered_by:  # a fallback attempt's answer is the flow's response now (fallbacks.py)
            return
        ex.t_end = time.time()
        response, rewriter = flow.response, rewriter_of(flow)
        if response and rewriter is not None and rewriter.complete and not ex.error:
            return self.finish_whole_stream(flow, response, ex, rewriter)
        ex.error = ex.error or (flow.error.msg if flow.error else "unknown error")
        status, code, message = failure(ex)
        if response and rewriter is not None:
            # The client has the headers and part of the stream: its last event says what happened.
            event = rewriter.error_event(message, status, code)
            if stream_end.finish(flow, event):
                rewriter.sent.add(event)
                ex.error_event_sent = True
            self.finish_stream(response, ex, rewriter)
            return
        flow.response = error_pages.page(status, message, code)  # sent instead of mitmproxy's page (stream_end)
