"""A whole simulated shift: every part of the system running together, end to end.

Simulated devices over their real protocols, the drivers, the controller with its
allocation loop, the API in a server thread, the fake carrier as its own process, a
SQLite file and a real broker (Mosquitto in-process test; the embedded amqtt broker in
the ``wcs demo`` smoke test). People make mistakes on purpose; the test follows the
orders they made them on and checks the books afterwards.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import func, select

from demo.audit import order_log_findings, stock_findings
from demo.shift import DemoOptions, run_demo
from demo.shop import plan_orders
from device_sim.scenario import Rates
from tests.ports import free_port
from wcs.children import spawn
from wcs.persistence.db import make_engine
from wcs.persistence.tables import order_events, orders, stock
from wcs.settings import MqttEndpoint, Settings

# Mistakes far more often than on a real floor, so twenty orders show each of them.
RATES = Rates(mispick=0.2, short=0.1, weight_mismatch=0.25, qc_fail=0.05, scan_items=0.3)
SEED = 7


# The shift, then its delivery day (handover, carriers, the route solver, couriers).
@pytest.mark.timeout(240)
async def test_a_small_shift_ends_with_every_order_right(
    tmp_path: Path, mqtt_endpoint: MqttEndpoint
) -> None:
    options = DemoOptions(
        orders=20,
        seed=SEED,
        speed=400.0,
        db_path=tmp_path / "demo.db",
        rates=RATES,
        live=False,
        stall_s=30.0,
    )
    base = Settings(
        mqtt_url=f"mqtt://{mqtt_endpoint.host}:{mqtt_endpoint.port}", embedded_broker=False
    )
    out = io.StringIO()
    result = await run_demo(options, console=Console(file=out, width=140), base=base)
    assert result.outcome == "done", f"{result.detail}\n{out.getvalue()}"
    assert "Shift KPIs: 20 orders" in out.getvalue()

    kinds = {p.external_id: p.kind for p in plan_orders(20, result.world.slotting, seed=SEED)}
    engine = make_engine(f"sqlite+aiosqlite:///{options.db_path}")
    try:
        async with engine.connect() as conn:
            # Why an order is where it is: the reason of its last state change.
            last = (
                select(order_events.c.reason)
                .where(
                    (order_events.c.order_id == orders.c.id) & (order_events.c.seq == orders.c.seq)
                )
                .scalar_subquery()
            )
            columns = (orders.c.id, orders.c.external_id, orders.c.state, last.label("why"))
            rows = (await conn.execute(select(*columns))).all()
            seqs = (
                await conn.execute(
                    select(
                        order_events.c.order_id,
                        func.count(),
                        func.min(order_events.c.seq),
                        func.max(order_events.c.seq),
                    ).group_by(order_events.c.order_id)
                )
            ).all()
            negative = await conn.scalar(
                select(func.count())
                .select_from(stock)
                .where((stock.c.on_hand < 0) | (stock.c.reserved < 0))
            )
        stock_problems = await stock_findings(engine, result.world)
        log_problems = await order_log_findings(engine)
    finally:
        await engine.dispose()

    assert len(rows) == 20
    state_of = {r.id: r.state for r in rows}
    # After the shift every parcel went out and arrived; most customers signed off.
    arrived = {"delivered", "closed"}
    for row in rows:
        if kinds[row.external_id] == "invalid":
            assert row.state == "exception", row
        elif row.state not in arrived:
            # The documented contingency: a short pick with no stock left anywhere.
            assert row.state == "exception" and "short pick" in (row.why or ""), row
    assert sum(1 for r in rows if r.state in arrived) >= 15
    assert any(kinds[r.external_id] == "backorder" and r.state in arrived for r in rows)

    people = result.report.people
    assert people is not None
    caught = result.report.caught
    # Every mistake made was caught, and the orders it was made on still came out right.
    assert people.mispicks >= 1 and caught["mispick"] == people.mispicks
    assert people.mispicks_not_refused == 0
    assert people.weight_mismatches >= 1 and caught["weight_mismatch"] == people.weight_mismatches
    assert people.unexpected_rejections == 0
    assert caught["short_pick"] == people.short_picks
    for kind in ("mispick", "weight_mismatch"):
        for order_id in people.mistakes[kind]:
            assert state_of[order_id] in arrived, (kind, order_id)
    assert result.report.pick_accuracy is not None and result.report.pick_accuracy < 1.0
    assert result.report.pack_pass_rate is not None and result.report.pack_pass_rate < 1.0

    # Every KPI of the table has a value, delivery and satisfaction included.
    report = result.report
    for kpi in (
        report.to_packed_p50_s,
        report.qc_pass_rate,
        report.on_time_shipping,
        report.on_time_delivery,
        report.satisfaction,
        report.returns_rate,
    ):
        assert kpi is not None, out.getvalue()
    delivered = report.delivered
    assert delivered is not None and delivered.problems == [], delivered
    assert delivered.delivered == sum(1 for r in rows if r.state in arrived)
    assert delivered.carrier > 0 and delivered.own_fleet > 0
    assert report.ratings >= 1
    # The links that open each screen are printed, with their tokens.
    text = out.getvalue()
    for name in ("status page", "station screen", "courier page", "customer tracking"):
        assert name in text, text
    assert "/status?token=" in text and "/courier?token=wcs_" in text

    # Stock is conserved: on every shelf what the books say, no unit made or lost.
    assert negative == 0
    assert stock_problems == []
    # Every order's event log counts 1..n without gaps and ends at its current state.
    assert log_problems == []
    assert all(n == last and first == 1 for _, n, first, last in seqs)
    assert {order_id for order_id, *_ in seqs} == set(state_of)


@pytest.mark.timeout(240)
def test_wcs_demo_runs_on_the_embedded_broker_and_prints_the_kpis(tmp_path: Path) -> None:
    # Nothing answers on this port: the demo starts its own broker there.
    env = {**os.environ, "WCS_MQTT_URL": f"mqtt://127.0.0.1:{free_port()}", "COLUMNS": "120"}
    env.pop("WCS_DATABASE_URL", None)
    args = [sys.executable, "-m", "cli", "demo", "--orders", "10", "--speed", "400"]
    # A session of its own: should the demo hang, it goes down with its fake carrier.
    proc = spawn(
        [*args, "--db", str(tmp_path / "demo.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        stdout, stderr = proc.communicate(timeout=220)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    output = stdout + stderr
    assert proc.returncode == 0, output
    assert "embedded amqtt" in stdout
    for row in (
        "order processing time",
        "pick accuracy",
        "pack pass rate",
        "mispicks caught",
        "delivered on time",
        "customer satisfaction",
    ):
        assert row in stdout, output
    assert "status page (supervisor)" in stdout and "courier page" in stdout
    assert "10/10 orders settled" in stdout
    assert "books balance" in stdout and "NO (" not in stdout and "not checked" not in stdout
