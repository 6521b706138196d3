"""A local fake of Gemini's OpenAI-compatible endpoint (Gemini 3 flavour) for end-to-end tests.

In tests: `fake = FakeGemini().start()`; point the proxy at `fake.base_url` with `fake.key`; read `fake.requests`
and `fake.events`; `fake.stop()`. From a shell: `python -m tests.fake_gemini --port 8090`.
Serves POST chat/completions, GET models and POST embeddings under /v1beta/openai/ and under /. The control API
(no key): GET /_fake/requests, GET /_fake/events, POST /_fake/reset. What it answers: tests/fake_scripts.py.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import ssl
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fake_scripts import (
    DEFAULT_KEY,
    ERROR_MESSAGES,
    Answer,
    FakeError,
    Script,
    Signer,
    answer,
    check_request,
    completion,
    message_text,
    parse_script,
    stream_chunks,
)
from tests.served_app import ServedApp

BASE_PATH = "/v1beta/openai/"
MODELS = [
    "gemini-2.5-flash",
    "gemini-2.5-pro",
    "gemini-3-pro-preview",
    "gemini-3-flash-preview",
    "gemini-embedding-001",
]


def _dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def error_response(error: FakeError) -> web.Response:
    return web.Response(
        status=error.code, body=_dumps(error.body()), content_type="application/json", headers=error.headers
    )


class FakeState:
    """What the fake remembers: the requests it got, the events it saw, per-script error counts."""

    def __init__(self, key: str, signature_scope: str = "all", record_limit: int = 10_000) -> None:
        self.key, self.signature_scope, self.signer = key, signature_scope, Signer()
        self._lock = threading.Lock()
        self._requests: deque[dict[str, Any]] = deque(maxlen=record_limit)
        self._events: deque[dict[str, Any]] = deque(maxlen=record_limit)
        self.error_counts: Counter[str] = Counter()
        self._seq = 0

    def record(self, request: web.Request, raw: bytes) -> int:
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw[:10_000].decode(errors="replace")
        with self._lock:
            self._seq += 1
            self._requests.append(
                {
                    "seq": self._seq,
                    "time": time.time(),
                    "method": request.method,
                    "path": request.path,
                    "query": request.query_string,
                    "headers": dict(request.headers),
                    "body": body,
                    "size": len(raw),
                }
            )
            return self._seq

    def event(self, kind: str, seq: int, text: str = "", **data: Any) -> None:
        with self._lock:
            self._events.append({"type": kind, "seq": seq, "time": time.time(), "text": text, **data})

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._events.clear()
            self.error_counts.clear()


@dataclass
class Exchange:
    request: web.Request
    seq: int  # the request's number in the records
    sent: int = 0  # chunks (or body parts) written
    prepared: bool = False  # headers sent


Handler = Callable[[Exchange], Awaitable[web.StreamResponse]]


class Handlers:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    def recorded(self, handler: Handler, auth: bool = True) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Record the request, check its key, and record a client that leaves before the answer is complete."""

        async def record(request: web.Request) -> web.StreamResponse:
            exchange = Exchange(request, self.state.record(request, await request.read()))
            header = request.headers.get("Authorization")
            if auth and header != f"Bearer {self.state.key}":
                code = 401 if header is None else 400
                return error_response(FakeError(code, "API key not valid. Please pass a valid API key."))
            try:
                return await handler(exchange)
            except FakeError as e:
                return error_response(e)
            except (ConnectionResetError, asyncio.CancelledError):
                where = "mid-stream" if exchange.prepared else "before the response"
                self.state.event(
                    "disconnect",
                    exchange.seq,
                    f"client disconnected {where} at {time.time():.3f}",
                    chunks_sent=exchange.sent,
                )
                raise

        return record

    async def chat(self, exchange: Exchange) -> web.StreamResponse:
        body = check_request(await _json(exchange.request), self.state.signer, self.state.signature_scope)
        users = [m for m in body["messages"] if m.get("role") == "user"]
        script = parse_script(message_text(users[-1]) if users else "")
        await asyncio.sleep(script.slow)
        if script.error:
            code, times = script.error
            self.state.error_counts[script.text] += 1
            if not times or self.state.error_counts[script.text] <= times:
                headers = {"Retry-After": "7"} if code == 429 else {}
                raise FakeError(code, ERROR_MESSAGES.get(code, f"Scripted error {code}."), headers)
        result = answer(body, script, self.state.signer)
        if script.empty is not None:
            self.state.error_counts[f"[empty] {script.text}"] += 1
            if not script.empty or self.state.error_counts[f"[empty] {script.text}"] <= script.empty:
                result = Answer([], [], script.cached)
        if body.get("stream"):
            return await self._stream(exchange, body, script, result)
        data = _dumps(completion(body, result, f"fake-{exchange.seq}"))
        await asyncio.sleep(script.stall)
        if not script.cut:
            return web.Response(body=data, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(data)
        await self._send(exchange, response, [data[: len(data) // 2]])
        return await self._cut(exchange, response)

    async def _stream(
        self, exchange: Exchange, body: dict[str, Any], script: Script, result: Answer
    ) -> web.StreamResponse:
        chunks = stream_chunks(body, result, f"fake-{exchange.seq}")
        frames = [b"data: " + _dumps(c) + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]
        if script.cut:  # all but the last chunk and [DONE]
            frames = frames[: max(1, len(frames) - 2)]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await self._send(exchange, response, frames, script.chunks[1] / 1000 if script.chunks else 0.0, script.stall)
        if script.cut:
            return await self._cut(exchange, response)
        await asyncio.sleep(script.linger)
        await response.write_eof()
        self.state.event("done", exchange.seq, "stream complete", chunks_sent=exchange.sent)
        return response

    async def _send(
        self,
        exchange: Exchange,
        response: web.StreamResponse,
        parts: list[bytes],
        delay: float = 0.0,
        stall: float = 0.0,
    ) -> None:
        """Send the headers, then the parts `delay` seconds apart, with a pause of `stall` after the first."""
        await response.prepare(exchange.request)
        exchange.prepared = True
        for n, part in enumerate(parts):
            if n and delay:
                await asyncio.sleep(delay)
            await response.write(part)
            exchange.sent += 1
            if n == 0:
                await asyncio.sleep(stall)

    async def _cut(self, exchange: Exchange, response: web.StreamResponse) -> web.StreamResponse:
        await asyncio.sleep(0.05)  # let the parts reach the client before the connection goes
        self.state.event("cut", exchange.seq, "fake cut the connection", chunks_sent=exchange.sent)
        if exchange.request.transport is not None:
            exchange.request.transport.close()
        return response

    async def models(self, exchange: Exchange) -> web.Response:
        data = [{"id": f"models/{m}", "object": "model", "owned_by": "google"} for m in MODELS]
        return web.json_response({"object": "list", "data": data})

    async def embeddings(self, exchange: Exchange) -> web.Response:
        body = await _json(exchange.request)
        model = str(body.get("model", "")) if isinstance(body, dict) else ""
        if not model.removeprefix("models/").startswith(("gemini-", "text-embedding-")):
            raise FakeError(404, f"models/{model} is not found for API version v1main.")
        inputs = [body.get("input")] if isinstance(body.get("input"), str) else list(body.get("input") or [])
        data = [{"object": "embedding", "index": i, "embedding": _vector(str(text))} for i, text in enumerate(inputs)]
        tokens = sum(len(str(t)) // 4 + 1 for t in inputs)
        return web.json_response(
            {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        )

    async def not_found(self, exchange: Exchange) -> web.Response:
        raise FakeError(404, f"The fake Gemini has no {exchange.request.method} {exchange.request.path}.")

    async def control(self, request: web.Request) -> web.Response:
        what = request.match_info["what"]
        if what == "reset" and request.method == "POST":
            self.state.reset()
            return web.json_response({"ok": True})
        if what in ("requests", "events") and request.method == "GET":
            return web.json_response(getattr(self.state, what))
        raise web.HTTPNotFound()


async def _json(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except ValueError as e:
        raise FakeError(400, f"Invalid JSON payload received. {e}") from e


def _vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(b / 255 - 0.5, 4) for b in digest[:8]]


def make_app(state: FakeState) -> web.Application:
    handlers = Handlers(state)
    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_route("*", "/_fake/{what}", handlers.control)
    for prefix in (BASE_PATH, "/"):
        app.router.add_post(prefix + "chat/completions", handlers.recorded(handlers.chat))
        app.router.add_get(prefix + "models", handlers.recorded(handlers.models))
        app.router.add_post(prefix + "embeddings", handlers.recorded(handlers.embeddings))
    app.router.add_route("*", "/{tail:.*}", handlers.recorded(handlers.not_found, auth=False))
    return app


class FakeGemini(ServedApp):
    """The fake upstream on 127.0.0.1, served from a background thread with its own event loop."""

    runner_options = {"handler_cancellation": True}  # a client that goes away cancels the handler

    def __init__(
        self,
        key: str = DEFAULT_KEY,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        signature_scope: str = "all",
        record_limit: int = 10_000,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.key, self.host, self.port = key, host, port
        self.ssl_context = ssl_context  # served over HTTPS with it, as Gemini is
        self.state = FakeState(key, signature_scope, record_limit)

    @property
    def root_url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + BASE_PATH

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request but the control API's: seq, time, method, path, query, headers, body (parsed), size."""
        return self.state.requests

    @property
    def events(self) -> list[dict[str, Any]]:
        """type ("disconnect", "cut", "done"), seq (of the request), time, text, chunks_sent."""
        return self.state.events

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    def reset(self) -> FakeGemini:
        self.state.reset()
        return self

    def wait_event(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """The first event of this type, waiting for it; AssertionError with all events when none comes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := [e for e in self.events if e["type"] == kind]:
                return found[0]
            time.sleep(0.02)
        raise AssertionError(f"The fake saw no {kind!r} event within {timeout} s; its events: {self.events}")

    def make_app(self) -> web.Application:
        return make_app(self.state)


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake Gemini OpenAI-compatible endpoint for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--key", default=DEFAULT_KEY)
    parser.add_argument("--signature-scope", choices=["all", "current"], default="all")
    args = parser.parse_args()
    app = make_app(FakeState(args.key, args.signature_scope))
    print(f"fake Gemini at http://{args.host}:{args.port}{BASE_PATH} (key {args.key})", flush=True)
    web.run_app(app, host=args.host, port=args.port, handler_cancellation=True, print=None, access_log=None)


if __name__ == "__main__":
    main()
