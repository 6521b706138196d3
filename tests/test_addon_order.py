"""addon/runtime/addon_order.py and the order proxy.py declares: a misplaced or missing addon stops the script."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from addon.runtime import addon_order
from tests.conftest import ROOT


class GracefulShutdown: ...


class Routing: ...


class Responses: ...


class Newcomer: ...


ORDER = ("GracefulShutdown", "Routing", "Responses")


def test_the_declared_order_passes_and_other_addons_may_go_anywhere():
    addon_order.check([Newcomer(), GracefulShutdown(), Routing(), Newcomer(), Responses()], ORDER)


def test_a_misordered_list_is_refused_naming_the_addon():
    with pytest.raises(ValueError, match="The addon Routing must come after GracefulShutdown"):
        addon_order.check([Routing(), GracefulShutdown(), Responses()], ORDER)


def test_a_missing_or_doubled_addon_is_refused_naming_it():
    with pytest.raises(ValueError, match="The addon Routing is missing"):
        addon_order.check([GracefulShutdown(), Responses()], ORDER)
    with pytest.raises(ValueError, match="The addon Routing appears more than once"):
        addon_order.check([GracefulShutdown(), Routing(), Routing(), Responses()], ORDER)


def load_entry(source: str):
    spec = importlib.util.spec_from_file_location("proxy_entry_under_test", ROOT / "addon" / "proxy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    code = compile(source, str(ROOT / "addon" / "proxy.py"), "exec")
    try:
        exec(code, module.__dict__)
    finally:
        sys.modules.pop("proxy_entry_under_test", None)
    return module


def test_the_entry_script_declares_every_ordered_addon_and_refuses_a_swap():
    source = (ROOT / "addon" / "proxy.py").read_text()
    module = load_entry(source)
    names = [type(a).__name__ for a in module.addons]
    assert set(module.ORDER) <= set(names) and len(module.ORDER) >= 10
    swapped = source.replace("    Fallbacks(),\n    Responses(),\n", "    Responses(),\n    Fallbacks(),\n")
    assert swapped != source
    with pytest.raises(ValueError, match="The addon Responses must come after Fallbacks"):
        load_entry(swapped)
