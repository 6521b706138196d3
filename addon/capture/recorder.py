"""Capture mode's addon: recognises LLM exchanges passing through the forward proxy and annotates them, passively.

Nothing is changed on the way: requests go where the client sent them, answers stream on as they come. A request
recognised by host and path (readers/recognise.py) whose body reads as its format gets an exchange record
(formats/exchange.py) with the fields the reverse proxy's flows have (client_model, upstream_model, t_request, t_first_chunk, t_end,
answer with its usage, chunk_times, body_truncated, error, tool_checks, price_in/price_out/price_cached), plus
`capture` (the format), `provider` and `host` (as the client named it); so the comment, the marks, the LLM chat view and any addon that reads
those fields work on both. Everything else gets no metadata at all.

Sessions (inspection/sessions/addon.py) run after this addon, reading each request through `chat_body`: every format as an
OpenAI chat body, so a flow gets its session, turn and what is new (`session` in the metadata; opencode sends its
session headers to every provider), and its comment starts with `s:3f2a #2 | `. The turn is begun soon after the
request hook, before any answer can arrive, so the comment written in `response` has it.

litellm's provider hosts and prices are read in a thread at start-up (importing litellm takes seconds); until
then only the built-in hosts are recognised and prices are unknown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from mitmproxy import ctx, exceptions, http

from ..formats import litellm_bridge
from ..formats.answer import Answer
from ..formats.exchange import KEY, Exchange
from ..inspection import toolcheck, turn_text
from ..inspection.report import Report
from ..inspection.summary import comment_line, summarize_answer
from ..runtime.option_help import one_paragraph
from .readers import READERS
from .readers.recognise import BUILTIN_HOSTS, parse_hosts, recognise
from .stream_tap import StreamTap

logger = logging.getLogger(__name__)


def reader_request(flow: http.HTTPFlow, ex: Exchange) -> dict:
    """The flow's request as an OpenAI chat body. Raises ValueError when it does not read as its format."""
    try:
        body = orjson.loads(flow.request.get_content(strict=False) or b"")
    except orjson.JSONDecodeError as e:
        raise ValueError(f"The request body is not JSON: {e}.") from None
    if not isinstance(body, dict):
        raise ValueError("The request body is not a JSON object.")
    chat = READERS[str(ex.capture)].chat_request(body)
    return {"model": ex.path_model, **chat} if ex.path_model else chat


def chat_body(flow: http.HTTPFlow) -> bytes:
    """What Sessions reads a turn from: a captured request as an OpenAI chat body (the request body as it is for a
    flow capture mode did not read). Raises ValueError when it does not read as its format."""
    ex = Exchange.find(flow)
    if ex is None or ex.capture not in READERS:
        return flow.request.raw_content or b""
    try:
        return orjson.dumps(reader_request(flow, ex))
    except (KeyError, TypeError) as e:
        raise ValueError(f"The request does not read as {ex.capture}: {e!r}") from None


class Capture:
    def __init__(self) -> None:
        self.extra_hosts: dict[str, str] = {}
        self.litellm_hosts: dict[str, str] = {}
        self.costs: dict[str, dict[str, Any]] = {}

    def load(self, loader) -> None:
        loader.add_option(
            "capture_hosts",
            Sequence[str],
            [],
            one_paragraph("""
            More hosts whose LLM requests capture mode reads, beside OpenAI's, Anthropic's, Google's, OpenRouter's
            and those litellm knows: `host` or `host=provider` (provider as litellm names it, for prices), e.g.
            llm.example.com=openai. Repeat the option for more.
            """),
        )
        loader.add_option(
            "capture_keep_stream_bytes",
            int,
            4 * 1024 * 1024,
            one_paragraph("""
            How much of each streamed answer the flow keeps. Beyond it the stored body is cut; the answer read
            from the stream stays complete.
            """),
        )

    def configure(self, updated: set[str]) -> None:
        if {"map_remote", "connection_strategy"} & updated:
            self.connect_lazily()
        if "capture_hosts" in updated:
            try:
                self.extra_hosts = parse_hosts(ctx.options.capture_hosts)
            except ValueError as e:
                raise exceptions.OptionsError(f"Cannot parse capture_hosts {ctx.options.capture_hosts}: {e}") from e

    @staticmethod
    def connect_lazily() -> None:
        """With map_remote rules, dial the server once the request is known: eager connections dial the CONNECT's
        host before map_remote has run, and a stand-in or gateway for a host that cannot be reached never answers."""
        options = ctx.options
        if getattr(options, "map_remote", None) and getattr(options, "connection_strategy", "") == "eager":
            logger.info("capture mode: connection_strategy=lazy, so --map-remote decides where each request goes")
            ctx.options.update(connection_strategy="lazy")

    def running(self) -> None:
        threading.Thread(target=self.load_litellm_tables, name="capture-litellm", daemon=True).start()
        confdir = Path(ctx.options.confdir).expanduser()
        logger.info(
            "capture mode: run opencode (or any client) as\n"
            f"  HTTPS_PROXY=http://{ctx.options.listen_host or '127.0.0.1'}:{ctx.options.listen_port} "
            f"NODE_EXTRA_CA_CERTS={confdir / 'mitmproxy-ca-cert.pem'} opencode"
        )

    def load_litellm_tables(self) -> None:
        try:
            self.litellm_hosts = litellm_bridge.provider_hosts()
            self.costs = litellm_bridge.model_costs()
        except Exception as e:  # noqa: BLE001 - litellm's tables are a bonus; capture works without them
            logger.warning(f"capture mode: litellm's provider hosts and prices are not available: {e}")

    @property
    def hosts(self) -> dict[str, str]:
        return {**self.litellm_hosts, **BUILTIN_HOSTS, **self.extra_hosts}

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        found = recognise(flow.request.method, flow.request.pretty_host, flow.request.path, self.hosts)
        if found:
            flow.metadata[KEY] = Exchange(
                capture=found.format,
                provider=found.provider,
                t_request=time.time(),
                path_model=found.path_model,
                host=flow.request.pretty_host,
            )

    def request(self, flow: http.HTTPFlow) -> None:
        ex = self.record(flow)
        if ex is None or flow.response:
            return
        try:
            chat = reader_request(flow, ex)
        except (ValueError, KeyError, TypeError):
            del flow.metadata[KEY]  # a recognised path, but not an LLM request: left unannotated
            return
        ex.client_model = str(chat.get("model") or ex.path_model or "(no model)")

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        ex = self.record(flow)
        if ex is None or not flow.response or ex.client_model is None:
            return
        if flow.response.headers.get("content-type", "").startswith("text/event-stream"):
            reader = READERS[str(ex.capture)].Stream()
            encoding = flow.response.headers.get("content-encoding", "")
            keep = ctx.options.capture_keep_stream_bytes
            flow.response.stream = StreamTap(reader, keep, ex.t_request or time.time(), encoding)

    def response(self, flow: http.HTTPFlow) -> None:
        ex = self.record(flow)
        if ex is None or not flow.response or ex.client_model is None:
            return
        ex.t_end = time.time()
        if isinstance(flow.response.stream, StreamTap):
            self.finish_stream(flow, ex, flow.response.stream)
        else:
            ex.t_first_chunk = ex.t_end
            self.read_answer(flow, ex)
        if flow.response.status_code >= 400:
            body = flow.response.get_content(strict=False) or b""
            ex.error = f"upstream {flow.response.status_code}: {body[:300].decode('utf-8', 'replace')}"
        self.annotate(flow, ex)

    def error(self, flow: http.HTTPFlow) -> None:
        ex = self.record(flow)
        if ex is None or ex.client_model is None:
            return
        ex.t_end = time.time()
        ex.error = flow.error.msg if flow.error else "unknown error"
        tap = flow.response.stream if flow.response else None
        if isinstance(tap, StreamTap):
            self.finish_stream(flow, ex, tap)
        self.annotate(flow, ex)

    @staticmethod
    def record(flow: http.HTTPFlow) -> Exchange | None:
        """The record of a live flow this addon recognised."""
        ex = Exchange.find(flow) if flow.live else None
        return ex if ex is not None and ex.capture is not None else None

    def finish_stream(self, flow: http.HTTPFlow, ex: Exchange, tap: StreamTap) -> None:
        assert flow.response is not None
        flow.response.stream = False
        flow.response.raw_content = bytes(tap.kept.data)  # what passed, as it passed (still encoded)
        ex.t_first_chunk, ex.chunk_times, ex.answer = tap.t_first, tap.chunk_times, tap.answer.to_dict()
        ex.body_truncated, ex.upstream_model = tap.kept.truncated, tap.reader.model or ex.client_model
        if tap.errors:
            ex.error = "; ".join(tap.errors)

    def read_answer(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        assert flow.response is not None
        reader = READERS[str(ex.capture)]
        try:
            body = orjson.loads(flow.response.get_content(strict=False) or b"")
            completion = reader.completion(body)
        except (ValueError, TypeError, AttributeError):  # an error body, an HTML page: no answer
            ex.upstream_model = ex.client_model
            return
        answer = Answer()
        answer.add_completion(completion)
        ex.answer, ex.upstream_model = answer.to_dict(), reader.answer_model(body) or ex.client_model
        if isinstance(completion.get("error"), dict):
            ex.error = f"{completion['error'].get('code')}: {completion['error'].get('message')}"

    def annotate(self, flow: http.HTTPFlow, ex: Exchange) -> None:
        if ex.upstream_model is None:
            ex.upstream_model = ex.client_model
        self.add_prices(ex)
        calls = (ex.answer or {}).get("tool_calls")
        if calls:
            try:
                offered = toolcheck.tool_schemas(reader_request(flow, ex))
            except (ValueError, KeyError, TypeError):
                offered = {}
            ex.tool_checks = toolcheck.check_tool_calls(calls, offered)
        flow.comment = comment_line(ex)
        flow.marked = Report.mark(ex)
        lines = [f"{flow.request.method} {flow.request.pretty_url}", *turn_text.log_lines(ex)]
        lines += [summarize_answer(ex)] if ex.answer else []  # the tool calls with their arguments, as the proxy's
        logger.info("\n".join([*lines, f"  {flow.comment}"]))

    def add_prices(self, ex: Exchange) -> None:
        provider = ex.provider or ""
        for model in (ex.upstream_model, ex.client_model):
            info = self.costs.get(f"{provider}/{model}") or self.costs.get(str(model))
            if info and info.get("input_cost_per_token") is not None:
                ex.price_in = info.get("input_cost_per_token")
                ex.price_out = info.get("output_cost_per_token")
                ex.price_cached = info.get("cache_read_input_token_cost")
                return
