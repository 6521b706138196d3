"""Reading an option returns its value without copying it when it is a str, int, bool, float, bytes or None.

mitmproxy hands out a deep copy of an option's value on every read (`ctx.options.x`), and of its default twice (the
`default` property copies, then `current` copies that), so that no caller can change an option's list or dict in
place. For an immutable value the copy is the value itself, reached through `copy.deepcopy`'s dispatch, twice.
mitmproxy reads options on every streamed chunk (`store_streamed_bodies`, in the HTTP layer) and dozens of times per
request across its addons and this proxy's; py-spy at 512 concurrent streams put these copies at ~3% of the proxy's
CPU. `current` is replaced by one that returns an immutable value as it is and deep-copies the rest once: the same
values, the same protection for mutable ones.
"""

from __future__ import annotations

import copy
from typing import Any

from mitmproxy import optmanager

from . import internals

_IMMUTABLE = frozenset({str, int, bool, float, bytes, type(None)})


def current(self: optmanager._Option) -> Any:
    """_Option.current: the option's value (its default while unset); a deep copy unless it is immutable."""
    value = self._default if self.value is optmanager.unset else self.value
    return value if value.__class__ in _IMMUTABLE else copy.deepcopy(value)


def _sentinel(value: Any) -> str | None:
    """`unset` is a bare object(), the marker of an option not set."""
    return None if type(value) is object else f"is a {type(value).__name__}, expected a bare object()"


SWAP = internals.Swap(optmanager._Option, "current", current)


install = SWAP.install
uninstall = SWAP.uninstall


PATCH = internals.Patch(
    name="option reads",
    written_for="12.3.1",
    internals=(
        # current() still reads `value`, falls back to `default` when it is `unset`, and copies the result.
        internals.at(
            "mitmproxy.optmanager._Option.current",
            internals.signature("self"),
            internals.looks_up("value", "unset", "default", "deepcopy"),
        ),
        internals.at("mitmproxy.optmanager._Option", internals.members("_default", "value")),
        internals.at("mitmproxy.optmanager.unset", _sentinel),
    ),
    install=install,
    uninstall=uninstall,
    without="every option read deep-copies its value, as in plain mitmproxy (slower)",
)
