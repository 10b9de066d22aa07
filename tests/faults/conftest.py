"""Fault drills run last: they restart the machine's PostgreSQL cluster, which must
not cut the connections of tests still running in the same session."""

from __future__ import annotations

import pytest

from tests.faults.rig import DrillReport, describe, table

_REPORTS: list[DrillReport] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    drills = [item for item in items if "tests/faults/" in item.nodeid]
    if drills:
        others = [item for item in items if "tests/faults/" not in item.nodeid]
        items[:] = others + drills


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
