"""addon/runtime/internals.py and patches.py: every mitmproxy internal is checked at start; a changed one is named
with the version the proxy was written for, and its patch stays off (mitmproxy's own behaviour) or the proxy
refuses to start. Patches go on in `running` and come off in `done`, never at import, never twice."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from mitmproxy import addonmanager, hooks, optmanager
from mitmproxy.addons import clientplayback, script
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.net.http import http1
from mitmproxy.proxy import server
from mitmproxy.proxy.layers.http import HttpLayer, HttpStream, _http1, _http2
from mitmproxy.test import taddons
from mitmproxy.version import VERSION

from addon.capture import credentials
from addon.runtime import (
    error_pages,
    flow_failure,
    hook_dispatch,
    inline_reads,
    internals,
    log_broadcast,
    option_reads,
    patches,
    replays,
    stream_end,
    stream_relay,
    unclosed_sockets,
)
from addon.runtime.patches import MitmproxyPatches

ROOT = Path(__file__).resolve().parent.parent
ALL = patches.PATCHES + patches.SPEED
PATCHED = ("trigger_event", *hook_dispatch.CHANGES)


def mitmproxy_as_is(master) -> dict:
    """What the patches change, as it is now."""
    return {
        **{name: getattr(addonmanager.AddonManager, name) for name in PATCHED},
        "make_error_response": _http1.make_error_response,
        "log filters": list(master._legacy_log_events.filters),
        "stream endings": (HttpStream.handle_protocol_error, HttpStream.send_response),
        "flow failure": (HttpLayer._handle_event, HttpStream._handle_event),
        "replay handlers": clientplayback.ReplayHandler,
        "option reads": optmanager._Option.current,
        "stream relay": _http1.Http1Client._handle_event,
        "inline reads": server.ConnectionHandler.handle_connection,
    }


def installed(master, handler) -> dict[str, bool]:
    """Which patches are in place, seen from outside (handler: the master's legacy log handler)."""
    return {
        "hook dispatch": addonmanager.AddonManager.trigger_event is hook_dispatch.trigger_event,
        "log broadcast": any(isinstance(f, log_broadcast.ListenerGate) for f in handler.filters),
        "error page": _http1.make_error_response is error_pages.make_error_response,
        "stream endings": HttpStream.send_response is stream_end.send_response,
        "flow failure": HttpLayer._handle_event is flow_failure.layer_handle_event,
        "replay handlers": clientplayback.ReplayHandler is replays.Handler,
        "option reads": optmanager._Option.current is option_reads.current,
        "stream relay": _http1.Http1Client._handle_event is stream_relay._handle_event,
        "inline reads": server.ConnectionHandler.handle_connection is inline_reads.handle_connection,
        "unclosed sockets": unclosed_sockets.installed(),
    }


def test_every_internal_is_as_the_patches_were_written_for():
    assert VERSION == internals.WRITTEN_FOR == "12.3.1"  # the locked mitmproxy (pyproject pins 12.3.x)
    with taddons.context(Proxyserver()) as tctx:
        for patch in ALL:
            assert patch.written_for == internals.WRITTEN_FOR
            assert patch.problems(tctx.master) == [], patch.name


def test_running_installs_every_patch_and_done_restores_mitmproxys_originals():
    addon = MitmproxyPatches(patches.PATCHES, patches.SPEED)
    with taddons.context(Proxyserver(), addon) as tctx:
        tctx.options.translate_speed_patches = True
        before = mitmproxy_as_is(tctx.master)
        assert not any(installed(tctx.master, tctx.master._legacy_log_events).values())  # load changes nothing
        addon.running()
        assert all(installed(tctx.master, tctx.master._legacy_log_events).values())
        tctx.master.addons.remove(addon)  # unloading runs done
        assert mitmproxy_as_is(tctx.master) == before


@pytest.mark.parametrize(("entry", "table"), [("proxy.py", patches.PATCHES), ("capture_mode.py", credentials.PATCHES)])
def test_importing_the_entry_script_patches_nothing(entry, table, monkeypatch):
    monkeypatch.setattr("mitmproxy.contentviews.registry._by_name", {})  # the entry scripts register their views
    with taddons.context(Proxyserver()) as tctx:
        before = {
            **mitmproxy_as_is(tctx.master),
            "h1": http1.assemble_request_head,
            "h2": _http2.format_h2_request_headers,
        }
        module = script.load_script(str(ROOT / "addon" / entry))
        assert module is not None
        assert {
            **mitmproxy_as_is(tctx.master),
            "h1": http1.assemble_request_head,
            "h2": _http2.format_h2_request_headers,
        } == before
        [loader] = [a for a in module.addons if isinstance(a, MitmproxyPatches)]
        assert loader.patches == table


def test_a_reloaded_script_patches_once_and_unloading_it_restores_everything(tmp_path):
    path = tmp_path / "patches_only.py"
    path.write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        "from addon.runtime.patches import PATCHES, SPEED, MitmproxyPatches\n"
        "addons = [MitmproxyPatches(PATCHES, SPEED)]\n"
    )
    with taddons.context(Proxyserver()) as tctx:
        before = mitmproxy_as_is(tctx.master)
        loaded = script.Script(str(path), False)
        loaded.running()
        tctx.options.update(translate_speed_patches=True)
        tctx.master.addons.invoke_addon_sync(loaded.ns, hooks.RunningHook())
        loaded.loadscript()  # what mitmproxy does when the file changes: done on the old addons, running on the new
        assert hook_dispatch._original == {name: before[name] for name in PATCHED}  # the originals, not our own
        assert error_pages._saved == [before["make_error_response"]]
        assert all(installed(tctx.master, tctx.master._legacy_log_events).values())
        assert len(tctx.master._legacy_log_events.filters) == len(before["log filters"]) + 1
        tctx.master.addons.remove(loaded.ns)
        assert mitmproxy_as_is(tctx.master) == before


EVERY_INTERNAL = [
    pytest.param(patch, internal, id=f"{patch.name}: {internal.name}") for patch in ALL for internal in patch.internals
]


class Changed:
    """Whatever a changed mitmproxy has in place of an internal: nothing of the shape the proxy reads."""


@pytest.mark.parametrize("how", ["changed", "missing"])
@pytest.mark.parametrize(("patch", "internal"), EVERY_INTERNAL)
def test_a_changed_internal_is_named_at_start_and_its_patch_stays_off(patch, internal, how, monkeypatch, caplog):
    addon = MitmproxyPatches(patches.PATCHES, patches.SPEED)
    with taddons.context(Proxyserver(), addon) as tctx:
        tctx.options.translate_speed_patches = True
        handler = tctx.master._legacy_log_events
        owner = internal.owner(tctx.master)
        if how == "missing":
            if internal.attr not in vars(owner):
                pytest.skip("inherited: only replacing it changes what the proxy sees")
            monkeypatch.delattr(owner, internal.attr)
        else:
            monkeypatch.setattr(owner, internal.attr, Changed())
        caplog.set_level(logging.WARNING)
        try:
            addon.running()
            monkeypatch.undo()
            now = installed(tctx.master, handler)
        finally:
            monkeypatch.undo()
            addon.done()
        tctx.master.event_loop.run_until_complete(asyncio.sleep(0))  # a refusal asks the master to shut down
    relying = {p.name for p in ALL if any(i.name == internal.name for i in p.internals)}
    said = [r for r in caplog.records if r.name == patches.__name__]
    named = {patch_name(r) for r in said if f"mitmproxy internal {internal.name} " in r.getMessage()}
    assert named == relying
    for record in said:
        text = record.getMessage()
        assert f"written for mitmproxy 12.3.1, this is mitmproxy {VERSION}" in text
        assert (record.levelno == logging.ERROR) == ("refuses to start" in text)
    off = {name for name, on in now.items() if not on}
    assert off >= relying - {"key on the wire only"}
    assert off | ({"key on the wire only"} & relying) <= {patch_name(r) for r in said}  # none off without a word
    assert tctx.master.should_exit.is_set() == ("key on the wire only" in relying)


def patch_name(record: logging.LogRecord) -> str:
    return record.getMessage().split("the proxy's ")[1].split(" patch was")[0]


def test_a_differently_shaped_error_page_function_keeps_mitmproxys_page(monkeypatch, caplog):
    def make_error_response(status_code: int, message: str = "", note: str = "") -> bytes:
        return original(status_code, message)

    original = _http1.make_error_response
    monkeypatch.setattr(_http1, "make_error_response", make_error_response)
    addon = MitmproxyPatches()
    with taddons.context(Proxyserver(), addon):
        addon.running()
        try:
            page = _http1.make_error_response(502, "Connect call failed")
        finally:
            addon.done()
    assert b"content-type: text/html" in page.lower()  # mitmproxy's own page: the fallback
    assert (
        "mitmproxy internal mitmproxy.proxy.layers.http._http1.make_error_response takes (status_code, message, note), "
        "expected (status_code, message)" in caplog.text
    )


def test_a_key_writer_that_no_longer_writes_the_headers_refuses_to_start(monkeypatch, caplog):
    def assemble_request_head(request):  # a mitmproxy that builds the head from the fields itself
        head = http1.assemble_request_head.__wrapped__(request)
        return head.replace(b"probe-key-0123456789", b"probe\xe2\x80\xa689")

    monkeypatch.setattr(assemble_request_head, "__wrapped__", http1.assemble_request_head, raising=False)
    monkeypatch.setattr(http1, "assemble_request_head", assemble_request_head)
    addon = MitmproxyPatches()
    with taddons.context(Proxyserver(), addon) as tctx:
        addon.running()
        addon.done()
        tctx.master.event_loop.run_until_complete(asyncio.sleep(0))
        assert tctx.master.should_exit.is_set()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        "mitmproxy internal mitmproxy.net.http.http1.assemble_request_head no longer writes the headers through "
        "bytes(headers): the upstream would get the masked key: the proxy's key on the wire only patch was written "
        f"for mitmproxy 12.3.1, this is mitmproxy {VERSION}; the proxy refuses to start: the upstream key would "
        "either not reach the upstream or show in the flows, mitmweb and saved files."
    ]


@pytest.mark.parametrize(
    ("shape", "value", "problem"),
    [
        (internals.signature("a", "b"), lambda a: None, "takes (a), expected (a, b)"),
        (internals.signature("a"), 3, "is not callable (a int)"),
        (internals.instance(dict), [], "is a list, expected a dict"),
        (internals.members("x", "y"), object(), "has no x, y"),
        (internals.fields("writer"), object, "is no longer a dataclass"),
        (internals.looks_up("make_error_response"), lambda: None, "no longer looks up make_error_response"),
        (internals.annotated("transports"), object, "no longer declares transports"),
        (internals.subclass("mitmproxy.proxy.server.ConnectionHandler"), object, "is no longer a mitmproxy"),
    ],
)
def test_each_shape_says_what_differs(shape, value, problem):
    assert problem in (shape(value) or "")


def test_an_internal_whose_module_is_gone_cannot_be_reached():
    gone = internals.at("mitmproxy.no_such_module.thing", internals.signature())
    assert gone.problem(None).startswith("cannot be reached")


CAPTURE_INTERNALS = [
    pytest.param(internal, id=f"{patch.name}: {internal.name}")
    for patch in credentials.PATCHES
    for internal in patch.internals
]


def test_capture_modes_internals_are_as_its_patch_was_written_for():
    with taddons.context(Proxyserver()) as tctx:
        assert [p.name for p in credentials.PATCHES] == ["credentials on the wire only"]
        assert credentials.PATCH.written_for == internals.WRITTEN_FOR and credentials.PATCH.required
        assert credentials.PATCH.problems(tctx.master) == []


@pytest.mark.parametrize("how", ["changed", "missing"])
@pytest.mark.parametrize("internal", CAPTURE_INTERNALS)
def test_a_changed_credentials_internal_refuses_to_start_capture_mode(internal, how, monkeypatch, caplog):
    """No safe fallback: a masked credential would fail at the provider, a real one would sit in every flow."""
    originals = http1.assemble_request_head, _http2.format_h2_request_headers
    addon = MitmproxyPatches(credentials.PATCHES)
    with taddons.context(Proxyserver(), addon) as tctx:
        owner = internal.owner(tctx.master)
        if how == "missing":
            monkeypatch.delattr(owner, internal.attr)
        else:
            monkeypatch.setattr(owner, internal.attr, Changed())
        try:
            addon.running()
            monkeypatch.undo()
            assert (http1.assemble_request_head, _http2.format_h2_request_headers) == originals  # not installed
        finally:
            monkeypatch.undo()
            addon.done()
        tctx.master.event_loop.run_until_complete(asyncio.sleep(0))
        assert tctx.master.should_exit.is_set()
    [error] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert error.startswith(f"mitmproxy internal {internal.name} ")
    assert error.endswith(
        f"the proxy's credentials on the wire only patch was written for mitmproxy 12.3.1, this is mitmproxy "
        f"{VERSION}; the proxy refuses to start: the client's credentials would either reach the provider masked "
        "(every request refused) or show in the flows, mitmweb and -w files."
    )


def test_a_head_writer_that_formats_headers_otherwise_refuses_to_start_capture_mode(monkeypatch, caplog):
    def assemble_request_head(request):  # a mitmproxy that folds header names to title case
        return original(request).replace(b"x-api-key:", b"X-Api-Key :")

    original = http1.assemble_request_head
    monkeypatch.setattr(http1, "assemble_request_head", assemble_request_head)
    addon = MitmproxyPatches(credentials.PATCHES)
    with taddons.context(Proxyserver(), addon) as tctx:
        addon.running()
        assert http1.assemble_request_head is assemble_request_head
        addon.done()
        tctx.master.event_loop.run_until_complete(asyncio.sleep(0))
        assert tctx.master.should_exit.is_set()
    assert (
        "mitmproxy internal mitmproxy.net.http.http1.assemble_request_head no longer writes `name: value` lines "
        "after the request line: the credentials would go out masked" in caplog.text
    )


def test_a_swap_puts_back_exactly_what_was_there_defined_or_inherited():
    class Base:
        def inherited(self) -> str:
            return "base"

    class Child(Base):
        def own(self) -> str:
            return "own"

    own = internals.Swap(Child, "own", lambda self: "patched " + own.original(self))
    inherited = internals.Swap(Child, "inherited", lambda self: "patched " + inherited.original(self))
    for swap in (own, inherited, own):  # a second install changes nothing
        swap.install()
    assert (Child().own(), Child().inherited()) == ("patched own", "patched base")
    for swap in (own, inherited, own):
        swap.uninstall()
    assert (Child().own(), Child().inherited()) == ("own", "base")
    assert "inherited" not in vars(Child) and "own" in vars(Child)  # inherited again, not copied down
