"""Any MQTT broker serves the floor: the same short shift on Mosquitto and on NATS's
MQTT gateway (another implementation, MQTT 3.1.1 over JetStream), with two
controllers sharing the stations and one of them killed once.

No event of a station is shared between controllers (each station has its own
session, subscribed to its own devices), so nothing broker-specific is needed: no
shared subscriptions, no MQTT 5. The drill's invariants must hold on both: nothing
lost, nothing applied twice, stock conserved, every order's history gap-free.
"""

from __future__ import annotations

import pytest

from tests.faults.faults import FaultPlan
from tests.faults.rig import DrillPlan, DrillReport, describe, run_drill
from wcs.persistence.private_postgres import PrivatePostgres


@pytest.mark.timeout(420)
@pytest.mark.parametrize("broker", ["mosquitto", "nats"])
def test_a_short_shift_with_two_controllers_on(
    broker: str, postgres: PrivatePostgres, drill_reports: list[DrillReport]
) -> None:
    faults = FaultPlan(
        controller_kills=1, broker_restarts=0, pg_restarts=0, device_unplugs=0, drivers_kills=0
    )
    plan = DrillPlan(
        f"any-{broker}", seconds=25, controllers=2, faults=faults, seed=31, broker=broker
    )
    report = run_drill(plan, postgres)
    drill_reports.append(report)
    v = report.verdict
    assert v.events_sent > 500 and v.picks > 500, describe(report)
    assert (v.lost, v.duplicated, v.violations) == (0, 0, []), describe(report)
    assert len(v.actors) == 2, describe(report)  # both controllers did part of the work
