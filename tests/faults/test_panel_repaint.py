"""A PTL panel that comes back online is shown its picture again.

Drivers keep clean MQTT sessions, so lights and clears sent while a PTL driver was
down (killed, restarting, cut off by a broker restart) or while its panel was
unreachable never reach the panel; a restarted panel shows nothing at all. The
picker cannot produce the next event without the light, so the station would stall.
The drills found it; here the controller must repaint on the panel's ``online``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.runtime import Controller
from tests.integration.controller.support import FakeFloor, fake_floor, floor_for
from tests.integration.persistence.helpers import new_order
from wcs.contract.topics import Topics
from wcs.services.catalog import LocationData, SkuData, upsert_location, upsert_sku
from wcs.services.orders import receive_stock, submit_order
from wcs.settings import MqttEndpoint, Settings

BARCODE = "4006381333931"


@pytest.fixture
async def station(
    db_url: str, engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str
) -> AsyncIterator[tuple[Controller, FakeFloor]]:
    settings = Settings(
        database_url=db_url,
        mqtt_url=f"mqtt://{mqtt_endpoint.host}:{mqtt_endpoint.port}",
        site=site,
        embedded_broker=False,
        controller={"wave_interval_s": 3600},  # type: ignore[arg-type]
    )
    topics = Topics(site)
    await upsert_sku(engine, SkuData("SKU-A", "SKU-A", 400.0, 150, 100, 50, BARCODE))
    await upsert_location(engine, LocationData("A-01-01-1", "pick", 1, 1, 1))
    await receive_stock(engine, topics, "SKU-A", "A-01-01-1", 10, actor="test")
    async with (
        fake_floor(mqtt_endpoint, topics) as floor,
        Controller(settings, floor_for(site), engine=engine) as controller,
    ):
        yield controller, floor


async def test_panel_online_again_gets_its_lights_back(
    station: tuple[Controller, FakeFloor], engine: AsyncEngine
) -> None:
    controller, floor = station
    await submit_order(
        engine,
        controller.topics,
        new_order("r1", [("SKU-A", 3)]),
        idempotency_key="r1",
        request_hash="r1",
        actor="t",
    )
    await controller.housekeeping_once()
    await floor.wait_command("ptl-1", "light", lambda b: b["slot"] == 1 and b["qty"] == 3)
    await floor.event("scan-pk", "scan", code="T0001", symbology=None)
    await floor.event("scan-pk", "scan", code=BARCODE, symbology="]E0")
    await floor.wait_command("ptl-1", "light", lambda b: b["slot"] == 1 and b["qty"] == 2)

    # The PTL driver restarts: its panel is dark; it says online again.
    n = len(floor.commands)
    await floor.status("ptl-1", "ptl", "pick", "online")
    light = await floor.wait_command("ptl-1", "light", start=n)
    assert (light["slot"], light["qty"], light["color"]) == (1, 2, "green")
    cleared = set()
    for slot in (2, 3, 4):
        body = await floor.wait_command("ptl-1", "clear", lambda b, s=slot: b["slot"] == s, start=n)
        cleared.add(body["slot"])
    assert cleared == {2, 3, 4}
    lit = [b["slot"] for d, c, b in floor.commands[n:] if d == "ptl-1" and c == "light"]
    assert lit == [1]  # nothing else lit, nothing lit twice


async def test_other_devices_coming_online_send_no_lights(
    station: tuple[Controller, FakeFloor],
) -> None:
    controller, floor = station
    # The station's own repaint when its session came up is done before we look.
    await controller.until_quiet(0.3)
    await asyncio.sleep(0.3)
    n = len(floor.commands)
    await floor.status("scan-pk", "scanner", "pick", "online")
    await floor.status("ptl-1", "ptl", "pick", "fault", "link down")
    await floor.event("scan-pk", "scan", code="T0009", symbology=None)  # a marker
    async with asyncio.timeout(10):
        while controller.stats.applied < 3:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # commands published after the commit have arrived
    assert [c for d, c, _ in floor.commands[n:] if d == "ptl-1"] == []
