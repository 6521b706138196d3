"""A local OTLP/HTTP sink for the benchmark's "OTel export on" row: it takes POST /v1/traces, counts the exports
and their bytes, and answers 200 with an empty ExportTraceServiceResponse (zero bytes of protobuf). Nothing is
decoded: the row measures what exporting costs the proxy, not a collector."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class OtlpSink:
    def __init__(self) -> None:
        self.port, self.requests, self.bytes = 0, 0, 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def traces(self, request: web.Request) -> web.Response:
        self.bytes += len(await request.read())
        self.requests += 1
        return web.Response(body=b"", content_type="application/x-protobuf")

    def start(self) -> OtlpSink:
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), name="otlp-sink", daemon=True).start()
        if not ready.wait(10):
            raise RuntimeError("the OTLP sink did not start")
        return self

    def _serve(self, ready: threading.Event) -> None:
        self._loop = loop = asyncio.new_event_loop()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/traces", self.traces)
        self._runner = runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
        self.port = runner.addresses[0][1]
        ready.set()
        loop.run_forever()

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
