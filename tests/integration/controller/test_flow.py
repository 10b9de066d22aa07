"""The controller end to end on the real broker and database: pick -> QC -> pack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.runtime import Controller
from tests.integration.controller.support import FakeFloor, fake_floor, floor_for, settings_for
from tests.integration.persistence.helpers import new_order
from wcs.contract.topics import Topics
from wcs.persistence.tables import activity, order_events, packages
from wcs.services.catalog import LocationData, SkuData, stock_view, upsert_location, upsert_sku
from wcs.services.order_views import get_order
from wcs.services.orders import receive_stock, submit_order
from wcs.settings import MqttEndpoint, Settings


@pytest.fixture
def settings(db_url: str, mqtt_endpoint: MqttEndpoint, site: str) -> Settings:
    return settings_for(
        db_url,
        mqtt_endpoint,
        site,
        controller={"wave_interval_s": 3600, "committers": 2},
    )


@pytest.fixture
async def bench(
    settings: Settings, engine: AsyncEngine, mqtt_endpoint: MqttEndpoint
) -> AsyncIterator[tuple[Controller, FakeFloor, AsyncEngine]]:
    topics = Topics(settings.site)
    skus = {"SKU-A": ("A-01-01-1", "4006381333931"), "SKU-B": ("A-02-05-1", "4006381333948")}
    for sku, (code, barcode) in skus.items():
        await upsert_sku(engine, SkuData(sku, sku, 400.0, 150, 100, 50, barcode))
        _, aisle, bay, level = code.split("-")
        await upsert_location(engine, LocationData(code, "pick", int(aisle), int(bay), int(level)))
        await receive_stock(engine, topics, sku, code, 10, actor="test")
    async with (
        fake_floor(mqtt_endpoint, topics) as floor,
        Controller(settings, floor_for(settings.site), engine=engine) as controller,
    ):
        yield controller, floor, engine


async def order_in(
    engine: AsyncEngine, topics: Topics, key: str, lines: list[tuple[str, int]]
) -> str:
    result = await submit_order(
        engine, topics, new_order(key, lines), idempotency_key=key, request_hash=key, actor="t"
    )
    assert result.state == "reserved"
    return result.order_id


async def wait_state(engine: AsyncEngine, order_id: str, state: str, timeout: float = 10.0) -> None:
    import asyncio

    async with asyncio.timeout(timeout):
        while (await get_order(engine, order_id))["state"] != state:
            await asyncio.sleep(0.02)


async def kinds(engine: AsyncEngine, order_id: str | None = None) -> list[str]:
    query = select(activity.c.kind).order_by(activity.c.id)
    if order_id:
        query = query.where(activity.c.order_id == order_id)
    async with engine.connect() as conn:
        return list((await conn.scalars(query)).all())


async def test_order_goes_from_pick_to_packed(
    bench: tuple[Controller, FakeFloor, AsyncEngine],
) -> None:
    controller, floor, engine = bench
    topics = controller.topics
    order_id = await order_in(engine, topics, "o1", [("SKU-A", 2), ("SKU-B", 1)])
    await controller.housekeeping_once()  # wave release + station activation
    assert (await get_order(engine, order_id))["state"] == "pick_planned"

    # First stop lit: slot 1 (A-01-01-1) shows 2 units.
    light = await floor.wait_command("ptl-1", "light", lambda b: b["slot"] == 1)
    assert (light["qty"], light["color"]) == (2, "green")

    await floor.event("scan-pk", "scan", code="T0001", symbology=None)
    # Confirm 2 units at slot 1 -> slot cleared, next stop (slot 3, A-02-05-1) lit.
    await floor.event("ptl-1", "confirm", slot=1, qty=2)
    await floor.wait_command("ptl-1", "clear", lambda b: b["slot"] == 1)
    nxt = await floor.wait_command("ptl-1", "light", lambda b: b["slot"] == 3)
    assert nxt["qty"] == 1
    await wait_state(engine, order_id, "picking")

    # A wrong item is refused on the spot: red light, nothing recorded as picked.
    n = len(floor.commands)
    await floor.event("scan-pk", "scan", code="5901234123457", symbology="]E0")  # no SKU
    red = await floor.wait_command("ptl-1", "light", lambda b: b["color"] == "red", start=n)
    assert red["slot"] == 3
    # The right item by barcode completes the order.
    await floor.event("scan-pk", "scan", code="4006381333948", symbology="]E0")
    await wait_state(engine, order_id, "picked")
    view = await stock_view(engine, "SKU-A")
    assert (view["on_hand"], view["reserved"], view["in_totes"]) == (8, 0, 2)

    # Conveyor: picked tote goes to QC.
    await floor.event("div-1", "arrival", tote="T0001", point="D1")
    route = await floor.wait_command("div-1", "route", lambda b: b["tote"] == "T0001")
    assert route["lane"] == "qc"

    # QC: tote then each item.
    await floor.event("scan-qc", "scan", code="T0001", symbology=None)
    for code in ("4006381333931", "4006381333931", "4006381333948"):
        await floor.event("scan-qc", "scan", code=code, symbology="]E0")
    await wait_state(engine, order_id, "qc_passed")

    # To the least-loaded available pack station.
    await floor.event("div-1", "arrival", tote="T0001", point="D1")
    route = await floor.wait_command(
        "div-1", "route", lambda b: b["tote"] == "T0001" and b["lane"] == "pack"
    )
    station = route["station"]
    scanner, scale = ("scan-p1", "scale-p1") if station == "P1" else ("scan-p2", "scale-p2")

    await floor.event(scanner, "scan", code="T0001", symbology=None)
    await floor.wait_command(scale, "weigh")
    async with engine.connect() as conn:
        expected = (await conn.execute(select(packages.c.expected_g))).scalar_one()
    await floor.event(scale, "weight", grams=round(expected + 3, 1), stable=True)
    printed = await floor.wait_command("prn-p1" if station == "P1" else "prn-p2", "print")
    assert "^BCN" in printed["zpl"] and f"(00){printed['job_id']}" in printed["zpl"]
    await floor.ack("prn-p1" if station == "P1" else "prn-p2", printed["cmd_id"], ok=True)
    await floor.event(scanner, "scan", code=f"00{printed['job_id']}", symbology="]C1")
    await wait_state(engine, order_id, "packed")

    history = await kinds(engine, order_id)
    for kind in ("pick", "qc_pass", "weight_ok", "label_printed", "packed"):
        assert kind in history
    assert "mispick" in await kinds(engine)
    async with engine.connect() as conn:
        seqs = (
            await conn.scalars(
                select(order_events.c.seq)
                .where(order_events.c.order_id == order_id)
                .order_by(order_events.c.seq)
            )
        ).all()
    assert seqs == list(range(1, len(seqs) + 1))


async def test_redelivered_event_has_one_effect_and_bad_payloads_go_to_dlq(
    bench: tuple[Controller, FakeFloor, AsyncEngine],
) -> None:
    controller, floor, engine = bench
    order_id = await order_in(engine, controller.topics, "o2", [("SKU-A", 3)])
    await controller.housekeeping_once()
    await floor.wait_command("ptl-1", "light", lambda b: b["slot"] == 1)
    await floor.event("scan-pk", "scan", code="T0002", symbology=None)
    # The same scan twice (QoS 1 redelivery): one unit, not two.
    await floor.event("scan-pk", "scan", code="4006381333931", msg_id="dup-1", symbology=None)
    await floor.event("scan-pk", "scan", code="4006381333931", msg_id="dup-1", symbology=None)
    await floor.raw(controller.topics.dev_evt("scan-pk", "scan"), b'{"v": 1, "code": 5}')
    await floor.raw(controller.topics.dev_evt("scan-pk", "scan"), b"\xff\xfenot json")
    await floor.raw(controller.topics.dev_evt("ghost", "scan"), b'{"v":1,"msg_id":"g","code":"x"}')
    dead = await floor.wait_dlq(3)
    errors = " | ".join(d["error"] for d in dead)
    assert "msg_id" in errors and "not valid JSON" in errors and "ghost" in errors
    await floor.event("scan-pk", "scan", code="4006381333931", symbology=None)
    import asyncio

    async with asyncio.timeout(10):
        while True:
            picks = [k for k in await kinds(engine, order_id) if k == "pick"]
            if len(picks) >= 2:
                break
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    picks = [k for k in await kinds(engine, order_id) if k == "pick"]
    assert len(picks) == 2  # dup-1 once + the second scan
    assert controller.stats.duplicates >= 1


async def test_a_redelivery_after_its_batch_committed_has_no_second_effect(
    bench: tuple[Controller, FakeFloor, AsyncEngine],
) -> None:
    import asyncio

    controller, floor, engine = bench
    order_id = await order_in(engine, controller.topics, "o9", [("SKU-A", 3)])
    await controller.housekeeping_once()
    await floor.wait_command("ptl-1", "light", lambda b: b["slot"] == 1)
    await floor.event("scan-pk", "scan", code="T0009", symbology=None)

    async def picks(at_least: int) -> int:
        async with asyncio.timeout(10):
            while len(found := [k for k in await kinds(engine, order_id) if k == "pick"]) < (
                at_least
            ):
                await asyncio.sleep(0.02)
        return len(found)

    await floor.event("scan-pk", "scan", code="4006381333931", msg_id="again-1", symbology=None)
    assert await picks(1) == 1
    # Its batch has committed; the broker sends it again (a lost PUBACK), then a new scan.
    await floor.event("scan-pk", "scan", code="4006381333931", msg_id="again-1", symbology=None)
    await floor.event("scan-pk", "scan", code="4006381333931", msg_id="again-2", symbology=None)
    await picks(2)
    await asyncio.sleep(0.3)
    assert await picks(0) == 2
    assert controller.stats.duplicates == 1


async def test_weight_mismatch_goes_back_to_qc_and_unknown_tote_to_exception(
    bench: tuple[Controller, FakeFloor, AsyncEngine],
) -> None:
    controller, floor, engine = bench
    order_id = await order_in(engine, controller.topics, "o3", [("SKU-A", 1)])
    await controller.housekeeping_once()
    await floor.wait_command("ptl-1", "light")
    await floor.event("scan-pk", "scan", code="T0003", symbology=None)
    await floor.event("ptl-1", "confirm", slot=1, qty=1)
    await wait_state(engine, order_id, "picked")
    await floor.event("scan-qc", "scan", code="T0003", symbology=None)
    await floor.event("scan-qc", "scan", code="4006381333931", symbology=None)
    await wait_state(engine, order_id, "qc_passed")
    await floor.event("scan-p1", "scan", code="T0003", symbology=None)
    await floor.wait_command("scale-p1", "weigh")
    await floor.event("scale-p1", "weight", grams=5000.0, stable=True)
    await wait_state(engine, order_id, "picked")
    assert "weight_mismatch" in await kinds(engine, order_id)
    # Back at QC the order is counted afresh (the earlier pass does not carry over).
    await floor.event("scan-qc", "scan", code="T0003", symbology=None)
    await floor.event("scan-qc", "scan", code="4006381333931", symbology=None)
    await wait_state(engine, order_id, "qc_passed")

    await floor.event("div-1", "arrival", tote="T9999", point="D1")
    route: dict[str, Any] = await floor.wait_command(
        "div-1", "route", lambda b: b["tote"] == "T9999"
    )
    assert route["lane"] == "exception"
