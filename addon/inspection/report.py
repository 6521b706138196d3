"""What each LLM exchange did, told three ways: the log, the flow's one-line comment, and its mark.

The facts come from the flow's exchange record (formats/exchange.py: filled by routing and responses), so a saved flow read back with
`mitmdump -nr FILE` or mitmweb shows the same comment and marks. Keys are only ever shown masked.
"""

from __future__ import annotations

import logging

import orjson
from mitmproxy import ctx, http

from ..formats.answer import is_empty
from ..formats.exchange import Exchange
from ..runtime.option_help import one_paragraph
from . import media_placeholders, toolcheck, turn_text
from .client_body import client_body
from .summary import EMPTY_NOTE, comment_line, repair_line, summarize_answer, summarize_request

logger = logging.getLogger(__name__)

MARK_ERROR = ":x:"
MARK_TOOL_CALLS = ":wrench:"
MARK_TOOL_FINDINGS = ":warning:"
MARK_PLACEHOLDERS = ":framed_picture:"  # opencode sent an attachment as text (media_placeholders)


class Report:
    def load(self, loader) -> None:
        loader.add_option(
            "translate_verbosity",
            str,
            "summary",
            one_paragraph("""
            How much the log tells per LLM request, in one block when the exchange ends (concurrent requests never
            interleave): "summary" (resolution, repairs on one line, answer, usage, timing), "full" (also each
            repair, and the request's messages and tools, long strings shortened), "chunks" (also every SSE event,
            as the upstream sent it and as the client received it).
            """),
            choices=("summary", "full", "chunks"),
        )

    @staticmethod
    def heading(flow: http.HTTPFlow, ex: Exchange) -> list[str]:
        """Where the request went (key masked), whose turn it was, and what was repaired on the way."""
        session = turn_text.comment_prefix(ex).removesuffix(" | ")
        lines = [
            f"──── {ex.endpoint} ────" + (f" {session}" if session else ""),
            f"{ex.client_model} -> {ex.litellm_model} @ {flow.request.url} "
            f"(key {ex.key}, provider {ex.provider or '(default)'})",
        ]
        if line := repair_line(ex.repairs):
            lines.append(line)
        if ctx.options.translate_verbosity != "summary":
            lines += [f"  repaired: {repair}" for repair in ex.repairs]
        return lines

    def response(self, flow: http.HTTPFlow) -> None:
        self.finish(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self.finish(flow)

    def finish(self, flow: http.HTTPFlow) -> None:
        ex = Exchange.find(flow)
        if ex is None or not (ex.client_model is not None or ex.error):
            return
        if flow.live:  # a flow read back from a file (mitmdump -nr, mitmweb --rfile) keeps what was saved
            self.annotate(flow, ex)
        if ex.client_model is not None:
            self.log(flow, ex)
        else:
            logger.warning(f"{flow.request.method} {flow.request.path}: {flow.comment}")

    def annotate(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        if ex.client_model is None:  # refused before routing: bad body, wrong proxy key
            flow.comment, flow.marked = f"refused by the proxy: {str(ex.error)[:120]}", MARK_ERROR
            return
        toolcheck.checks_of(ex, client_body(ex) or flow.request.content)
        ok = flow.response is not None and flow.response.status_code == 200 and not ex.error
        ex.empty_answer = ok and ex.answer is not None and is_empty(ex.answer)
        ex.media_placeholders = self.placeholders(flow, client_body(ex))
        flow.comment = comment_line(ex)
        flow.marked = self.mark(ex)

    @staticmethod
    def check_tools(flow: http.HTTPFlow, calls: list[dict], kept: bytes | None = None) -> list[str]:
        # the native path's flow holds Gemini's body: the tools offered are in the client's request
        return toolcheck.check_request(calls, kept or flow.request.content or b"")

    @staticmethod
    def placeholders(flow: http.HTTPFlow, kept: bytes | None = None) -> list[str]:
        raw = kept or flow.request.content or b""
        if not media_placeholders.may_have(raw):  # most requests: one look at the bytes
            return []
        try:
            return media_placeholders.find(orjson.loads(raw))
        except orjson.JSONDecodeError:
            return []

    @staticmethod
    def mark(ex: Exchange) -> str:
        if ex.error or ex.empty_answer:
            return MARK_ERROR
        if ex.tool_checks:
            return MARK_TOOL_FINDINGS
        if ex.media_placeholders:
            return MARK_PLACEHOLDERS
        if (ex.answer or {}).get("tool_calls"):
            return MARK_TOOL_CALLS
        return ""

    def log(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        """The exchange's block, in one record: a trip through every log handler (mitmweb keeps them too) each."""
        lines = [*self.heading(flow, ex), *turn_text.log_lines(ex)]
        if ctx.options.translate_verbosity != "summary":
            called = [str(call.get("name")) for call in (ex.answer or {}).get("tool_calls") or ()]
            lines.append(summarize_request(flow.request.content or b"", turn_text.unchanged_messages(ex), called))
        lines += [summarize_answer(ex)] if ex.answer else []
        lines.append(f"  {flow.comment}")
        if ctx.options.translate_verbosity == "chunks" and ex.upstream_raw is not None:
            raw, sent = ex.upstream_raw, (flow.response.content if flow.response else b"") or b""
            lines.append(f"  upstream stream ({len(raw)} bytes):\n{raw.decode('utf-8', 'replace')}")
            lines.append(f"  sent to client ({len(sent)} bytes):\n{sent.decode('utf-8', 'replace')}")
        logger.info("\n".join(lines))
        if ex.error:
            logger.warning(f"{ex.client_model}: {ex.error}")
        if ex.empty_answer:
            logger.warning(empty_answer_warning(ex))
        if found := ex.media_placeholders:
            logger.warning(f"{media_placeholders.advice(ex.client_model)}; it sent: {'; '.join(found)}")
        for finding in ex.tool_checks or []:
            logger.warning(f"  tool call check (the model got it wrong): {finding}")


def empty_answer_warning(ex: Exchange) -> str:
    finish = (ex.answer or {}).get("finish_reason")
    advice = (
        "it was asked once more (translate_retry_empty_answer) and came back empty again"
        if any(attempt.get("empty") for attempt in ex.attempts)
        else "--set translate_retry_empty_answer=true asks once more before the client gets a byte"
    )
    return (
        f"{ex.client_model}: {EMPTY_NOTE}, finish_reason {finish}: what Gemini's OpenAI-compatible endpoint "
        f"sends for MALFORMED_FUNCTION_CALL, and opencode ends its task on it; {advice}"
    )
