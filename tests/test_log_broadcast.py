"""The deprecated add_log broadcast runs only while some loaded addon listens for it."""

import logging

from mitmproxy.test import taddons

from addon.runtime import log_broadcast


class OldStyleAddon:
    """An addon written before mitmproxy 9: it still takes log entries through the add_log event."""

    def __init__(self) -> None:
        self.entries = []

    def add_log(self, entry) -> None:
        self.entries.append(entry)


def record(message: str = "hello") -> logging.LogRecord:
    return logging.LogRecord("addon.inspection.report", logging.INFO, __file__, 1, message, None, None)


def test_without_a_listener_the_legacy_handler_lets_nothing_through():
    broadcast = log_broadcast.LegacyLogBroadcast()
    with taddons.context(broadcast) as tctx:
        handler = tctx.master._legacy_log_events
        assert handler.filter(record())  # mitmproxy's own behaviour before the addon runs
        broadcast.running()
        assert not handler.filter(record())


def test_an_addon_that_listens_gets_its_events_again():
    broadcast = log_broadcast.LegacyLogBroadcast()
    with taddons.context(broadcast) as tctx:
        broadcast.running()
        handler = tctx.master._legacy_log_events
        assert not handler.filter(record())
        tctx.master.addons.add(OldStyleAddon())  # what a script loaded or reloaded later does
        assert handler.filter(record())


def test_done_takes_the_filter_away():
    broadcast = log_broadcast.LegacyLogBroadcast()
    with taddons.context(broadcast) as tctx:
        broadcast.running()
        broadcast.done()
        assert tctx.master._legacy_log_events.filter(record())
        assert broadcast.gate is None


def test_has_listener_looks_into_scripts_children():
    class Script:
        def __init__(self) -> None:
            self.addons = [OldStyleAddon()]

    with taddons.context() as tctx:
        assert not log_broadcast.has_listener(tctx.master.addons)
        tctx.master.addons.add(Script())
        assert log_broadcast.has_listener(tctx.master.addons)
