"""Two controllers share the floor's stations.

One Mosquitto, one PostgreSQL, two ``wcs controller`` processes with their own
instance names, each holding leases on half the stations: under the drill's load
(pickers, simulated devices and the office), with one of them killed once (its
stations move to the other and come back), both must do part of the work, and the
invariants must hold as with one controller - nothing lost, nothing applied twice,
stock conserved, every order's history gap-free and legal.
"""

from __future__ import annotations

import os

import pytest

from tests.faults.faults import FaultPlan
from tests.faults.rig import DrillPlan, DrillReport, describe, run_drill
from wcs.persistence.private_postgres import PrivatePostgres

PG_URL = os.environ.get("WCS_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


@pytest.mark.timeout(420)
def test_two_controllers_share_the_work_without_double_effects(
    postgres: PrivatePostgres,
    drill_reports: list[DrillReport],
) -> None:
    faults = FaultPlan(
        controller_kills=1, broker_restarts=0, pg_restarts=0, device_unplugs=0, drivers_kills=0
    )
    plan = DrillPlan("two-ctl", seconds=40, controllers=2, faults=faults, seed=21)
    report = run_drill(plan, postgres)
    drill_reports.append(report)
    v = report.verdict
    assert v.events_sent > 1000 and v.picks > 1000, describe(report)
    assert (v.lost, v.duplicated, v.violations) == (0, 0, []), describe(report)
    # Both did a real share of the order moves (each holds about half the stations).
    shares = sorted(v.actors.values())
    assert len(shares) == 2 and shares[0] > 0.2 * sum(shares), describe(report)


@pytest.mark.timeout(300)
def test_scaleout_benchmark_measures_both_setups_in_one_run() -> None:
    from bench import b_scaleout
    from bench.report import BenchOptions

    section = b_scaleout.run(BenchOptions(quick=True, pg_url=PG_URL))
    values = {row.metric: row.value for row in section.rows}
    one = values["1 controller: saturation throughput"]
    two = values["2 controllers: saturation throughput"]
    assert isinstance(one, float) and isinstance(two, float) and one > 50 and two > 50
    assert values["2 controllers / 1: saturation throughput"] == pytest.approx(two / one)
    for label in ("1 controller", "2 controllers"):
        assert 0 < float(values[f"{label}: machine busy at saturation"]) <= 100
        assert float(values[f"{label}: controller CPU per scan"]) > 0
    # One owner per station: nothing refused, nobody waiting on another's lock, and a
    # killed controller's stations served again by the other with no scan lost.
    assert values["2 controllers: mispicks (red lights)"] == 0
    assert values["2 controllers: pg_locks samples with a lock wait"] == 0
    assert values["kill -9 of one of two: scans neither answered nor applied"] == 0
    assert float(values["kill -9 of one of two: its stations held by the other after"]) <= 10
