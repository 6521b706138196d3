"""tests/conftest.py keeps the two tiers apart: a process fixture without the e2e marker fails collection, and an
unmarked test that starts a process fails with the fix in its message."""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

import pytest

from tests import conftest


def item(nodeid: str, fixtures: tuple[str, ...] = (), e2e: bool = False) -> SimpleNamespace:
    marker = pytest.mark.e2e.mark if e2e else None
    return SimpleNamespace(nodeid=nodeid, fixturenames=list(fixtures), get_closest_marker=lambda name: marker)


def test_a_process_fixture_without_the_marker_fails_collection_naming_the_module():
    items = [item("tests/test_a.py::test_x", ("proxy", "tmp_path")), item("tests/test_b.py::test_y", ("tmp_path",))]
    with pytest.raises(pytest.UsageError, match=r"pytestmark = pytest.mark.e2e` to tests/test_a.py\.$"):
        conftest.pytest_collection_modifyitems(None, items)  # type: ignore[arg-type]


def test_marked_or_in_process_tests_pass_collection():
    items = [item("tests/test_a.py::test_x", ("proxy_factory",), e2e=True), item("tests/test_b.py::test_y", ("fake",))]
    conftest.pytest_collection_modifyitems(None, items)  # type: ignore[arg-type]


def test_an_unmarked_test_cannot_start_a_process():
    with conftest._no_processes(item("tests/test_c.py::test_z")):  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match=r"test_z starts a process .* not marked end-to-end"):
            subprocess.run(["true"])


def test_a_marked_test_may_start_processes():
    before = subprocess.Popen._execute_child  # type: ignore[attr-defined]
    with conftest._no_processes(item("tests/test_c.py::test_z", e2e=True)):  # type: ignore[arg-type]
        assert subprocess.Popen._execute_child is before  # type: ignore[attr-defined]
