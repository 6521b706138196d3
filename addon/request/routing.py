"""The request side: answer what the proxy answers itself, and route every chat request to its upstream.

One request through this addon: local endpoints (/health, /v1/models: local_answers.py) -> loop guard (hops.py)
-> the proxy key -> validate the chat body (body_encoding.py, chat_request.py) -> resolve the model from
opencode.json (config/) -> rewrite model, URL, key and Gemini repairs (upstream_request.py) -> upstream. What was
decided is recorded in the flow's exchange record (formats/exchange.py), which mitmweb and saved flows keep.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine
from typing import Any

from mitmproxy import ctx, exceptions, http

from ..config import keys, opencode_config, resolution
from ..config.config_watch import ConfigWatch
from ..formats import litellm_bridge
from ..formats.conversation import Conversations
from ..formats.exchange import Exchange
from ..runtime.option_help import one_paragraph
from . import body_encoding, client_request, hops, native_chat
from .chat_request import ChatRequest, ClientError, encode_body, parse_chat_request
from .local_answers import CHAT_PATHS, MODEL_PATHS, client_authorized, error_response, health, models
from .replay import missing_key, note_route
from .upstream_request import point_at, record_target, rewrite_body

logger = logging.getLogger(__name__)


def on_event_loop() -> bool:
    """True in the proxy; False for a hook called directly (tests), where waiting for litellm blocks nothing."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def sends_anything() -> bool:
    """Whether this process may send requests: it listens, replays a file (-C), or has a UI to replay from."""
    options = ctx.options
    return bool(options.server or getattr(options, "client_replay", None) or ctx.master.addons.get("view"))


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
        self.conversations = Conversations()  # recent requests' messages, split: a turn reads only what it adds
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
        if self.watch is None:
            return
        rfile = getattr(ctx.options, "rfile", None)  # mitmproxy's ReadFile addon declares it
        if rfile and not sends_anything():
            # Reading a file: the flows keep the routes they were recorded with, and nothing goes out, so today's
            # route table (and its missing keys) would only mislead.
            logger.info(
                f"Reading {rfile}: each flow shows the upstream it was recorded with; nothing is sent, "
                "so the routes in opencode.json are not used."
            )
            return
        if rfile:
            logger.info(
                f"Flows read from {rfile} keep the upstream they were recorded with; the routes below "
                "apply to new requests and replays."
            )
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
            health(flow, watch)
        elif hop := flow.request.headers.get(hops.HEADER):
            listen = "{}:{}".format(*flow.client_conn.sockname[:2])
            error_response(flow, 508, hops.loop_message(hop, self.instance, listen), "loop_detected")
        # A replay (mitmweb, console, -C) is the operator's, and the client's key was never stored.
        elif self.proxy_key and flow.is_replay != "request" and not client_authorized(flow, self.proxy_key):
            error_response(
                flow, 401, "Missing or wrong proxy key: send PROXY_API_KEY as the Bearer token.", "invalid_api_key"
            )
        elif path in MODEL_PATHS and flow.request.method == "GET":
            models(flow, watch)
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

    def chat(self, flow: http.HTTPFlow, watch: ConfigWatch) -> None:
        try:
            encoding = flow.request.headers.get("content-encoding", "")
            content = body_encoding.decode_body(
                flow.request.raw_content or b"", encoding, ctx.options.translate_max_body
            )
            chat = parse_chat_request(content, ctx.options.translate_max_body, self.conversations)
            target = watch.resolve(chat.model)
        except ClientError as e:
            return error_response(flow, e.status, str(e), e.code)
        except ValueError as e:
            return error_response(flow, 400, str(e), "invalid_model")
        # Kept for fallbacks.py: another target, or once more after an empty answer (its option, when loaded).
        ex = Exchange.of(flow)
        ex.conversation = (chat.split, chat.body)  # for the session digests (inspection/sessions/addon.py)
        if target.fallbacks or getattr(ctx.options, "translate_retry_empty_answer", False):
            # Not saved with the flow: it holds the client's proxy key.
            ex.original = flow.request.copy()
        # A fallback attempt (fallbacks.py) asks for the fallback's name but answers under the client's.
        client_model = ex.client_model if ex.fallback_of is not None and ex.client_model else chat.model
        record_target(ex, flow, target, client_model, chat.stream)
        note_route(ex)
        # Vertex AI's token comes from google-auth (vertex_auth.py), not from a key.
        if target.api != "vertex" and (message := missing_key(flow, target.api_key)):
            return error_response(flow, 401, message, "upstream_key_missing")
        if target.api != "openai":
            return self.chat_native(flow, chat, target, ex)
        client = client_request.beside(content, chat.body)  # the client's fields, before the rewrite changes them
        ex.repairs = rewrite_body(chat, target, self.default_temperature)
        flow.request.headers.pop("content-encoding", None)  # the body goes upstream decoded
        flow.request.content = encode_body(chat.body)
        client_request.shrink(ex.client_request, flow.request.raw_content or b"", client, chat.body)
        hop = {hops.HEADER: hops.mark(self.instance, target.provider, client_model)}
        point_at(flow, target.api_base, "chat/completions", target.api_key, {**target.headers, **hop})
        flow.request.headers["accept-encoding"] = "identity"  # the stream rewriter reads plain SSE

    def chat_native(self, flow: http.HTTPFlow, chat: ChatRequest, target: resolution.Target, ex: Exchange) -> None:
        """Gemini's native API (native_chat.py): the body translated by litellm, the key in x-goog-api-key."""
        try:
            native_chat.rewrite(flow, chat, target, ex)
        except ValueError as e:
            return error_response(flow, 400, str(e), "invalid_request")
        hop = {hops.HEADER: hops.mark(self.instance, target.provider, ex.client_model or chat.model)}
        point_at(flow, target.api_base, native_chat.path(target, chat.stream), None, {**target.headers, **hop})
        native_chat.attach_credentials(flow, target)
        flow.request.headers["accept-encoding"] = "identity"

    def passthrough(self, flow: http.HTTPFlow, watch: ConfigWatch, path: str) -> None:
        """Any other path goes to the default upstream with its key (embeddings and the like)."""
        target = watch.resolve(watch.settings.default_model)
        if message := missing_key(flow, target.api_key):
            return error_response(flow, 401, message, "upstream_key_missing")
        query = flow.request.path.partition("?")[2]
        rest = path.removeprefix("/v1").lstrip("/") + (f"?{query}" if query else "")
        hop = {hops.HEADER: hops.mark(self.instance, target.provider, path)}
        point_at(flow, target.api_base, rest, target.api_key, {**target.headers, **hop})
        ex = Exchange.of(flow)
        ex.passthrough, ex.key = True, keys.shown(target.api_key, target.api_base)
