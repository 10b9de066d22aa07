"""A PTL confirm before the order's tote is scanned is refused and changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.runtime import Controller
from tests.integration.controller.support import FakeFloor, fake_floor, floor_for, settings_for
from tests.integration.controller.test_flow import kinds, order_in, wait_state
from wcs.contract.topics import Topics
from wcs.persistence.tables import pick_tasks
from wcs.services.catalog import LocationData, SkuData, stock_view, upsert_location, upsert_sku
from wcs.services.orders import receive_stock
from wcs.settings import MqttEndpoint


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
    await upsert_sku(engine, SkuData("SKU-A", "SKU-A", 400.0, 150, 100, 50, "4006381333931"))
    await upsert_location(engine, LocationData("A-01-01-1", "pick", 1, 1, 1))
    await receive_stock(engine, topics, "SKU-A", "A-01-01-1", 5, actor="test")
    async with (
        fake_floor(mqtt_endpoint, topics) as floor,
        Controller(settings, floor_for(site), engine=engine) as controller,
    ):
        yield controller, floor, engine


async def test_confirm_before_the_tote_leaves_the_task_lit_and_the_stock_reserved(
    bench: tuple[Controller, FakeFloor, AsyncEngine],
) -> None:
    controller, floor, engine = bench
    order_id = await order_in(engine, controller.topics, "cb1", [("SKU-A", 2)])
    await controller.housekeeping_once()
    await floor.wait_command("ptl-1", "light", lambda b: b["slot"] == 1)

    n = len(floor.commands)
    await floor.event("ptl-1", "confirm", slot=1, qty=2)
    # Refused on the spot: the slot blinks red, nothing is picked or written off.
    await floor.wait_command("ptl-1", "light", lambda b: b["color"] == "red", start=n)
    async with asyncio.timeout(10):
        while "mispick" not in await kinds(engine, None):
            await asyncio.sleep(0.02)
    async with engine.connect() as conn:
        state, picked = (
            await conn.execute(
                select(pick_tasks.c.state, pick_tasks.c.qty_picked).where(
                    pick_tasks.c.order_id == order_id
                )
            )
        ).one()
    assert (state, picked) == ("lit", 0)
    view = await stock_view(engine, "SKU-A")
    assert (view["on_hand"], view["reserved"]) == (5, 2)

    # With the tote scanned, the same press picks the units.
    await floor.event("scan-pk", "scan", code="T0101", symbology=None)
    await floor.event("ptl-1", "confirm", slot=1, qty=2)
    await wait_state(engine, order_id, "picked")
    view = await stock_view(engine, "SKU-A")
    assert (view["on_hand"], view["reserved"], view["in_totes"]) == (3, 0, 2)
