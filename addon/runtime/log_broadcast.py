"""mitmproxy's deprecated `add_log` event is produced only while some addon listens for it.

mitmproxy 12 still turns every log record into an `add_log` event for addons written before mitmproxy 9: its
handler formats the record a second time, wakes the event loop through its self-pipe and walks every addon
with the event. No addon of mitmproxy's or of this proxy listens (mitmweb's and the console's event logs read
the records through handlers of their own), so each log line paid that walk for nothing: with this proxy's two
records per request it cost about a tenth of the requests per second (the benchmark, `./mitm_run.sh bench`).

The handler stays installed; a logging filter on it lets a record through only while a loaded addon has an
`add_log` method. The answer is cached for the set of loaded addons, so a script loaded or reloaded later that
still uses `add_log` gets its events again. This reaches mitmproxy's `Master._legacy_log_events`, a private
attribute; without it (another mitmproxy version) nothing changes.
"""

from __future__ import annotations

import logging

from mitmproxy import ctx
from mitmproxy.addonmanager import AddonManager, traverse

HOOK = "add_log"


def has_listener(addons: AddonManager) -> bool:
    """Does any loaded addon (scripts' addons included) still implement the deprecated `add_log` hook?"""
    return any(callable(getattr(a, HOOK, None)) for a in traverse(addons.chain))


class ListenerGate(logging.Filter):
    """Passes records to the legacy handler only while `has_listener`; recomputed when the loaded addons change."""

    def __init__(self, addons: AddonManager) -> None:
        super().__init__()
        self.addons = addons
        self.loaded: tuple[int, ...] = ()
        self.listening = True

    def filter(self, record: logging.LogRecord) -> bool:
        # Scripts (re)load by registering new addon objects, so their ids tell a change from no change.
        loaded = tuple(map(id, self.addons.lookup.values()))
        if loaded != self.loaded:
            self.loaded, self.listening = loaded, has_listener(self.addons)
        return self.listening


class LegacyLogBroadcast:
    def __init__(self) -> None:
        self.gate: ListenerGate | None = None
        self.handler: logging.Handler | None = None

    def running(self) -> None:
        handler = getattr(ctx.master, "_legacy_log_events", None)
        if not isinstance(handler, logging.Handler) or self.gate is not None:
            return
        self.handler, self.gate = handler, ListenerGate(ctx.master.addons)
        handler.addFilter(self.gate)

    def done(self) -> None:
        if self.handler is not None and self.gate is not None:
            self.handler.removeFilter(self.gate)
        self.handler = self.gate = None
