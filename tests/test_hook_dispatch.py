"""addon/hook_dispatch.py: events reach the same handlers, in the same order and with the same error handling,
as through mitmproxy's own trigger_event; the handler lists follow every change to the addons."""

import asyncio
import logging

import pytest
from mitmproxy import addonmanager, exceptions
from mitmproxy.proxy.layers.http import HttpRequestHook
from mitmproxy.test import taddons, tflow

from addon.runtime import hook_dispatch
from addon.runtime.patches import MitmproxyPatches

# One loop for the module: each master takes the running loop, and mitmproxy's log handlers of earlier
# masters in the same test would call into a closed one.
LOOP = asyncio.new_event_loop()


def run(coroutine) -> None:
    LOOP.run_until_complete(coroutine)


@pytest.fixture
def installed():
    was_installed = bool(hook_dispatch._original)
    hook_dispatch.install()
    yield
    if not was_installed:
        hook_dispatch.uninstall()


class Recorder:
    """An addon that notes each call of its request hook (in a list shared by all recorders)."""

    def __init__(self, name: str, calls: list, kind: str = "sync") -> None:
        self.name, self.calls, self.kind = name, calls, kind

    def request(self, flow):
        self.calls.append(self.name)
        if self.kind == "halt":
            raise exceptions.AddonHalt()
        if self.kind == "raise":
            raise ValueError(f"{self.name} failed")
        if self.kind == "awaitable":
            return self.later()
        return None

    async def later(self) -> None:
        await asyncio.sleep(0)
        self.calls.append(f"{self.name} awaited")


class AsyncRecorder(Recorder):
    async def request(self, flow):
        await asyncio.sleep(0)
        self.calls.append(self.name)


class Parent:
    """A top-level addon with children, as mitmproxy's ScriptLoader holds scripts."""

    def __init__(self, children: list) -> None:
        self.addons = children


async def trigger(tctx) -> None:
    await tctx.master.addons.trigger_event(HttpRequestHook(tflow.tflow()))


def chain(calls: list) -> list:
    return [
        Recorder("a", calls),
        Parent([Recorder("b", calls), AsyncRecorder("c", calls)]),
        Recorder("d", calls, "awaitable"),
        object(),
        Recorder("e", calls),
    ]


def calls_through(patched: bool, addons_for) -> list:
    calls: list = []
    (hook_dispatch.install if patched else hook_dispatch.uninstall)()

    async def go() -> None:  # inside the loop: mitmproxy's master takes the running one
        with taddons.context() as tctx:
            tctx.master.addons.add(*addons_for(calls))
            await trigger(tctx)
            await trigger(tctx)

    run(go())
    return calls


def test_same_handlers_in_the_same_order_as_mitmproxy(installed):
    expected = calls_through(False, chain)
    assert expected == ["a", "b", "c", "d", "d awaited", "e"] * 2
    assert calls_through(True, chain) == expected


def test_an_error_ends_that_addons_handlers_and_is_logged_like_mitmproxys(installed, caplog):
    def addons_for(calls):
        return [Parent([Recorder("a", calls, "raise"), Recorder("b", calls)]), Recorder("c", calls)]

    caplog.set_level(logging.ERROR)
    expected = calls_through(False, addons_for)
    unpatched_log = [r.getMessage() for r in caplog.records]
    caplog.clear()
    assert calls_through(True, addons_for) == expected == ["a", "c"] * 2
    assert [r.getMessage() for r in caplog.records] == unpatched_log == ["Addon error: a failed"] * 2


def test_addon_halt_stops_the_event(installed):
    def addons_for(calls):
        return [Recorder("a", calls), Recorder("b", calls, "halt"), Recorder("c", calls)]

    assert calls_through(True, addons_for) == calls_through(False, addons_for) == ["a", "b"] * 2


def test_addons_added_and_removed_later_are_seen(installed):
    async def go() -> None:
        calls: list = []
        with taddons.context() as tctx:
            first = Recorder("a", calls)
            tctx.master.addons.add(first)
            await trigger(tctx)
            tctx.master.addons.add(Recorder("b", calls))
            await trigger(tctx)
            tctx.master.addons.remove(first)
            await trigger(tctx)
        assert calls == ["a", "a", "b", "b"]

    run(go())


def test_an_options_change_drops_the_lists():
    """ScriptLoader reorders its scripts in configure, without registering anything."""

    async def go() -> None:
        calls: list = []
        patches = MitmproxyPatches((hook_dispatch.PATCH,))
        with taddons.context(patches) as tctx:
            patches.running()
            parent = Parent([Recorder("a", calls), Recorder("b", calls)])
            tctx.master.addons.add(parent)
            await trigger(tctx)
            parent.addons.reverse()
            tctx.configure(patches, ssl_insecure=True)  # any options change
            await trigger(tctx)
            patches.done()
        assert calls == ["a", "b", "b", "a"]

    run(go())


def test_a_hook_that_is_not_callable_is_reported_as_mitmproxy_does(installed, caplog):
    async def go() -> None:
        class Broken:
            request = "not a function"

        caplog.set_level(logging.ERROR)
        with taddons.context() as tctx:
            tctx.master.addons.add(Broken())
            await trigger(tctx)
        assert any("not callable" in r.getMessage() for r in caplog.records)

    run(go())


def test_a_mitmproxy_without_the_expected_shape_is_left_alone(monkeypatch, caplog):
    hook_dispatch.uninstall()
    original = addonmanager.AddonManager.trigger_event
    patches = MitmproxyPatches((hook_dispatch.PATCH,))
    with taddons.context(patches):
        monkeypatch.delattr(addonmanager.AddonManager, "_iter_hooks")
        patches.running()
        assert addonmanager.AddonManager.trigger_event is original and not hook_dispatch._original
        assert "mitmproxy internal mitmproxy.addonmanager.AddonManager._iter_hooks is missing" in caplog.text
        patches.done()


def test_installed_once_and_removed_whole():
    hook_dispatch.uninstall()
    originals = {name: getattr(addonmanager.AddonManager, name) for name in ("trigger_event", *hook_dispatch.CHANGES)}
    hook_dispatch.install()
    hook_dispatch.install()  # a second install (a reloaded script) must not wrap the patched methods
    assert hook_dispatch._original == originals
    hook_dispatch.uninstall()
    assert {name: getattr(addonmanager.AddonManager, name) for name in originals} == originals
