"""The routing benchmark in its quick form: it runs, both plans are feasible and serve
every stop, and the solver's plan is the shorter one."""

from __future__ import annotations

from bench import b_fleet
from bench.report import BenchOptions


def test_quick_fleet_benchmark() -> None:
    section = b_fleet.run(BenchOptions(quick=True))
    rows = {row.metric: row for row in section.rows}
    assert rows["violations (windows, capacity, shifts)"].value == 0
    assert rows["every stop planned by both"].value == "yes"
    saved = rows["distance saved vs nearest neighbour (worst seed)"]
    assert isinstance(saved.value, float) and saved.value > 0
    solver = float(rows["solver plan distance (mean)"].value)
    assert 0 < solver < float(rows["time-oriented nearest neighbour (mean)"].value)
    assert rows["sectors solved"].value == 2  # 120 stops: the decomposition is exercised
    served, total = str(
        rows["plain nearest neighbour: stops it could serve (worst seed)"].value
    ).split("/")
    assert int(total) == 120 and int(served) <= 120
