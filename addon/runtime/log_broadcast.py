"""mitmproxy's deprecated `add_log` event is produced only while some addon listens for it.

mitmproxy 12 still turns every log record into an `add_log` event for addons written before mitmproxy 9: its
handler formats the record a second time, wakes the event loop through its self-pipe and walks every addon
with the event. No addon of mitmproxy's or of this proxy listens (mitmweb's and the console's event logs read
the records through handlers of their own), so each log line paid that walk for nothing: with this proxy's two
records per request it cost about a tenth of the requests per second (the benchmark, `./mitm_run.sh bench`).

The handler stays installed; a logging filter on it lets a record through only while a loaded addon has an
`add_log` method. The answer is cached for the set of loaded addons, so a script loaded or reloaded later that
still uses `add_log` gets its events again. This reaches mitmproxy's `Master._legacy_log_events`, a private
attribute: patches.py adds the filter in `running` once the start-up check (internals.py) found it as mitmproxy
12.3.1 has it, and takes it away in `done`.
"""

from __future__ import annotations

import logging
from typing import Any

from mitmproxy import addonmanager

from . import internals

HOOK = "add_log"


def has_listener(addons: addonmanager.AddonManager) -> bool:
    """Does any loaded addon (scripts' addons included) still implement the deprecated `add_log` hook?"""
    return any(callable(getattr(a, HOOK, None)) for a in addonmanager.traverse(addons.chain))


class ListenerGate(logging.Filter):
    """Passes records to the legacy handler only while `has_listener`; recomputed when the loaded addons change."""

    def __init__(self, addons: addonmanager.AddonManager) -> None:
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


_installed: list[tuple[logging.Handler, ListenerGate]] = []  # the handler and its gate, while installed


def install(master: Any) -> None:
    if not _installed:
        handler = master._legacy_log_events
        _installed.append((handler, ListenerGate(master.addons)))
        handler.addFilter(_installed[0][1])


def uninstall() -> None:
    if _installed:
        handler, gate = _installed.pop()
        handler.removeFilter(gate)


PATCH = internals.Patch(
    name="log broadcast",
    written_for="12.3.1",
    internals=(
        internals.on_master(
            "mitmproxy.master.Master._legacy_log_events",
            lambda master: master,
            "_legacy_log_events",
            internals.instance(logging.Handler),
        ),
        internals.on_master(
            "mitmproxy.addonmanager.AddonManager.lookup",
            lambda master: master.addons,
            "lookup",
            internals.instance(dict),
        ),
        internals.on_master(
            "mitmproxy.addonmanager.AddonManager.chain", lambda master: master.addons, "chain", internals.instance(list)
        ),
        internals.at("mitmproxy.addonmanager.traverse", internals.signature("chain")),
    ),
    install=install,
    uninstall=uninstall,
    without="every log line is broadcast as a deprecated add_log event, as in plain mitmproxy (slower)",
)
