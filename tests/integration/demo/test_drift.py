"""Shelves that drift from the books, with and without cycle counts.

The same seed twice: the same orders, the same shelves drifting before the shift
(units lost, units put away at another location of the article), the same people.
Once with counts (short pick, face picked empty, the ABC schedule) and once without.
With counts, every pile a count closed ends with its book equal to its shelf, and
pickers find fewer shelves short than without. Both shifts keep every other book
exact: a pile's book differs from its shelf by the drift nobody found, no more.
Everything real: simulated devices over their protocols, drivers, the controller, the
API, a SQLite file and Mosquitto.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import func, select

from demo.audit import counted_findings, stock_findings
from demo.shift import DemoOptions, DemoResult, run_demo
from device_sim.scenario import Rates
from device_sim.world import Drift
from wcs.persistence.db import make_engine
from wcs.persistence.tables import count_tasks, stock_adjustments
from wcs.settings import MqttEndpoint, Settings

SEED = 11
ORDERS = 100
# Shelves drift a lot; no damaged units, so every short pick is a shelf that drifted.
DRIFT = Drift(lost=0.6, misplaced=0.3, most=0.6)
RATES = Rates(mispick=0.02, short=0.0, weight_mismatch=0.0, qc_fail=0.0, scan_items=0.3)


async def _shift(
    tmp_path: Path, mqtt_endpoint: MqttEndpoint, *, counts: bool
) -> tuple[DemoResult, str]:
    name = "counts" if counts else "no-counts"
    options = DemoOptions(
        orders=ORDERS,
        seed=SEED,
        speed=400.0,
        db_path=tmp_path / name / "demo.db",
        rates=RATES,
        drift=DRIFT,
        counts=counts,
        count_period_s=8.0,  # fast movers due every 2 s: drift is found early
        live=False,
        stall_s=30.0,
        deliver=False,
    )
    base = Settings(
        mqtt_url=f"mqtt://{mqtt_endpoint.host}:{mqtt_endpoint.port}", embedded_broker=False
    )
    out = io.StringIO()
    result = await run_demo(options, console=Console(file=out, width=140), base=base)
    assert result.outcome == "done", f"{result.detail}\n{out.getvalue()}"
    return result, str(options.db_path)


@pytest.mark.timeout(420)
async def test_counts_find_the_drift_and_save_short_picks(
    tmp_path: Path, mqtt_endpoint: MqttEndpoint
) -> None:
    counted, counted_db = await _shift(tmp_path, mqtt_endpoint, counts=True)
    blind, blind_db = await _shift(tmp_path, mqtt_endpoint, counts=False)
    # The same drift in both: decided by the seed, before the first order.
    assert counted.drifted == blind.drifted
    assert any(d.to is None for d in counted.drifted)  # units lost
    assert any(d.to is not None for d in counted.drifted)  # units misplaced

    with_counts = counted.report.caught["short_pick"]
    without = blind.report.caught["short_pick"]
    print(
        f"\ndrift: {len(counted.drifted)} piles; short picks with counts {with_counts}, "
        f"without counts {without}; counts closed {counted.report.counts_closed}, "
        f"book matched {counted.report.counts_matched}, units adjusted "
        f"{counted.report.adjusted_units:+d} ({counted.report.adjusted_gross} gross), "
        f"replenishment moves {counted.report.moves['done'] + counted.report.moves['short']}"
    )
    # The system's count agrees with what the pickers found, in both shifts.
    for result in (counted, blind):
        people = result.report.people
        assert people is not None and result.report.caught["short_pick"] == people.short_picks
    assert without > 0
    assert with_counts < without

    engine = make_engine(f"sqlite+aiosqlite:///{counted_db}")
    try:
        piles, wrong = await counted_findings(engine, counted.world)
        books = await stock_findings(engine, counted.world)
        async with engine.connect() as conn:
            adjusted = (await conn.execute(select(stock_adjustments.c.delta))).scalars().all()
            audited = await conn.scalar(
                select(func.count())
                .select_from(count_tasks)
                .where(count_tasks.c.result == "adjusted")
            )
    finally:
        await engine.dispose()
    # Every pile a count closed holds on its shelf exactly what the books say ...
    assert piles > 0 and wrong == []
    # ... the counts found real differences, both ways, each with its audit row ...
    assert any(d < 0 for d in adjusted) and any(d > 0 for d in adjusted)
    assert audited == len(adjusted)
    # ... and every other pile differs from its book by the drift nobody found.
    assert books == []

    engine = make_engine(f"sqlite+aiosqlite:///{blind_db}")
    try:
        assert await stock_findings(engine, blind.world) == []
        async with engine.connect() as conn:
            reasons = set((await conn.scalars(select(count_tasks.c.reason))).all())
    finally:
        await engine.dispose()
    # Without the rules no face was counted; only a reserve that a move found short
    # (else every gap would send a move to the same empty shelf).
    assert reasons <= {"move_short"}
