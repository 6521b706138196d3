"""The request side: answer what the proxy answers itself, and route every chat request to its upstream.

One request through this addon: guard the proxy key -> local endpoints (/health, /v1/models) -> validate the chat
body -> resolve the model from opencode.json -> rewrite model, URL, key and Gemini repairs -> upstream. What was
decided is recorded in the flow's exchange record (formats/exchange.py), which mitmweb and saved flows keep.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import os
import time
from collections.abc import Coroutine
from typing import Any

import orjson
from mitmproxy import ctx, exceptions, http
from mitmproxy.net.http import url

from ..config import keys, opencode_config, resolution
from ..config.config_watch import ConfigWatch
from ..formats import errors, litellm_bridge
from ..formats.exchange import Exchange
from ..gemini import request_fields, thought_signatures, tool_schema
from ..runtime import upstream_key
from ..runtime.option_help import one_paragraph
from . import body_encoding, hops, native_chat
from .chat_request import ChatRequest, ClientError, encode_body, load_messages, parse_chat_request
from .replay import missing_key

logger = logging.getLogger(__name__)

CHAT_PATHS = ("/chat/completions", "/v1/chat/completions")
MODEL_PATHS = ("/models", "/v1/models")
# Client headers that must never reach the upstream: credentials of the client, and hints that name other hosts.
DROPPED_HEADERS = frozenset(
    (
        b"authorization",
        b"x-api-key",
        b"api-key",
        b"x-goog-api-key",
        b"x-forwarded-host",
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-original-url",
        b"x-rewrite-url",
        b"proxy-authorization",
    )
)


@functools.lru_cache(maxsize=256)
def parsed_url(address: str) -> tuple[bytes, bytes, int, bytes]:
    """What setting request.url would set; parsed once per upstream URL (the host check is IDNA work)."""
    return url.parse(address)


def json_response(flow: http.HTTPFlow, status: int, body: bytes) -> None:
    flow.response = http.Response.make(status, body, {"content-type": "application/json"})
    answered_here(flow)


def error_response(flow: http.HTTPFlow, status: int, message: str, code: str | None = None) -> None:
    flow.response = errors.error_response(message, status, code)
    Exchange.of(flow).error = message
    answered_here(flow)


def answered_here(flow: http.HTTPFlow) -> None:
    """A flow the proxy answers itself names the proxy's own address, not the reverse-proxy target mitmproxy
    put there: mitmdump's line then reads `POST http://127.0.0.1:8000/v1/chat/completions << 400`."""
    host, port = flow.client_conn.sockname[:2]
    if host:
        flow.request.scheme, flow.request.host, flow.request.port = "http", host, port


def on_event_loop() -> bool:
    """True in the proxy; False for a hook called directly (tests), where waiting for litellm blocks nothing."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def parse_temperature(text: str) -> float | None:
    """The translate_default_temperature option: empty is off, else a number from 0 to 2."""
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number.") from None
    if not 0 <= value <= 2:
        raise ValueError(f"{value} is not from 0 to 2.")
    return value


class Routing:
    def __init__(self) -> None:
        self.watch: ConfigWatch | None = None
        self.default_temperature: float | None = None
        self.start_error: str | None = None
        self.proxy_key = os.environ.get("PROXY_API_KEY") or None
        self.instance = hops.new_instance()  # the hop mark on what this proxy forwards (hops.py)
        self.started = False

    def load(self, loader) -> None:
        litellm_bridge.warm()  # seconds of import, in a thread: the proxy listens and answers meanwhile
        env = os.environ
        loader.add_option(
            "translate_config",
            str,
            env.get("OPENCODE_CONFIG") or "opencode.json",
            one_paragraph("""
            The opencode.json that names the models and their upstreams (opencode's own format: JSONC,
            {env:VAR}, {file:path}). Re-read when it changes; a broken file keeps the last good one.
            """),
        )
        loader.add_option(
            "translate_api_base",
            str,
            env.get("GEMINI_API_BASE") or "",
            one_paragraph("""
            The default upstream's base URL, for alias providers and names not in opencode.json. Empty: the
            first provider in opencode.json that is not this proxy, else Google's OpenAI-compatible endpoint.
            """),
        )
        loader.add_option(
            "translate_model",
            str,
            env.get("GEMINI_MODEL") or "gemini-2.5-flash",
            one_paragraph("""
            The upstream model for an alias that declares no mapping of its own (options.proxy.models).
            """),
        )
        loader.add_option(
            "translate_max_body",
            int,
            32 * 1024 * 1024,
            one_paragraph("""
            The largest chat request body accepted, in bytes; larger ones get a 413.
            """),
        )
        # A string: mitmweb cannot show an Optional[float] option, and --set cannot parse a float one.
        loader.add_option(
            "translate_default_temperature",
            str,
            "",
            one_paragraph("""
            A temperature to add when the client sends none, e.g. 0.7; empty is off. Off by default: Google asks to
            keep Gemini 3 at its default temperature. (A string: mitmproxy's --set cannot parse float options.)
            """),
        )
        loader.add_option(
            "translate_default_max_tokens",
            int,
            0,
            one_paragraph("""
            A max_tokens to add when the client sends none; 0 is off. Off by default: a cap silently cuts long
            opencode answers.
            """),
        )
        for name, what in (
            ("schemas", "rewrite tool parameter schemas to the subset Gemini accepts"),
            ("fields", "drop or translate request fields Gemini refuses"),
            ("signatures", "carry Gemini 3 thought signatures in tool-call ids and restore them"),
        ):
            loader.add_option(f"translate_repair_{name}", bool, True, one_paragraph(f"Gemini repair: {what}."))

    def configure(self, updated: set[str]) -> None:
        if "translate_default_temperature" in updated:
            text = ctx.options.translate_default_temperature
            try:
                self.default_temperature = parse_temperature(text)
            except ValueError as e:
                raise exceptions.OptionsError(f"Cannot parse translate_default_temperature {text}: {e}") from e
        watched = {"translate_config", "translate_api_base", "translate_model", "listen_port", "listen_host"}
        if (self.watch is None and not self.start_error) or watched & updated:
            try:
                self.watch = ConfigWatch(ctx.options.translate_config, self.settings())
            except opencode_config.ConfigError as e:
                if self.watch is None:
                    # At start-up: one clear line, no traceback; mitmproxy's errorcheck then stops the proxy.
                    self.start_error = str(e)
                    logger.error(f"Cannot start the translation proxy: {e}")
                    return
                raise exceptions.OptionsError(
                    f"Cannot load translate_config {ctx.options.translate_config}: {e}"
                ) from e
            logger.info(f"translation proxy: {self.watch.config.path}, {len(self.watch.config.model_names())} models")
            if self.started:
                self.watch.log_routes()

    def running(self) -> None:
        # Right after mitmproxy's "reverse proxy to ... listening at" line, which names only the reverse target.
        # (litellm is warming in its thread since `load`: nothing here waits for it.)
        self.started = True
        if self.watch:
            self.watch.log_routes()

    def settings(self) -> resolution.Settings:
        return resolution.Settings(
            api_base=ctx.options.translate_api_base or None,
            api_key=os.environ.get("GEMINI_API_KEY") or None,
            default_model=ctx.options.translate_model,
            proxy_port=ctx.options.listen_port or int(os.environ.get("PROXY_PORT") or 8000),
            listen_host=ctx.options.listen_host,
        )

    def request(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        watch = self.watch
        if flow.response or flow.error or not flow.live or watch is None:
            return None
        watch.refresh()
        path = flow.request.path.split("?", 1)[0].rstrip("/") or "/"
        if path == "/health":
            self.health(flow, watch)
        elif hop := flow.request.headers.get(hops.HEADER):
            listen = "{}:{}".format(*flow.client_conn.sockname[:2])
            error_response(flow, 508, hops.loop_message(hop, self.instance, listen), "loop_detected")
        # A replay (mitmweb, console, -C) is the operator's, and the client's key was never stored.
        elif self.proxy_key and flow.is_replay != "request" and not client_authorized(flow, self.proxy_key):
            error_response(
                flow, 401, "Missing or wrong proxy key: send PROXY_API_KEY as the Bearer token.", "invalid_api_key"
            )
        elif path in MODEL_PATHS and flow.request.method == "GET":
            self.models(flow, watch)
        elif not litellm_bridge.ready() and on_event_loop():  # resolution reads litellm: wait for it, not the loop
            return self.when_warm(flow)
        elif path in CHAT_PATHS and flow.request.method != "POST":
            error_response(flow, 405, f"{path} takes POST.", "method_not_allowed")
        elif path in CHAT_PATHS:
            self.chat(flow, watch)
        else:
            self.passthrough(flow, watch, path)
        return None

    async def when_warm(self, flow: http.HTTPFlow) -> None:
        """The request, once litellm_bridge.warm()'s import has finished; the loop serves others meanwhile."""
        try:
            await asyncio.wrap_future(litellm_bridge.warm())
        except Exception as e:
            return error_response(flow, 503, f"The proxy cannot route: importing litellm failed: {e}", "unavailable")
        self.request(flow)

    def health(self, flow: http.HTTPFlow, watch: ConfigWatch) -> None:
        config = watch.config
        body = {
            "status": "ok",
            "config": config.path,
            "models": len(config.model_names()),
            "config_error": watch.error,
            "litellm": litellm_bridge.state(),  # "loading" for the first seconds: chat requests wait for it
        }
        json_response(flow, 200, orjson.dumps(body))

    def models(self, flow: http.HTTPFlow, watch: ConfigWatch) -> None:
        json_response(flow, 200, orjson.dumps({"object": "list", "data": watch.config.model_names()}))

    def chat(self, flow: http.HTTPFlow, watch: ConfigWatch) -> None:
        try:
            encoding = flow.request.headers.get("content-encoding", "")
            content = body_encoding.decode_body(
                flow.request.raw_content or b"", encoding, ctx.options.translate_max_body
            )
            chat = parse_chat_request(content, ctx.options.translate_max_body)
            target = watch.resolve(chat.model)
        except ClientError as e:
            return error_response(flow, e.status, str(e), e.code)
        except ValueError as e:
            return error_response(flow, 400, str(e), "invalid_model")
        # Kept for fallbacks.py: another target, or once more after an empty answer (its option, when loaded).
        ex = Exchange.of(flow)
        if target.fallbacks or getattr(ctx.options, "translate_retry_empty_answer", False):
            # Not saved with the flow: it holds the client's proxy key.
            ex.original = flow.request.copy()
        # A fallback attempt (fallbacks.py) asks for the fallback's name but answers under the client's.
        client_model = ex.client_model if ex.fallback_of is not None and ex.client_model else chat.model
        ex.endpoint = f"{flow.request.method} {flow.request.path}"
        ex.client_model = client_model
        ex.upstream_model = target.upstream_model
        ex.stream = chat.stream
        ex.litellm_model = target.litellm_model
        ex.api_base = target.api_base
        ex.provider = target.provider
        ex.is_gemini = target.is_gemini
        ex.key = keys.shown(target.api_key, target.api_base)
        ex.key_source = target.key_source
        ex.key_hint = keys.refusal_hint(keys.Key(target.api_key, target.key_source, target.key_hint), target.api_base)
        ex.t_request = time.time()
        ex.repairs = []
        ex.fallbacks = list(target.fallbacks)
        ex.context_window = target.context_window
        ex.price_in = target.input_cost_per_token
        ex.price_out = target.output_cost_per_token
        ex.price_cached = target.cache_read_cost_per_token
        # Vertex AI's token comes from google-auth (vertex_auth.py), not from a key.
        if target.api != "vertex" and (message := missing_key(flow, target.api_key)):
            return error_response(flow, 401, message, "upstream_key_missing")
        if target.api != "openai":
            return self.chat_native(flow, chat, target, ex)
        ex.repairs = self.rewrite_body(chat, target)
        flow.request.headers.pop("content-encoding", None)  # the body goes upstream decoded
        flow.request.content = encode_body(chat.body)
        hop = {hops.HEADER: hops.mark(self.instance, target.provider, client_model)}
        self.point_at(flow, target.api_base, "chat/completions", target.api_key, {**target.headers, **hop})
        flow.request.headers["accept-encoding"] = "identity"  # the stream rewriter reads plain SSE

    def chat_native(self, flow: http.HTTPFlow, chat: ChatRequest, target: resolution.Target, ex: Exchange) -> None:
        """Gemini's native API (native_chat.py): the body translated by litellm, the key in x-goog-api-key."""
        try:
            native_chat.rewrite(flow, chat, target, ex)
        except ValueError as e:
            return error_response(flow, 400, str(e), "invalid_request")
        hop = {hops.HEADER: hops.mark(self.instance, target.provider, ex.client_model or chat.model)}
        self.point_at(flow, target.api_base, native_chat.path(target, chat.stream), None, {**target.headers, **hop})
        native_chat.attach_credentials(flow, target)
        flow.request.headers["accept-encoding"] = "identity"

    def rewrite_body(self, chat: ChatRequest, target: resolution.Target) -> list[str]:
        body = chat.body
        body["model"] = target.upstream_model
        repairs: list[str] = []
        if self.default_temperature is not None and "temperature" not in body:
            body["temperature"] = self.default_temperature
        if ctx.options.translate_default_max_tokens and "max_tokens" not in body:
            body["max_tokens"] = ctx.options.translate_default_max_tokens
        if not target.is_gemini:
            return repairs
        # Fields first: translating legacy `functions` into `tools` gives the schema cleaner more to clean.
        if ctx.options.translate_repair_fields:
            repairs += request_fields.repair_fields(body, target.upstream_model)
        if ctx.options.translate_repair_schemas:
            repairs += tool_schema.clean_tools(body)
        if ctx.options.translate_repair_signatures and thought_signatures.may_restore(
            chat.call_refs, target.upstream_model
        ):
            repairs += thought_signatures.restore_request(load_messages(chat).body, target.upstream_model)
        return repairs

    def passthrough(self, flow: http.HTTPFlow, watch: ConfigWatch, path: str) -> None:
        """Any other path goes to the default upstream with its key (embeddings and the like)."""
        target = watch.resolve(watch.settings.default_model)
        if message := missing_key(flow, target.api_key):
            return error_response(flow, 401, message, "upstream_key_missing")
        query = flow.request.path.partition("?")[2]
        rest = path.removeprefix("/v1").lstrip("/") + (f"?{query}" if query else "")
        hop = {hops.HEADER: hops.mark(self.instance, target.provider, path)}
        self.point_at(flow, target.api_base, rest, target.api_key, {**target.headers, **hop})
        ex = Exchange.of(flow)
        ex.passthrough, ex.key = True, keys.shown(target.api_key, target.api_base)

    @staticmethod
    def point_at(flow: http.HTTPFlow, api_base: str, rest: str, key: str | None, headers: dict[str, str]) -> None:
        flow.request.scheme, flow.request.host, flow.request.port, flow.request.path = parsed_url(
            api_base.rstrip("/") + "/" + rest
        )
        # One pass over the fields: popping each dropped name would scan them all a dozen times per request.
        kept = [(name, value) for name, value in flow.request.headers.fields if name.lower() not in DROPPED_HEADERS]
        flow.request.headers = http.Headers(kept)
        for name, value in headers.items():
            flow.request.headers[name] = value
        if key:
            upstream_key.attach_key(flow.request, key, resolution.mask_key(key))


def client_authorized(flow: http.HTTPFlow, proxy_key: str) -> bool:
    """Whether the request's Bearer token is the proxy key (compared in constant time)."""
    sent = flow.request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(sent.encode(), proxy_key.encode())
