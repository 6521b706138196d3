"""Fallback targets: when a model's upstream fails before the client got a byte, the next target answers.

A model names its fallbacks in opencode.json (a provider's `options.proxy.fallbacks`, e.g. `{"local-model":
["backup/gemini-2.0-flash", "other-model"]}`, each a name a client could ask for); routing puts them in
the exchange record's `fallbacks` and keeps the client's request as it came in its `original` (never saved). When the answer is a 429 or a 5xx,
or there is no answer at all (connect failure, timeout before the answer began), the same request goes out again
under the next name, until an answer is neither. Each attempt is a flow of its own, sent through mitmproxy's
client-replay machinery (its ReplayHandler), so it passes every addon (routing and repairs, timeouts, the report,
-w files) and mitmweb lists it as "fallback attempt N for <flow id>". The `attempts` of the client's flow's
record list every try.

The client gets the first answer that is not retryable, under the name it asked for; when every attempt failed,
the last error that came (its status and headers, Retry-After included). The answer goes out whole once the
attempt has finished: a streaming client gets the complete SSE stream at once (mitmproxy cannot stream one flow's
body into another's response), acceptable for this rare path. After the first byte went to the client there is
no retry: error statuses are never streamed, and a stream that fails midway ends with an SSE error event.

The same machinery asks once more, under the same name, for an empty answer (no text, no tool calls: what Gemini's
OpenAI-compatible endpoint sends for MALFORMED_FUNCTION_CALL) when `translate_retry_empty_answer` is on. A stream's
events are then held back while its answer is empty (stream_rewrite's `hold_empty`), so the client has only the
headers when the retry starts; the retry's whole stream follows them, or, if the retry fails, the first answer
(sent after the `response` hook through mitmproxy's layers: stream_end.finish).

What the client of a failed flow gets is decided in one place, responses.py's `error` hook: this addon, which runs
before it, only makes a fallback's answer the flow's response (and notes `answered_by`), which that hook keeps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable

import orjson
from mitmproxy import connection, ctx, http

from ..formats import answer
from ..formats.exchange import KEY, Exchange
from ..runtime import error_pages, replays, stream_end
from ..runtime.option_help import one_paragraph
from .stream_rewrite import rewriter_of

logger = logging.getLogger(__name__)

# What an attempt found out that describes the answer the client got (the rest of the record is the client's).
RESULT_KEYS = (
    "upstream_model",
    "litellm_model",
    "api_base",
    "provider",
    "is_gemini",
    "key",
    "context_window",
    "price_in",
    "price_out",
    "price_cached",
    "repairs",
    "answer",
    "upstream_raw",
    "body_truncated",
    "stream_done",
    "t_first_chunk",
    "t_end",
    "error",
)


def retryable(status: int) -> bool:
    """Statuses another target may answer better: rate limits and server errors."""
    return status == 429 or status >= 500


def attempt_record(ex: Exchange, model: str, outcome: int | str) -> dict:
    """One entry of Exchange.attempts: the name asked for, where it went, and the status or error it got."""
    record = {
        "model": model,
        "upstream_model": ex.upstream_model,
        "api_base": ex.api_base,
        "t": round(time.time(), 3),
    }
    record["status" if isinstance(outcome, int) else "error"] = outcome
    return record


def outcome(attempt: http.HTTPFlow) -> int | str:
    """The status of a finished attempt's complete answer, else what went wrong."""
    ex = Exchange.of(attempt)
    if ex.key is None:  # routing (or shutdown) answered it itself: no upstream was asked
        return f"not sent: {ex.error or 'answered by the proxy'}"
    if attempt.response is not None and attempt.error is None:
        return attempt.response.status_code
    return str(ex.error or (attempt.error.msg if attempt.error else "no answer"))


def replay_request(original: http.Request, model: str) -> http.Request:
    """The client's request again, asking for `model` (routing has checked the body is a JSON object)."""
    request = original.copy()
    body = orjson.loads(original.raw_content or b"")
    body["model"] = model
    request.content = orjson.dumps(body)
    return request


def make_attempt(flow: http.HTTPFlow, original: http.Request, model: str, n: int) -> http.HTTPFlow:
    """A new flow for fallback attempt `n`: the client's request under `model`, answering as the client asked."""
    attempt = http.HTTPFlow(flow.client_conn.copy(), connection.Server(address=None))
    attempt.request = replay_request(original, model)
    attempt.is_replay = "request"
    ex = Exchange.of(flow)
    # The attempt answers in the client's format (response/egress.py translates it as for the client's flow).
    attempt.metadata[KEY] = Exchange(
        fallback_of=flow.id,
        attempt=n,
        client_model=ex.client_model,
        client_format=ex.client_format,
        client_params=ex.client_params,
    )
    return attempt


def take_answer(flow: http.HTTPFlow, ex: Exchange, model: str, attempt: http.HTTPFlow) -> None:
    """The attempt's answer becomes the client's flow's response, with what the attempt found out."""
    answer = attempt.response
    assert answer is not None, "take_answer is called only for an attempt whose outcome() was a status"
    if flow.response is not None and flow.response.stream:  # its headers went out: the attempt's body follows
        flow.response.stream = False
        flow.response.content = answer.content
    else:
        flow.response = error_pages.whole_response(answer)
    found = Exchange.of(attempt)
    for name in RESULT_KEYS:
        setattr(ex, name, getattr(found, name))
    ex.answered_by = model


def empty_answer(flow: http.HTTPFlow, response: http.Response) -> bool:
    """Is this 200 answer empty, and has the client not had a byte of it (a stream's events all held)?"""
    if (rewriter := rewriter_of(flow)) is not None:
        return rewriter.holding and answer.is_empty(rewriter.answer.to_dict())
    if response.stream or response.status_code != 200:
        return False
    try:
        body = orjson.loads(response.content or b"")
        whole = answer.Answer()
        whole.add_completion(body)
    except (orjson.JSONDecodeError, TypeError, AttributeError, KeyError):
        return False  # not a chat.completion: nothing to judge
    return answer.is_empty(whole.to_dict())


class Fallbacks:
    def load(self, loader) -> None:
        loader.add_option(
            "translate_retry_empty_answer",
            bool,
            False,
            one_paragraph("""
            Ask once more when the answer is empty (no text and no tool calls, finish_reason "stop": what
            Gemini's OpenAI-compatible endpoint sends for MALFORMED_FUNCTION_CALL, and what makes opencode end its
            task), before the client got a byte of it. A stream's events wait until its answer has something in
            it. Off: the empty answer goes to the client, marked in the flow and the log.
            """),
        )

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """Streams that may be asked again are held while empty (responses.py reads ex.hold_empty)."""
        ex = Exchange.find(flow)
        if not ctx.options.translate_retry_empty_answer or flow.response is None or flow.response.status_code != 200:
            return
        if flow.live and ex is not None and ex.key is not None and ex.fallback_of is None and stream_end.enabled():
            ex.hold_empty = ex.api == "openai"  # the native path turns these into errors

    def response(self, flow: http.HTTPFlow) -> Awaitable[bool | None] | None:
        # Not async: mitmproxy awaits what a hook returns, and most answers need no fallback, so no coroutine.
        original, ex = self.take(flow)
        response = flow.response
        if original is None or ex is None or response is None:
            return None
        if ex.fallbacks and not response.stream and retryable(response.status_code):
            ex.attempts = [attempt_record(ex, ex.client_model or "", response.status_code)]
            return self.fall_back(flow, ex, original, str(response.status_code))
        if ctx.options.translate_retry_empty_answer and empty_answer(flow, response):
            return self.retry_empty(flow, ex, original)
        return None

    async def error(self, flow: http.HTTPFlow) -> None:
        original, ex = self.take(flow)
        if original is None or ex is None or not ex.fallbacks or flow.response is not None or ex.shutdown:
            return
        reason = str(ex.error or (flow.error.msg if flow.error else "no answer"))
        ex.attempts = [attempt_record(ex, ex.client_model or "", reason)]
        await self.fall_back(flow, ex, original, reason)  # an answer is now flow.response (responses.py keeps it)

    @staticmethod
    def take(flow: http.HTTPFlow) -> tuple[http.Request | None, Exchange | None]:
        """The client's original request, if this live flow may fall back; the record forgets it either way."""
        ex = Exchange.find(flow)
        if ex is None:
            return None, None
        original, ex.original = ex.original, None
        if not flow.live or ex.key is None or ex.fallback_of is not None:
            return None, None
        return original, ex

    async def fall_back(self, flow: http.HTTPFlow, ex: Exchange, original: http.Request, reason: str) -> bool:
        """Try the fallbacks in turn; True when one's answer (or last error) is now the flow's response."""
        answer: tuple[str, http.HTTPFlow] | None = None
        for n, model in enumerate(ex.fallbacks, 1):
            if replays.client_gone(flow):
                break
            logger.info(f"fallback: {ex.client_model} -> {model} after {reason[:120]}")
            attempt = make_attempt(flow, original, model, n)
            await self.run(attempt, flow)
            got = outcome(attempt)
            ex.attempts.append(attempt_record(Exchange.of(attempt), model, got))
            if isinstance(got, int):
                answer = (model, attempt)
                if not retryable(got):
                    break
            reason = str(got)
        if answer is not None:
            take_answer(flow, ex, *answer)
        return answer is not None

    async def retry_empty(self, flow: http.HTTPFlow, ex: Exchange, original: http.Request) -> None:
        """Ask once more for an empty answer; the retry's answer goes to the client unless it failed."""
        model = ex.client_model or ""
        logger.warning(f"{model}: empty answer from {ex.upstream_model} (no text, no tool calls): asking once more")
        ex.attempts = [{**attempt_record(ex, model, 200), "empty": True}]
        attempt = make_attempt(flow, original, model, 1)
        await self.run(attempt, flow)
        got = outcome(attempt)
        ex.attempts.append(attempt_record(Exchange.of(attempt), model, got))
        held, answer = rewriter_of(flow), attempt.response
        if got != 200 or answer is None:  # the first answer goes out after all (a 200 always has its response)
            if held is not None:
                stream_end.finish(flow, held.release())
            return
        if held is None or stream_end.finish(flow, answer.content or b""):
            take_answer(flow, ex, model, attempt)

    @staticmethod
    async def run(attempt: http.HTTPFlow, flow: http.HTTPFlow) -> None:
        """Send the attempt through every addon and the upstream; returns once its response or error hook ran."""
        handler = replays.Handler(attempt, ctx.options)
        replays.waiting[attempt.id] = flow
        try:
            await handler.replay()
        finally:
            del replays.waiting[attempt.id]
