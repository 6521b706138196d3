"""The deprecated add_log broadcast runs only while some loaded addon listens for it."""

import logging

from mitmproxy.test import taddons

from addon.runtime import log_broadcast
from addon.runtime.patches import MitmproxyPatches


class OldStyleAddon:
    """An addon written before mitmproxy 9: it still takes log entries through the add_log event."""

    def __init__(self) -> None:
        self.entries = []

    def add_log(self, entry) -> None:
        self.entries.append(entry)


def record(message: str = "hello") -> logging.LogRecord:
    return logging.LogRecord("addon.inspection.report", logging.INFO, __file__, 1, message, None, None)


def test_without_a_listener_the_legacy_handler_lets_nothing_through():
    patches = MitmproxyPatches((log_broadcast.PATCH,))
    with taddons.context(patches) as tctx:
        handler = tctx.master._legacy_log_events
        assert handler.filter(record())  # mitmproxy's own behaviour: loading the addon changes nothing yet
        patches.running()
        assert not handler.filter(record())
        patches.done()


def test_an_addon_that_listens_gets_its_events_again():
    patches = MitmproxyPatches((log_broadcast.PATCH,))
    with taddons.context(patches) as tctx:
        patches.running()
        handler = tctx.master._legacy_log_events
        assert not handler.filter(record())
        tctx.master.addons.add(OldStyleAddon())  # what a script loaded or reloaded later does
        assert handler.filter(record())
        patches.done()


def test_done_takes_the_filter_away():
    patches = MitmproxyPatches((log_broadcast.PATCH,))
    with taddons.context(patches) as tctx:
        handler = tctx.master._legacy_log_events
        filters = list(handler.filters)
        patches.running()
        log_broadcast.install(tctx.master)  # installed once, however often asked
        assert len(handler.filters) == len(filters) + 1
        patches.done()
        assert handler.filters == filters and handler.filter(record())


def test_has_listener_looks_into_scripts_children():
    class Script:
        def __init__(self) -> None:
            self.addons = [OldStyleAddon()]

    with taddons.context() as tctx:
        assert not log_broadcast.has_listener(tctx.master.addons)
        tctx.master.addons.add(Script())
        assert log_broadcast.has_listener(tctx.master.addons)
