"""addon/runtime/startup_log.py: after an ERROR at start-up, mitmproxy's "listening at" line is not shown."""

import logging

from addon.runtime.startup_log import SERVERS_LOGGER, StartupLog

LISTENING = "reverse proxy to http://127.0.0.1:9 listening at 127.0.0.1:8000."


def test_no_listening_line_after_an_error_until_running(caplog, monkeypatch):
    # Other tests' mitmproxy set-ups may leave this logger quiet (a level, no propagation): hear it as mitmdump would.
    servers = logging.getLogger(SERVERS_LOGGER)
    monkeypatch.setattr(servers, "disabled", False)
    monkeypatch.setattr(servers, "propagate", True)
    monkeypatch.setattr(servers, "filters", [])  # another test's StartupLog, loaded and never run, keeps its filter
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger=SERVERS_LOGGER)
    addon = StartupLog()
    addon.load(None)
    try:
        servers.info(LISTENING)
        assert LISTENING in caplog.text  # no error yet: a start like any other
        caplog.clear()
        logging.getLogger("addon.request.routing").error("Cannot start the translation proxy: bad JSON")
        servers.info(LISTENING)
        servers.warning("something else")
        assert LISTENING not in caplog.text and "something else" in caplog.text
    finally:
        addon.running()
    caplog.clear()
    logging.getLogger(SERVERS_LOGGER).info(LISTENING)  # running: the servers' lines are true again
    assert LISTENING in caplog.text
