"""An aiohttp application served on a thread of its own: the lifecycle the fake upstreams share.

A subclass builds its application in make_app(); start() returns once it listens (port 0 picks a free port, read
back into .port), stop() ends the loop, and `with` does both.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from typing import Any, Self

from aiohttp import web


class ServedApp:
    host: str = "127.0.0.1"
    port: int = 0
    ssl_context: ssl.SSLContext | None = None
    runner_options: dict[str, Any] = {}  # extra web.AppRunner arguments
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _failure: BaseException | None = None

    def make_app(self) -> web.Application:
        raise NotImplementedError

    def start(self) -> Self:
        ready = threading.Event()
        self._failure = None
        self._thread = threading.Thread(target=self._serve, args=(ready,), name=type(self).__name__, daemon=True)
        self._thread.start()
        if not ready.wait(10) or self._failure:
            raise RuntimeError(f"{type(self).__name__} did not start: {self._failure!r}")
        return self

    def _serve(self, ready: threading.Event) -> None:
        self._loop = loop = asyncio.new_event_loop()
        runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=1.0, **self.runner_options)
        try:
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, self.host, self.port, ssl_context=self.ssl_context).start())
            self.port = runner.addresses[0][1]
        except BaseException as e:  # reported by start()
            self._failure = e
        ready.set()
        if not self._failure:
            loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    def stop(self) -> None:
        if self._loop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
