"""What each LLM exchange did, told three ways: the log, the flow's one-line comment, and its mark.

The facts come from `flow.metadata["llm"]` (filled by routing and responses), so a saved flow read back with
`mitmdump -nr FILE` or mitmweb shows the same comment and marks. Keys are only ever shown masked.
"""

from __future__ import annotations

import logging

import orjson
from mitmproxy import ctx, http

from ..formats.answer import is_empty
from ..runtime.option_help import one_paragraph
from . import media_placeholders, toolcheck, turn_text
from .client_body import client_body
from .summary import EMPTY_NOTE, comment_line, summarize_answer, summarize_request

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
            How much the log tells per LLM request: "summary" (one block per request: resolution, answer,
            usage, timing), "full" (also the request's messages and tools, long strings shortened), "chunks"
            (also every SSE event, as the upstream sent it and as the client received it).
            """),
            choices=("summary", "full", "chunks"),
        )

    def request(self, flow: http.HTTPFlow) -> None:
        meta = flow.metadata.get("llm")
        if not isinstance(meta, dict) or "client_model" not in meta or flow.response:
            return
        # "summary" tells the whole exchange in one record when it ends: each record costs a trip through every
        # log handler (mitmweb keeps them too), and this is the proxy's busiest path. The other verbosities
        # show the request as it leaves.
        if ctx.options.translate_verbosity != "summary":
            request = summarize_request(flow.request.content or b"", turn_text.unchanged_messages(meta))
            logger.info("\n".join([*self.heading(flow, meta), *turn_text.log_lines(meta), request]))
            meta["heading_logged"] = len(meta.get("repairs", []))

    @staticmethod
    def heading(flow: http.HTTPFlow, meta: dict) -> list[str]:
        """Where the request went (key masked) and what was repaired on the way."""
        lines = [
            f"──── {meta.get('endpoint')} ────",
            f"{meta['client_model']} -> {meta['litellm_model']} @ {flow.request.url} "
            f"(key {meta['key']}, provider {meta.get('provider') or '(default)'})",
        ]
        return lines + [f"  repaired: {repair}" for repair in meta.get("repairs", [])]

    def response(self, flow: http.HTTPFlow) -> None:
        self.finish(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self.finish(flow)

    def finish(self, flow: http.HTTPFlow) -> None:
        meta = flow.metadata.get("llm")
        if not isinstance(meta, dict) or not ("client_model" in meta or meta.get("error")):
            return
        if flow.live:  # a flow read back from a file (mitmdump -nr, mitmweb --rfile) keeps what was saved
            self.annotate(flow, meta)
        if "client_model" in meta:
            self.log(flow, meta)
        else:
            logger.warning(f"{flow.request.method} {flow.request.path}: {flow.comment}")

    def annotate(self, flow: http.HTTPFlow, meta: dict) -> None:
        if "client_model" not in meta:  # refused before routing: bad body, wrong proxy key
            flow.comment, flow.marked = f"refused by the proxy: {str(meta['error'])[:120]}", MARK_ERROR
            return
        answer = meta.get("answer") or {}
        if answer.get("tool_calls"):
            meta["tool_checks"] = self.check_tools(flow, answer["tool_calls"], client_body(meta))
        ok = flow.response is not None and flow.response.status_code == 200 and not meta.get("error")
        meta["empty_answer"] = ok and "answer" in meta and is_empty(answer)
        meta["media_placeholders"] = self.placeholders(flow, client_body(meta))
        flow.comment = comment_line(meta)
        flow.marked = self.mark(meta)

    @staticmethod
    def check_tools(flow: http.HTTPFlow, calls: list[dict], client_request: bytes | None = None) -> list[str]:
        try:  # the native path's flow holds Gemini's body: the tools offered are in the client's request
            body = orjson.loads(client_request or flow.request.content or b"")
        except orjson.JSONDecodeError:
            return []
        return toolcheck.check_tool_calls(calls, toolcheck.tool_schemas(body if isinstance(body, dict) else {}))

    @staticmethod
    def placeholders(flow: http.HTTPFlow, client_request: bytes | None = None) -> list[str]:
        raw = client_request or flow.request.content or b""
        if not media_placeholders.may_have(raw):  # most requests: one look at the bytes
            return []
        try:
            return media_placeholders.find(orjson.loads(raw))
        except orjson.JSONDecodeError:
            return []

    @staticmethod
    def mark(meta: dict) -> str:
        if meta.get("error") or meta.get("empty_answer"):
            return MARK_ERROR
        if meta.get("tool_checks"):
            return MARK_TOOL_FINDINGS
        if meta.get("media_placeholders"):
            return MARK_PLACEHOLDERS
        if (meta.get("answer") or {}).get("tool_calls"):
            return MARK_TOOL_CALLS
        return ""

    def log(self, flow: http.HTTPFlow, meta: dict) -> None:
        logged = meta.get("heading_logged")
        lines = [*self.heading(flow, meta), *turn_text.log_lines(meta)] if logged is None else []
        lines += [summarize_answer(meta)] if meta.get("answer") else []
        if logged is not None:  # repairs made after the heading went out (the stream's)
            lines += [f"  repaired: {repair}" for repair in meta.get("repairs", [])[logged:]]
        lines.append(f"  {flow.comment}")
        logger.info("\n".join(lines))
        if meta.get("error"):
            logger.warning(f"{meta['client_model']}: {meta['error']}")
        if meta.get("empty_answer"):
            logger.warning(empty_answer_warning(meta))
        if found := meta.get("media_placeholders"):
            logger.warning(f"{media_placeholders.advice(meta['client_model'])}; it sent: {'; '.join(found)}")
        for finding in meta.get("tool_checks", []):
            logger.warning(f"  tool call check (the model got it wrong): {finding}")
        if ctx.options.translate_verbosity == "chunks" and meta.get("upstream_raw") is not None:
            raw = meta["upstream_raw"]
            sent = flow.response.content if flow.response else b""
            logger.info(f"  upstream stream ({len(raw)} bytes):\n{raw.decode('utf-8', 'replace')}")
            logger.info(f"  sent to client ({len(sent or b'')} bytes):\n{(sent or b'').decode('utf-8', 'replace')}")


def empty_answer_warning(meta: dict) -> str:
    finish = (meta.get("answer") or {}).get("finish_reason")
    advice = (
        "it was asked once more (translate_retry_empty_answer) and came back empty again"
        if any(attempt.get("empty") for attempt in meta.get("attempts") or ())
        else "--set translate_retry_empty_answer=true asks once more before the client gets a byte"
    )
    return (
        f"{meta['client_model']}: {EMPTY_NOTE}, finish_reason {finish}: what Gemini's OpenAI-compatible endpoint "
        f"sends for MALFORMED_FUNCTION_CALL, and opencode ends its task on it; {advice}"
    )
