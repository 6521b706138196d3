"""The order of the entry script's addons, checked when the script loads.

Within one hook mitmproxy calls the addons in the order of the script's `addons` list, and some of the proxy's
addons rely on others having run first (the reasons are in proxy.py, beside the list). The entry script declares
the addons that must keep their relative order as a sequence of class names; `check` stops the script with a
message naming the addon that is missing or out of place. Addons not named there may go anywhere: a new addon
with no ordering needs is simply added to the list, and one that has them adds its class name to the sequence at
the place it must run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def check(addons: Sequence[Any], order: Sequence[str]) -> None:
    """Raise ValueError unless every class named in `order` is in `addons`, once, in that relative order."""
    names = [type(addon).__name__ for addon in addons]
    for name in order:
        if names.count(name) != 1:
            found = "is missing from" if name not in names else "appears more than once in"
            raise ValueError(f"The addon {name} {found} the proxy's addon list (addon/proxy.py).")
    positions = [names.index(name) for name in order]
    for (earlier, at), (later, then) in zip(zip(order, positions), zip(order[1:], positions[1:]), strict=False):
        if then < at:
            raise ValueError(
                f"The addon {later} must come after {earlier} in the proxy's addon list (addon/proxy.py); "
                "see the reasons beside the list."
            )
