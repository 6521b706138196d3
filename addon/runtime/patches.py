"""Every change the proxy makes to mitmproxy, installed when the script starts running and removed when it stops.

The tables below list them (the translation proxy's, capture mode's); each module owns its patch (what it relies on, how it is installed and removed, the
mitmproxy version it was written for). In `running`, after mitmproxy has loaded every script, the addon checks each
patch's internals (internals.py) and installs the patch only when they all look as expected; otherwise the start-up
log says which internal differs and which mitmproxy version the patch was written for, and mitmproxy's own
behaviour stays in place (WARNING), or, for a patch without a safe fallback, the proxy refuses to start (ERROR:
mitmproxy's errorcheck exits mitmdump; on a later reload the proxy shuts down). `done` removes what was installed,
so nothing outlives the script: a reload removes the patches with the old script's addons and installs them once
again with the new ones.
"""

from __future__ import annotations

import logging

from mitmproxy import ctx

from . import (
    credentials,
    error_pages,
    hook_dispatch,
    inline_reads,
    log_broadcast,
    option_reads,
    stream_relay,
    upstream_key,
    wire,
)
from .internals import Patch

logger = logging.getLogger(__name__)

PATCHES: tuple[Patch, ...] = (
    hook_dispatch.PATCH,
    log_broadcast.PATCH,
    error_pages.PATCH,
    wire.PATCH,
    upstream_key.PATCH,
    option_reads.PATCH,
    stream_relay.PATCH,
    inline_reads.PATCH,
)
# Capture mode (capture.py): a passive forward proxy changes nothing of mitmproxy's but where credentials are written.
CAPTURE: tuple[Patch, ...] = (credentials.PATCH,)


class MitmproxyPatches:
    def __init__(self, patches: tuple[Patch, ...] = PATCHES) -> None:
        self.patches = patches
        self.installed: list[Patch] = []

    def running(self) -> None:
        if self.installed:
            return
        refused = False
        for patch in self.patches:
            problems = patch.problems(ctx.master)
            if not problems:
                patch.install(ctx.master)
                self.installed.append(patch)
                continue
            for internal, problem in problems:
                (logger.error if patch.required else logger.warning)(patch.message(internal, problem))
            refused = refused or patch.required
        if refused:
            ctx.master.shutdown()

    def configure(self, updated: set[str]) -> None:
        for patch in self.installed:
            if patch.configure is not None:
                patch.configure(ctx.master)

    def done(self) -> None:
        while self.installed:
            self.installed.pop().uninstall()
