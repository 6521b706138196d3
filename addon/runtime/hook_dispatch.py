"""mitmproxy's events go straight to the addons that handle them, instead of past every loaded addon.

For each event mitmproxy walks its whole addon chain (about fifty addons in mitmdump, seventy with the script's):
per addon a context manager, a coroutine and a walk of its children, whether or not the addon has a handler.
Each request brings a dozen events, each sent twice (the event, then mitmweb's "update"), so this walk was most
of the ~1.4 ms of CPU a request costs bare mitmdump here, far more than the proxy's own work. It also set the
pace at which the benchmark's 100 concurrent streams could start, which is what their chunk delay p99 waits on.

`install()` (run in `running` by patches.py once the start-up check in internals.py found AddonManager as
mitmproxy 12.3.1 has it; `uninstall()` in `done`) replaces `AddonManager.trigger_event` with one that keeps, per event name, the handlers of each
top-level addon in chain order, and otherwise does what mitmproxy's does: one `safecall` per top-level addon
(an exception is logged and ends that addon's handlers for this event), `AddonHalt` stops the event, awaitables
are awaited. The lists are dropped whenever the set of addons can change: in `register`, `remove` and `clear`, and
on every options change (`PATCH.configure`), where ScriptLoader reorders scripts. Every change to the
chain happens synchronously inside one of those, and the lists are rebuilt only at the next event, so a stale
list is never used. Benchmark: plain requests/s +35%, streams' chunk delay
p99 at 100 streams from +28 to +17 ms (`./mitm_run.sh bench`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mitmproxy import addonmanager, exceptions, hooks

from . import internals

if TYPE_CHECKING:
    from mitmproxy.addonmanager import AddonManager

CACHE = "_translate_handlers"  # per AddonManager: event name -> [[handler, ...] per top-level addon]
_original: dict[str, Callable] = {}


def handlers(manager: AddonManager, event: hooks.Hook) -> list[list[Callable]]:
    """The event's handlers, grouped by top-level addon in chain order; addons without one are left out."""
    cache = manager.__dict__.setdefault(CACHE, {})
    found = cache.get(event.name)
    if found is None:
        found = []
        for addon in manager.chain:
            group = [func for _, func in manager._iter_hooks(addon, event)]
            if group:
                found.append(group)
        cache[event.name] = found
    return found


async def trigger_event(self: AddonManager, event: hooks.Hook) -> None:
    try:
        groups = handlers(self, event)
    except exceptions.AddonManagerError:  # a hook attribute that is not callable: mitmproxy's way logs it
        return await _original["trigger_event"](self, event)
    args = event.args()
    for group in groups:
        try:
            with addonmanager.safecall():
                for func in group:
                    result = func(*args)
                    if result is not None and inspect.isawaitable(result):
                        await result
        except exceptions.AddonHalt:
            return


def forget(manager: AddonManager) -> None:
    manager.__dict__.pop(CACHE, None)


def _forgetting(name: str) -> Callable:
    original = _original[name]

    @functools.wraps(original)
    def method(self: AddonManager, *args: Any, **kwargs: Any) -> Any:
        forget(self)
        try:
            return original(self, *args, **kwargs)
        finally:
            forget(self)

    return method


CHANGES = ("register", "remove", "clear")


def install(master: Any = None) -> None:
    """Patch AddonManager once (a second install while installed changes nothing)."""
    if _original:
        return
    if master is not None:
        forget(master.addons)  # lists kept from an earlier install may not have followed changes made since
    manager = addonmanager.AddonManager
    _original["trigger_event"] = manager.trigger_event
    for name in CHANGES:
        _original[name] = getattr(manager, name)
    setattr(manager, "trigger_event", trigger_event)  # noqa: B010 (mypy: a method cannot be assigned)
    for name in CHANGES:
        setattr(manager, name, _forgetting(name))


def uninstall() -> None:
    for name, original in _original.items():
        setattr(addonmanager.AddonManager, name, original)
    _original.clear()


def options_changed(master: Any) -> None:
    # mitmproxy connected its own options handler before this script loaded, so it cannot be wrapped.
    forget(master.addons)


MANAGER = "mitmproxy.addonmanager.AddonManager"
PATCH = internals.Patch(
    name="hook dispatch",
    written_for="12.3.1",
    internals=(
        internals.at(f"{MANAGER}.trigger_event", internals.signature("self", "event")),
        internals.at(f"{MANAGER}._iter_hooks", internals.signature("self", "addon", "event")),
        internals.at(f"{MANAGER}.register", internals.signature("self", "addon")),
        internals.at(f"{MANAGER}.remove", internals.signature("self", "addon")),
        internals.at(f"{MANAGER}.clear", internals.signature("self")),
        internals.on_master(f"{MANAGER}.chain", lambda master: master.addons, "chain", internals.instance(list)),
        internals.at("mitmproxy.addonmanager.safecall", internals.signature()),
        internals.at("mitmproxy.hooks.Hook.args", internals.signature("self")),
        internals.at("mitmproxy.exceptions.AddonHalt", internals.subclass("builtins.Exception")),
        internals.at("mitmproxy.exceptions.AddonManagerError", internals.subclass("builtins.Exception")),
    ),
    install=install,
    uninstall=uninstall,
    without="events walk every addon as in plain mitmproxy (slower; nothing else changes)",
    configure=options_changed,
)
