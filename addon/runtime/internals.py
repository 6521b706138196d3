"""The mitmproxy internals the proxy relies on, and the start-up check that they are still what it was written for.

The modules that reach below mitmproxy's addon API are listed in patches.py and docs/internals.md.
Each declares one `Patch`: the `Internal`s it relies on (a dotted name, how to reach it, the shape it must have:
a signature, a type, the names a function looks up, dataclass fields), how it is installed and removed, the
mitmproxy version it was written for, and what happens without it. The `MitmproxyPatches` addon (patches.py)
checks every internal in `running`, installs the patches whose internals all look as expected, and removes them
in `done`, so no patch outlives the script.

A patch with a changed internal is not installed, and the start-up log names the internal, how it differs, and
the mitmproxy version the patch was written for: a WARNING when mitmproxy's own behaviour takes its place, an
ERROR (mitmproxy's errorcheck then refuses to start) when there is no safe fallback.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import types
from collections.abc import Callable
from typing import Any

from mitmproxy.version import VERSION

WRITTEN_FOR = "12.3.1"  # the mitmproxy version the patches were written for and tested with (uv.lock)

Shape = Callable[[Any], str | None]  # None when the value looks as expected, else what differs


@dataclasses.dataclass(frozen=True)
class Internal:
    """One mitmproxy internal: `owner(master)` holds it as attribute `attr`, and it has `shape`."""

    name: str
    owner: Callable[[Any], Any]
    attr: str
    shape: Shape

    def problem(self, master: Any) -> str | None:
        try:
            owner = self.owner(master)
            if owner is None or not hasattr(owner, self.attr):
                return "is missing"
            return self.shape(getattr(owner, self.attr))
        except Exception as e:  # a changed mitmproxy may fail in any way on the way there: that is the finding
            return f"cannot be reached ({type(e).__name__}: {e})"


def resolve(path: str) -> Any:
    """The object a dotted path names, importing modules on the way ("mitmproxy.addonmanager.AddonManager")."""
    parts = path.split(".")
    found: Any = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], 1):
        if not hasattr(found, part) and inspect.ismodule(found):
            importlib.import_module(".".join(parts[: i + 1]))
        found = getattr(found, part)
    return found


def at(path: str, *shapes: Shape) -> Internal:
    """An internal found by its dotted path, looked up afresh at each check."""
    owner, _, attr = path.rpartition(".")
    return Internal(path, lambda master: resolve(owner), attr, both(*shapes))


def on_master(path: str, owner: Callable[[Any], Any], attr: str, *shapes: Shape) -> Internal:
    """An internal the running master holds (an addon's or the master's own attribute)."""
    return Internal(path, owner, attr, both(*shapes))


def both(*shapes: Shape) -> Shape:
    def check(value: Any) -> str | None:
        return next((found for shape in shapes if (found := shape(value)) is not None), None)

    return check


def signature(*params: str) -> Shape:
    """A callable taking exactly these parameters, by name and in order."""

    def check(value: Any) -> str | None:
        if not callable(value):
            return f"is not callable (a {type(value).__name__})"
        try:
            found = tuple(inspect.signature(value).parameters)
        except (TypeError, ValueError):
            return "has no signature to read"
        return None if found == params else f"takes ({', '.join(found)}), expected ({', '.join(params)})"

    return check


def instance(kind: type) -> Shape:
    def check(value: Any) -> str | None:
        return None if isinstance(value, kind) else f"is a {type(value).__name__}, expected a {kind.__name__}"

    return check


def subclass(base: str) -> Shape:
    """A class derived from the class at dotted path `base`."""

    def check(value: Any) -> str | None:
        try:
            if inspect.isclass(value) and issubclass(value, resolve(base)):
                return None
        except (AttributeError, ImportError, TypeError):  # the base itself changed
            pass
        return f"is no longer a {base}"

    return check


def members(*names: str) -> Shape:
    def check(value: Any) -> str | None:
        missing = [name for name in names if not hasattr(value, name)]
        return f"has no {', '.join(missing)}" if missing else None

    return check


def annotated(*names: str) -> Shape:
    """A class that declares these instance attributes (set in __init__, so only its annotations show them)."""

    def check(value: Any) -> str | None:
        declared = {name for cls in getattr(value, "__mro__", ()) for name in getattr(cls, "__annotations__", {})}
        missing = [name for name in names if name not in declared]
        return f"no longer declares {', '.join(missing)}" if missing else None

    return check


def fields(*names: str) -> Shape:
    """A dataclass with (at least) these fields."""

    def check(value: Any) -> str | None:
        if not dataclasses.is_dataclass(value):
            return "is no longer a dataclass"
        missing = set(names) - {f.name for f in dataclasses.fields(value)}
        return f"has no field {', '.join(sorted(missing))}" if missing else None

    return check


def looks_up(*names: str) -> Shape:
    """A function that still looks these names up when it runs (a module global, or an attribute it reads)."""

    def check(value: Any) -> str | None:
        code = _code(value)
        missing = [name for name in names if code is None or name not in code.co_names]
        return f"no longer looks up {', '.join(missing)}" if missing else None

    return check


def uses(*constants: object) -> Shape:
    """A function whose code still holds these constants (a format it writes, a header name it reads)."""

    def check(value: Any) -> str | None:
        code = _code(value)
        missing = [repr(c) for c in constants if code is None or c not in code.co_consts]
        return f"no longer uses {', '.join(missing)}" if missing else None

    return check


def _code(value: Any) -> Any:
    """The code object of a function, or of the function a decorator wraps (functools.wraps)."""
    return getattr(inspect.unwrap(value) if callable(value) else value, "__code__", None)


class Swap:
    """A class (or module) attribute of mitmproxy's that a patch replaces while it is installed. `uninstall` puts back exactly
    what was there: the original, or nothing when the class inherited it (so that it inherits it again)."""

    def __init__(self, owner: type | types.ModuleType, name: str, replacement: Any) -> None:
        self.owner = owner
        self.name = name
        self.replacement = replacement
        self.original: Any = None  # what the class had, while installed (a replacement may call it)
        self.inherited = False

    def install(self, master: Any = None) -> None:  # a Patch's install: the master is not needed
        if self.original is not None:  # installed already: a second install changes nothing
            return
        self.inherited = self.name not in vars(self.owner)
        self.original = getattr(self.owner, self.name)
        setattr(self.owner, self.name, self.replacement)

    def uninstall(self) -> None:
        if self.original is None:
            return
        if self.inherited:
            delattr(self.owner, self.name)
        else:
            setattr(self.owner, self.name, self.original)
        self.original = None


@dataclasses.dataclass(frozen=True)
class Patch:
    """One change to mitmproxy, owned by one module. `without`: what happens when it cannot be installed."""

    name: str
    written_for: str
    internals: tuple[Internal, ...]
    install: Callable[[Any], None]  # given the master
    uninstall: Callable[[], None]
    without: str
    required: bool = False  # no safe fallback: the proxy refuses to start without it
    configure: Callable[[Any], None] | None = None  # on every options change while installed

    def problems(self, master: Any) -> list[tuple[Internal, str]]:
        return [(internal, found) for internal in self.internals if (found := internal.problem(master)) is not None]

    def message(self, internal: Internal, problem: str) -> str:
        outcome = "the proxy refuses to start" if self.required else "falling back to mitmproxy's own behaviour"
        return (
            f"mitmproxy internal {internal.name} {problem}: the proxy's {self.name} patch was written for "
            f"mitmproxy {self.written_for}, this is mitmproxy {VERSION}; {outcome}: {self.without}."
        )
