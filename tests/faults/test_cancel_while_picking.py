"""An order cancelled while its units are being picked (found by the drills' office load).

``POST /orders/{id}/cancel`` used to release the order's reservations but leave its
pick tasks lit, so the station kept picking for a cancelled order and, when the task
completed, took its units off ``reserved`` a second time: the pile then held fewer
units reserved than its active reservations promised - the next intake could oversell.
The cancel is now a request the station's owner applies in order with its scans: it
ends the order's tasks, switches their lights off and lights the next stop at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.runtime import Controller
from tests.integration.controller.support import FakeFloor, fake_floor, floor_for
from tests.integration.persistence.helpers import new_order
from wcs.contract.topics import Topics
from wcs.persistence.tables import reservations, stock
from wcs.services import floor_requests
from wcs.services.catalog import LocationData, SkuData, upsert_location, upsert_sku
from wcs.services.orders import receive_stock, submit_order
from wcs.settings import MqttEndpoint, Settings

BARCODE = "4006381333931"


@pytest.fixture
async def station(
    pg_only_url: str, pg_engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str
) -> AsyncIterator[tuple[Controller, FakeFloor, AsyncEngine]]:
    settings = Settings(
        database_url=pg_only_url,
        mqtt_url=f"mqtt://{mqtt_endpoint.host}:{mqtt_endpoint.port}",
        site=site,
        embedded_broker=False,
        controller={"wave_interval_s": 3600},  # type: ignore[arg-type]
    )
    topics = Topics(site)
    await upsert_sku(pg_engine, SkuData("SKU-A", "SKU-A", 400.0, 150, 100, 50, BARCODE))
    await upsert_location(pg_engine, LocationData("A-01-01-1", "pick", 1, 1, 1))
    await receive_stock(pg_engine, topics, "SKU-A", "A-01-01-1", 10, actor="test")
    async with (
        fake_floor(mqtt_endpoint, topics) as floor,
        Controller(settings, floor_for(site), engine=pg_engine) as controller,
    ):
        yield controller, floor, pg_engine


async def test_cancel_while_picking_keeps_reserved_equal_to_reservations(
    station: tuple[Controller, FakeFloor, AsyncEngine],
) -> None:
    controller, floor, engine = station
    topics = controller.topics
    for key in ("c1", "c2"):
        await submit_order(
            engine, topics, new_order(key, [("SKU-A", 2)]), idempotency_key=key,
            request_hash=key, actor="t",
        )  # fmt: skip
    await controller.housekeeping_once()
    await floor.wait_command("ptl-1", "light", lambda b: b["slot"] == 1)
    await floor.event("scan-pk", "scan", code="T0001", symbology=None)
    await floor.event("scan-pk", "scan", code=BARCODE, symbology="]E0")
    await floor.wait_command("ptl-1", "light", lambda b: b["qty"] == 1)
    first = (await _task_orders(engine))[0]
    asked = await floor_requests.ask(
        engine, "cancel", actor="customer_service", order_id=first, body={"reason": "changed mind"}
    )
    n = len(floor.commands)
    answer = await floor_requests.wait(engine, asked, 10)
    assert (answer.station, answer.state) == ("PK1", "done")
    await floor.wait_command("ptl-1", "clear", lambda b: b["slot"] == 1, start=n)
    # The picker scans the second unit anyway: it is the next order's now.
    await floor.event("scan-pk", "scan", code=BARCODE, symbology="]E0")
    async with asyncio.timeout(10):
        while controller.stats.applied < 4:
            await asyncio.sleep(0.02)
    async with engine.connect() as conn:
        held = await conn.scalar(select(stock.c.reserved).where(stock.c.sku == "SKU-A"))
        promised = await conn.scalar(
            select(func.coalesce(func.sum(reservations.c.qty), 0)).where(
                reservations.c.state == "active"
            )
        )
    assert held == promised


async def _task_orders(engine: AsyncEngine) -> list[str]:
    from wcs.persistence.tables import pick_tasks

    async with engine.connect() as conn:
        rows = await conn.scalars(select(pick_tasks.c.order_id).order_by(pick_tasks.c.id))
        return list(rows.all())
