"""Fault drills run last (the longest tests: the quick ones report first); each drill
restarts and kills a PostgreSQL server of its own, never the machine's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.rig import DrillReport, describe, table
from wcs.persistence.private_postgres import PrivatePostgres

_REPORTS: list[DrillReport] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        if "tests/faults/test_drills.py" in item.nodeid:
            return 2  # the longest: after everything else
        return 1 if "tests/faults/" in item.nodeid else 0

    items.sort(key=rank)  # stable: the order inside each group stays as collected


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    """The drills' own PostgreSQL server: they restart and kill it, never the machine's."""
    with PrivatePostgres() as server:
        yield server


@pytest.fixture
def drill_reports() -> list[DrillReport]:
    """Drills append their reports here; the session prints them as one table."""
    return _REPORTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _REPORTS:
        return
    terminalreporter.section("fault drills")
    terminalreporter.write_line(table(_REPORTS))
    for report in _REPORTS:
        terminalreporter.write_line(describe(report))
