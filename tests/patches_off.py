"""A test-only mitmproxy script: the proxy's mitmproxy patches named in `test_patches_off` are removed at start.

Load it after the proxy's own script (`-s tests/patches_off.py --set "test_patches_off=stream relay"`, the option
given once per patch, by the names in addon/runtime/patches.py): in `running`, after MitmproxyPatches installed
every patch, it removes the named ones, so the proxy runs with mitmproxy's own behaviour in their place. A name
that is not a patch stops the proxy at start (an A/B run must never silently compare a proxy with itself).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mitmproxy import ctx, exceptions

from addon.runtime import patches  # the proxy's script put the project on sys.path before this one loads
from addon.runtime.internals import Patch

logger = logging.getLogger(__name__)


def every_patch() -> list[Patch]:
    """The patches of every table patches.py declares (the default ones, and any installed only on request)."""
    tables = [value for value in vars(patches).values() if isinstance(value, tuple)]
    return [patch for table in tables for patch in table if isinstance(patch, Patch)]


class PatchesOff:
    def load(self, loader) -> None:
        loader.add_option(
            "test_patches_off", Sequence[str], [], "Names of the proxy's mitmproxy patches to remove at start."
        )

    def configure(self, updated: set[str]) -> None:
        if "test_patches_off" in updated:
            known = {patch.name for patch in every_patch()}
            if unknown := set(ctx.options.test_patches_off) - known:
                raise exceptions.OptionsError(f"No such patch: {', '.join(sorted(unknown))} (known: {sorted(known)}).")

    def running(self) -> None:
        for patch in every_patch():
            if patch.name in ctx.options.test_patches_off:
                patch.uninstall()
                logger.info(f"test_patches_off: the {patch.name} patch is removed")


addons = [PatchesOff()]
