"""Item scans at a pick station through GS1: the unit's GTIN finds the SKU (several
per SKU, with or without AIM identifiers), its lot and date are recorded on the pick,
expired or short-dated units and wrong labels are refused with a red light and why."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.runtime import Controller
from tests.integration.controller.support import FakeFloor, fake_floor, floor_for, settings_for
from tests.integration.controller.test_flow import order_in, wait_state
from wcs.contract.topics import Topics
from wcs.persistence.tables import activity, pick_tasks, picked_units
from wcs.services.catalog import LocationData, SkuData, upsert_location, upsert_sku
from wcs.services.orders import receive_stock
from wcs.settings import MqttEndpoint

GS = "\x1d"
EAN = "4006381333931"  # the SKU's barcode, an EAN-13
GTIN_B = "09506000134352"  # the SKU's second GTIN (another supplier's pack)


def yymmdd(day: dt.date) -> str:
    return day.strftime("%y%m%d")


@pytest.fixture
async def bench(
    db_url: str, engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str
) -> AsyncIterator[tuple[Controller, FakeFloor, AsyncEngine]]:
    settings = settings_for(
        db_url,
        mqtt_endpoint,
        site,
        controller={"wave_interval_s": 3600},
    )
    topics = Topics(site)
    await upsert_sku(
        engine,
        SkuData("SKU-A", "tea", 60.0, 120, 70, 60, EAN, (GTIN_B,), min_shelf_life_days=30),
    )
    await upsert_location(engine, LocationData("A-01-01-1", "pick", 1, 1, 1))
    await receive_stock(engine, topics, "SKU-A", "A-01-01-1", 9, actor="test")
    async with (
        fake_floor(mqtt_endpoint, topics) as floor,
        Controller(settings, floor_for(site), engine=engine) as controller,
    ):
        yield controller, floor, engine


async def rows(engine: AsyncEngine, kind: str) -> list[Any]:
    async with engine.connect() as conn:
        return list(
            (
                await conn.execute(
                    select(activity.c.detail).where(activity.c.kind == kind).order_by(activity.c.id)
                )
            ).scalars()
        )


async def until(engine: AsyncEngine, kind: str, count: int) -> list[Any]:
    async with asyncio.timeout(10):
        while len(found := await rows(engine, kind)) < count:
            await asyncio.sleep(0.02)
    return found


async def picked(engine: AsyncEngine, order_id: str) -> int:
    async with engine.connect() as conn:
        return int(
            await conn.scalar(
                select(pick_tasks.c.qty_picked).where(pick_tasks.c.order_id == order_id)
            )
            or 0
        )


async def test_gs1_item_scans_at_a_pick_station(
    bench: tuple[Controller, FakeFloor, AsyncEngine],
) -> None:
    controller, floor, engine = bench
    today = dt.datetime.now(dt.UTC).date()
    order_id = await order_in(engine, controller.topics, "g1", [("SKU-A", 3)])
    await controller.housekeeping_once()
    await floor.wait_command("ptl-1", "light", lambda b: b["slot"] == 1 and b["qty"] == 3)
    await floor.event("scan-pk", "scan", code="T0101", symbology=None)

    # 1. A GS1 DataMatrix of the SKU's second GTIN, from a scanner without AIM
    #    identifiers: the unit counts, its lot and expiry go on the pick.
    good = today + dt.timedelta(days=365)
    await floor.event(
        "scan-pk", "scan", code=f"01{GTIN_B}17{yymmdd(good)}10LOT42{GS}21SN7", symbology=None
    )
    (first,) = await until(engine, "pick", 1)
    assert first["lot"] == "LOT42" and first["use_by"] == good.isoformat()
    assert first["gtin"] == GTIN_B and first["serial"] == "SN7"
    await floor.wait_command("ptl-1", "light", lambda b: b["qty"] == 2)

    # 2. Expired, 3. too short-dated for this SKU (30 days), 4. a label with month 13:
    #    refused on the spot, red light, nothing counted, the reason recorded.
    for code, symbology in [
        (f"01{GTIN_B}17{yymmdd(today - dt.timedelta(days=1))}10OLD1", "]d2"),
        (f"01{GTIN_B}17{yymmdd(today + dt.timedelta(days=10))}10SHORT", "]d2"),
        (f"01{GTIN_B}17{today:%y}1301{GS}10BAD", "]d2"),
    ]:
        n = len(floor.commands)
        await floor.event("scan-pk", "scan", code=code, symbology=symbology)
        await floor.wait_command(
            "ptl-1", "light", lambda b: b["color"] == "red" and b["blink"], start=n
        )
    refused = await until(engine, "unit_refused", 3)
    assert refused[0]["reason"].startswith(f"expired on {today - dt.timedelta(days=1)}")
    assert "10 days left, 30 needed" in refused[1]["reason"]
    assert refused[2]["reason"].startswith("label not readable: (17) Expiration date")
    assert all(r["sku"] == "SKU-A" for r in refused[:2]) and refused[2]["sku"] is None
    # The wrong label also went to the dead-letter queue, with the scan and why.
    (dead,) = await floor.wait_dlq(1)
    assert dead["topic"].endswith("/dev/scan-pk/evt/scan") and "BAD" in dead["raw"]
    assert "does not fit" in dead["error"]
    assert await picked(engine, order_id) == 1
    assert await rows(engine, "mispick") == []  # right items, wrong units: not mispicks

    # 5. The EAN-13 on the unit, without AIM identifier; 6. a GS1-128 in its
    #    human-readable form with a best-before date: the order is complete.
    await floor.event("scan-pk", "scan", code=EAN, symbology=None)
    bb = today + dt.timedelta(days=90)
    await floor.event(
        "scan-pk", "scan", code=f"(01){GTIN_B}(15){yymmdd(bb)}(10)LOT43", symbology=None
    )
    await wait_state(engine, order_id, "picked")
    picks = await until(engine, "pick", 3)
    assert "lot" not in picks[1] and picks[1]["gtin"] == "04006381333931"
    assert picks[2]["lot"] == "LOT43" and picks[2]["use_by"] == bb.isoformat()
    async with engine.connect() as conn:
        units = (
            await conn.execute(
                select(picked_units.c.lot, picked_units.c.use_by, picked_units.c.serial)
                .where(picked_units.c.order_id == order_id)
                .order_by(picked_units.c.id)
            )
        ).all()
    assert [tuple(u) for u in units] == [("LOT42", good, "SN7"), ("LOT43", bb, None)]
