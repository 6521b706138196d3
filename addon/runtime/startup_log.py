"""No "listening at" line after a fatal start-up error.

A broken opencode.json is an ERROR at start-up (routing.py), and mitmproxy's errorcheck then stops the proxy. The
script loads while mitmproxy binds its servers, so mitmproxy's own `reverse proxy to … listening at …` line could
follow the error before the exit, telling the user the proxy is up when it is stopping. From `load` until the
proxy runs, this addon notes ERROR records and drops that line once one was logged.
"""

from __future__ import annotations

import logging

SERVERS_LOGGER = "mitmproxy.proxy.mode_servers"  # mitmproxy's proxy servers: "<mode> listening at <address>."


class _ErrorSeen(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen = False

    def emit(self, record: logging.LogRecord) -> None:
        self.seen = True


class _NoListeningAfterError(logging.Filter):
    def __init__(self, errors: _ErrorSeen) -> None:
        super().__init__()
        self.errors = errors

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.errors.seen and "listening at" in record.getMessage())


class StartupLog:
    def __init__(self) -> None:
        self.errors = _ErrorSeen()
        self.quiet = _NoListeningAfterError(self.errors)

    def load(self, loader) -> None:
        logging.getLogger().addHandler(self.errors)
        logging.getLogger(SERVERS_LOGGER).addFilter(self.quiet)

    def running(self) -> None:  # started: what the servers log from now on is true
        self.remove()

    def done(self) -> None:
        self.remove()

    def remove(self) -> None:
        logging.getLogger().removeHandler(self.errors)
        logging.getLogger(SERVERS_LOGGER).removeFilter(self.quiet)
