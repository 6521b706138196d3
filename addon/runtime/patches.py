"""Every change the proxy makes to mitmproxy, installed when the script starts running and removed when it stops.

docs/internals.md lists each patch: what it replaces, why, its risk, its switch, and what happens when its start-up
check fails. Each module owns its patch (what it relies on, how it is installed and removed, the mitmproxy version
it was written for). In `running`, after mitmproxy has loaded every script, the addon checks each patch's internals
(internals.py) and installs the patch only when they all look as expected; otherwise the start-up log says which
internal differs and which mitmproxy version the patch was written for, and mitmproxy's own behaviour stays in
place (WARNING), or, for a patch without a safe fallback, the proxy refuses to start (ERROR: mitmproxy's
errorcheck exits mitmdump; on a later reload the proxy shuts down). `done` removes what was installed, so nothing
outlives the script: a reload removes the patches with the old script's addons and installs them once again with
the new ones.

Two groups. `PATCHES` are on by default: the correctness and security ones, and three cheap speed ones that do
not touch the data path (hook dispatch, add_log gating, option reads; each has a test comparing it with
mitmproxy's own behaviour). `SPEED` replaces parts of mitmproxy's data path (its HTTP/1 framing of a streamed
body, asyncio's reading of an upstream socket) for speed at hundreds of concurrent streams; it is off unless
`translate_speed_patches` is on, and turning it on or off changes speed only, never behaviour.
"""

from __future__ import annotations

import logging

from mitmproxy import ctx

from . import (
    error_pages,
    flow_failure,
    hook_dispatch,
    inline_reads,
    log_broadcast,
    option_reads,
    replays,
    stream_end,
    stream_relay,
    unclosed_sockets,
    upstream_key,
)
from .internals import Patch
from .option_help import one_paragraph

logger = logging.getLogger(__name__)

PATCHES: tuple[Patch, ...] = (
    hook_dispatch.PATCH,
    log_broadcast.PATCH,
    error_pages.PATCH,
    stream_end.PATCH,
    flow_failure.PATCH,
    unclosed_sockets.PATCH,
    replays.PATCH,
    upstream_key.PATCH,
    option_reads.PATCH,
)
SPEED: tuple[Patch, ...] = (stream_relay.PATCH, inline_reads.PATCH)  # only with translate_speed_patches
# Capture mode's patch is capture/credentials.PATCHES: this layer imports nothing of capture mode.
OPTION = "translate_speed_patches"


class MitmproxyPatches:
    def __init__(self, patches: tuple[Patch, ...] = PATCHES, speed: tuple[Patch, ...] = ()) -> None:
        self.patches = patches
        self.speed = speed
        self.installed: list[Patch] = []
        self.started = False
        self.wanted = False  # translate_speed_patches, as configure last saw it

    def load(self, loader) -> None:
        if self.speed:  # the reverse proxy's (proxy.py); capture mode and tests have no speed patches
            loader.add_option(
                OPTION,
                bool,
                False,
                one_paragraph("""
                Replace two parts of mitmproxy's data path for speed at hundreds of concurrent streams: a streamed
                body's chunks relayed in one step instead of through mitmproxy's HTTP/1 layers, and an upstream's
                reads handled in the event-loop turn that received them (they read private state of mitmproxy
                and asyncio, so they hold only for the mitmproxy and Python versions they were written for; see
                docs/internals.md). Changes speed only, never behaviour. Off: mitmproxy's own path.
                """),
            )

    def running(self) -> None:
        if self.started:
            return
        self.started = True
        refused = not self.install(self.patches)
        if self.wanted:
            self.install(self.speed)
        if refused:
            ctx.master.shutdown()

    def install(self, patches: tuple[Patch, ...]) -> bool:
        """Install each patch whose internals look as expected; False when a required one could not be."""
        ok = True
        for patch in patches:
            if patch in self.installed:
                continue
            problems = patch.problems(ctx.master)
            if not problems:
                patch.install(ctx.master)
                self.installed.append(patch)
                continue
            for internal, problem in problems:
                (logger.error if patch.required else logger.warning)(patch.message(internal, problem))
            ok = ok and not patch.required
        return ok

    def configure(self, updated: set[str]) -> None:
        if self.speed and OPTION in updated:
            self.wanted = ctx.options.translate_speed_patches
            if self.started and self.wanted:
                self.install(self.speed)
            elif self.started:
                self.remove(self.speed)
        for patch in self.installed:
            if patch.configure is not None:
                patch.configure(ctx.master)

    def remove(self, patches: tuple[Patch, ...]) -> None:
        for patch in reversed(self.installed):
            if patch in patches:
                patch.uninstall()
        self.installed = [patch for patch in self.installed if patch not in patches]

    def done(self) -> None:
        while self.installed:
            self.installed.pop().uninstall()
        self.started = False
