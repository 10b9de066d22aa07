"""A shift on a floor whose panels and PLCs speak other register maps: the shipped
block-ptl and sorter-plc profiles and two maps the floor file defines. Simulated
devices, drivers, controller, people: every order is picked at the panels and
diverted at both points through those maps."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import func, select

from demo.shift import DemoOptions, run_demo
from device_sim.scenario import Rates
from wcs.persistence.db import make_engine
from wcs.persistence.tables import activity, orders
from wcs.settings import MqttEndpoint, Settings

FLOOR = Path(__file__).resolve().parents[3] / "floors" / "vendor-maps.yaml"


@pytest.mark.timeout(240)  # the shift, then its delivery day
async def test_a_shift_on_vendor_register_maps(tmp_path: Path, mqtt_endpoint: MqttEndpoint) -> None:
    options = DemoOptions(
        orders=8,
        seed=11,
        speed=400.0,
        db_path=tmp_path / "vendor.db",
        floor_path=FLOOR,
        rates=Rates(mispick=0.0, short=0.0, weight_mismatch=0.0, qc_fail=0.0, scan_items=0.0),
        invalid_share=0.0,
        backorder_share=0.0,
        live=False,
        stall_s=30.0,
    )
    base = Settings(
        mqtt_url=f"mqtt://{mqtt_endpoint.host}:{mqtt_endpoint.port}", embedded_broker=False
    )
    out = io.StringIO()
    result = await run_demo(options, console=Console(file=out, width=140), base=base)
    assert result.outcome == "done", f"{result.detail}\n{out.getvalue()}"

    engine = make_engine(f"sqlite+aiosqlite:///{options.db_path}")
    try:
        async with engine.connect() as conn:
            states = (await conn.scalars(select(orders.c.state))).all()
            counts = dict(
                (
                    await conn.execute(
                        select(activity.c.kind, func.count()).group_by(activity.c.kind)
                    )
                ).all()
            )
            routes = dict(
                (
                    await conn.execute(
                        select(activity.c.device_id, func.count())
                        .where(activity.c.kind == "route")
                        .group_by(activity.c.device_id)
                    )
                ).all()
            )
    finally:
        await engine.dispose()
    # Every order made it past packing and allocation (the demo then delivers them).
    onward = {"allocated", "shipped", "in_transit", "out_for_delivery", "delivered", "closed"}
    assert states and set(states) <= onward, states
    # Every unit went through a panel (confirmed or scanned), every tote past D1 to QC
    # and to packing, every parcel past D2 to outbound.
    assert counts.get("pick", 0) >= len(states)
    assert routes.get("div-qc", 0) >= 2 * len(states)
    assert routes.get("div-out", 0) >= len(states)
    assert counts.get("mispick", 0) == 0
