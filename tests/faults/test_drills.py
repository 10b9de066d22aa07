"""Fault drills: the whole system under load while its parts crash and come back.

``make test`` runs a reduced drill (about a minute of faults); ``make faults`` sets
``WCS_FAULTS_FULL=1`` and runs the full ones (``-m slow``): 28 controller kills, 5
broker restarts, 4 PostgreSQL restarts and 3 PostgreSQL crashes (SIGKILL), unplugged
devices and killed drivers, with one and with two controllers. Each drill must end
with nothing lost, nothing applied twice and no invariant violated; the session
prints a table of the drills.

The drills' PostgreSQL is a server of their own (``PrivatePostgres``: initdb on a free
port), restarted and killed at will; the machine's PostgreSQL is never touched.
"""

from __future__ import annotations

import os

import pytest

from tests.faults.faults import FaultPlan
from tests.faults.rig import DrillPlan, DrillReport, describe, run_drill
from wcs.persistence.private_postgres import PrivatePostgres

FULL = os.environ.get("WCS_FAULTS_FULL") == "1"


def _assert_clean(report: DrillReport) -> None:
    v = report.verdict
    assert v.events_sent > 0 and v.picks > 0, describe(report)
    assert v.lost == 0, describe(report)
    assert v.duplicated == 0, describe(report)
    assert not v.violations, describe(report)


def _assert_injected(report: DrillReport, plan: FaultPlan) -> None:
    done = report.faults.done
    assert done["controller_kill"] == plan.controller_kills, describe(report)
    assert done["broker_restart"] == plan.broker_restarts, describe(report)
    assert done["pg_restart"] == plan.pg_restarts, describe(report)
    assert done["pg_kill"] == plan.pg_kills, describe(report)
    assert done["device_unplug"] == plan.device_unplugs, describe(report)
    assert done["drivers_kill"] == plan.drivers_kills, describe(report)


@pytest.mark.timeout(600)
def test_reduced_drill(postgres: PrivatePostgres, drill_reports: list[DrillReport]) -> None:
    """CI: three controller kills, a broker restart, a database restart and a database
    crash, an unplugged device and a driver crash in a minute of load."""
    faults = FaultPlan(
        controller_kills=3,
        broker_restarts=1,
        pg_restarts=1,
        pg_kills=1,
        device_unplugs=1,
        drivers_kills=1,
    )
    plan = DrillPlan("ci", seconds=60, faults=faults, orders_per_station=120, seed=7)
    report = run_drill(plan, postgres)
    drill_reports.append(report)
    _assert_injected(report, faults)
    _assert_clean(report)


FULL_DRILLS = [
    DrillPlan(
        "one-a",
        seconds=300,
        faults=FaultPlan(
            controller_kills=10,
            broker_restarts=3,
            pg_restarts=2,
            pg_kills=1,
            device_unplugs=3,
            drivers_kills=3,
        ),
        orders_per_station=400,
        seed=11,
    ),
    DrillPlan(
        "one-b",
        seconds=300,
        faults=FaultPlan(
            controller_kills=10,
            broker_restarts=2,
            pg_restarts=1,
            pg_kills=1,
            device_unplugs=3,
            drivers_kills=3,
        ),
        orders_per_station=400,
        seed=12,
    ),
    # Two controllers share the stations; a killed one's stations move to the other and
    # back. Station sessions are plain persistent subscriptions, which a restarted
    # Mosquitto restores, so the broker restarts too.
    DrillPlan(
        "two",
        seconds=240,
        controllers=2,
        faults=FaultPlan(
            controller_kills=8,
            broker_restarts=2,
            pg_restarts=1,
            pg_kills=1,
            device_unplugs=2,
            drivers_kills=2,
        ),
        orders_per_station=400,
        seed=13,
    ),
]


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.skipif(not FULL, reason="the full drills run with `make faults` (WCS_FAULTS_FULL=1)")
@pytest.mark.parametrize("plan", FULL_DRILLS, ids=[p.name for p in FULL_DRILLS])
def test_full_drill(
    plan: DrillPlan, postgres: PrivatePostgres, drill_reports: list[DrillReport]
) -> None:
    report = run_drill(plan, postgres)
    drill_reports.append(report)
    _assert_injected(report, plan.faults)
    _assert_clean(report)
