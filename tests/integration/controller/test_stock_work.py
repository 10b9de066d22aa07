"""Replenishment and cycle counts run by the pick station that owns the faces, on the
real broker and database: its PTL panel shows the face to fill or to count, its
scanner takes the labels and the units; the API's counts are requests it applies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.runtime import Controller
from tests.integration.controller.support import FakeFloor, fake_floor, floor_for, settings_for
from tests.integration.controller.test_flow import kinds, order_in, wait_state
from wcs.contract.topics import Topics
from wcs.persistence.tables import (
    count_tasks,
    move_tasks,
    reservations,
    stock,
    stock_adjustments,
    stock_moves,
)
from wcs.services import floor_requests
from wcs.services.catalog import LocationData, SkuData, upsert_location, upsert_sku
from wcs.services.order_views import get_order
from wcs.services.orders import receive_stock
from wcs.services.stock_counts import FaceData, put_face
from wcs.settings import MqttEndpoint, Settings

FACE, FACE_B, RESERVE = "A-01-01-1", "A-01-02-1", "R-09-01-1"
EAN_A, EAN_B = "4006381333931", "4006381333948"


@pytest.fixture
def settings(
    db_url: str, mqtt_endpoint: MqttEndpoint, site: str, request: pytest.FixtureRequest
) -> Settings:
    return settings_for(
        db_url,
        mqtt_endpoint,
        site,
        controller={"wave_interval_s": 3600, "answer_wait_s": 0},
        inventory=getattr(request, "param", {}),
    )


@pytest.fixture
async def bench(
    settings: Settings, engine: AsyncEngine, mqtt_endpoint: MqttEndpoint
) -> AsyncIterator[tuple[Controller, FakeFloor, AsyncEngine]]:
    topics = Topics(settings.site)
    for sku, barcode in (("SKU-A", EAN_A), ("SKU-B", EAN_B)):
        await upsert_sku(engine, SkuData(sku, sku, 400.0, 150, 100, 50, barcode, price_minor=250))
    for code, zone in ((FACE, "pick"), (FACE_B, "pick"), (RESERVE, "reserve")):
        _, aisle, bay, level = code.split("-")
        await upsert_location(engine, LocationData(code, zone, int(aisle), int(bay), int(level)))
    await receive_stock(engine, topics, "SKU-A", FACE, 4, actor="test")
    await receive_stock(engine, topics, "SKU-A", RESERVE, 30, actor="test")
    await receive_stock(engine, topics, "SKU-B", FACE_B, 9, actor="test")
    await put_face(engine, FaceData(FACE, "SKU-A", 2, 6))
    await put_face(engine, FaceData(FACE_B, "SKU-B", 1, 12))
    async with (
        fake_floor(mqtt_endpoint, topics) as floor,
        Controller(settings, floor_for(settings.site), engine=engine) as controller,
    ):
        yield controller, floor, engine


async def pile(engine: AsyncEngine, location: str, sku: str = "SKU-A") -> tuple[int, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(stock.c.on_hand, stock.c.reserved).where(
                    (stock.c.sku == sku) & (stock.c.location == location)
                )
            )
        ).one()
    return int(row.on_hand), int(row.reserved)


async def pick_all(floor: FakeFloor, order_ids: list[str], qty: int, start: int) -> None:
    """Bind a tote per order and confirm each lit task at slot 1 (the face)."""
    for n, _ in enumerate(order_ids):
        await floor.event("scan-pk", "scan", code=f"T{start + n:04d}", symbology=None)
    for _ in order_ids:
        mark = len(floor.commands)
        await floor.wait_command(
            "ptl-1", "light", lambda b: b["slot"] == 1 and b["color"] == "green", start=mark - 1
        )
        await floor.event("ptl-1", "confirm", slot=1, qty=qty)
        await floor.wait_command("ptl-1", "clear", lambda b: b["slot"] == 1, start=mark)


async def test_a_wave_needing_more_than_its_face_holds_completes_without_a_short_pick(
    bench: tuple[Controller, FakeFloor, AsyncEngine],
) -> None:
    controller, floor, engine = bench
    topics = controller.topics
    # Nine units wanted, four on the face: the other orders' units are in reserve.
    orders = [await order_in(engine, topics, f"o{n}", [("SKU-A", 3)]) for n in range(3)]
    async with engine.connect() as conn:
        where = dict(
            (await conn.execute(select(reservations.c.order_id, reservations.c.location))).all()
        )
    assert [where[o] for o in orders] == [FACE, RESERVE, RESERVE]

    await controller.housekeeping_once()
    # The wave waits for the orders whose units are in reserve: only o0 is released.
    states = [(await get_order(engine, o))["state"] for o in orders]
    assert states == ["pick_planned", "reserved", "reserved"]
    # The move comes before the picks: the face's slot shows the units to bring (blue).
    move = await floor.wait_command("ptl-1", "light", lambda b: b["color"] == "blue")
    assert (move["slot"], move["qty"]) == (1, 6 + 2)  # six waiting, two to fill to its max
    assert not [c for c in floor.commands if c[2].get("color") == "green"]
    # A unit before the reserve's label is refused; then the label, then the units.
    mark = len(floor.commands)
    await floor.event("scan-pk", "scan", code=EAN_A, symbology="]E0")
    await floor.wait_command("ptl-1", "light", lambda b: b.get("blink") is True, start=mark)
    await floor.event("scan-pk", "scan", code=RESERVE, symbology="]C0")
    await floor.event("scan-pk", "scan", code=EAN_A, symbology="]E0")
    await floor.wait_command("ptl-1", "light", lambda b: b["qty"] == 7 and b["color"] == "blue")
    await floor.event("ptl-1", "confirm", slot=1, qty=7)
    # Then the batch: o0 picked at the face.
    await pick_all(floor, orders[:1], 3, 1)
    await wait_state(engine, orders[0], "picked")
    # The reservations went with the units: the waiting orders are released now.
    assert await pile(engine, RESERVE) == (22, 0)
    assert await pile(engine, FACE) == (9, 6)
    await controller.housekeeping_once()
    await pick_all(floor, orders[1:], 3, 2)
    for order_id in orders:
        await wait_state(engine, order_id, "picked")
    assert "short_pick" not in await kinds(engine)
    assert await pile(engine, FACE) == (3, 0)
    async with engine.connect() as conn:
        moves = (await conn.execute(select(move_tasks))).all()
        ledger = (
            await conn.execute(
                select(stock_moves.c.location, stock_moves.c.qty).where(
                    stock_moves.c.kind.in_(("move_out", "move_in"))
                )
            )
        ).all()
    assert [(m.reason, m.state, m.qty, m.moved) for m in moves] == [("demand", "done", 8, 8)]
    assert sorted(ledger) == [(FACE, 8), (RESERVE, -8)]


async def ask(engine: AsyncEngine, kind: str, station: str, actor: str, **body: object) -> dict:
    request_id = await floor_requests.ask(engine, kind, actor=actor, station=station, body=body)
    answer = await floor_requests.wait(engine, request_id, 10.0)
    assert answer.state == "done", answer
    assert answer.result is not None
    return answer.result


async def count_row(engine: AsyncEngine, count_id: int) -> object:
    async with engine.connect() as conn:
        return (await conn.execute(select(count_tasks).where(count_tasks.c.id == count_id))).one()


async def test_counts_on_the_floor_and_over_the_api_with_a_recount_by_someone_else(
    bench: tuple[Controller, FakeFloor, AsyncEngine],
) -> None:
    controller, floor, engine = bench
    topics = controller.topics
    # SKU-B's face holds 9 on the books, 6 in fact. A supervisor asks for a count.
    made = await ask(engine, "count_create", "PK1", "sue", location=FACE_B, sku="SKU-B")
    assert made["created"]
    count_id = int(made["count_id"])
    await controller.housekeeping_once()
    lit = await floor.wait_command("ptl-1", "light", lambda b: b["color"] == "yellow")
    assert (lit["slot"], lit["qty"]) == (2, 0)  # blind: never the book
    await floor.event("scan-pk", "scan", code=FACE_B, symbology="]C0")
    for n in (1, 2):
        await floor.event("scan-pk", "scan", code=EAN_B, symbology="]E0")
        await floor.wait_command("ptl-1", "light", lambda b, n=n: b["qty"] == n and b["slot"] == 2)
    await floor.event("ptl-1", "confirm", slot=2, qty=6)
    await floor.wait_command("ptl-1", "clear", lambda b: b["slot"] == 2)
    async with asyncio.timeout(10):
        while (row := await count_row(engine, count_id)).state != "recount":  # type: ignore[attr-defined]
            await asyncio.sleep(0.05)
    assert (row.first_delta, row.first_by) == (-3, "station:PK1")  # type: ignore[attr-defined]
    assert await pile(engine, FACE_B, "SKU-B") == (9, 0)  # nothing booked yet
    # The recount must be someone else's; the stock controller's handheld confirms it.
    request_id = await floor_requests.ask(
        engine,
        "count_key",
        actor="station:PK1",
        station="PK1",
        body={"count_id": count_id, "qty": 6},
    )
    refused = await floor_requests.wait(engine, request_id, 10.0)
    assert refused.state == "refused" and refused.result is not None
    assert refused.result["status"] == 409
    done = await ask(engine, "count_key", "PK1", "ken", count_id=count_id, qty=6)
    assert done == {"count_id": count_id, "state": "done", "outcome": "closed"}
    assert await pile(engine, FACE_B, "SKU-B") == (6, 0)
    async with engine.connect() as conn:
        audit = (await conn.execute(select(stock_adjustments))).one()
        kinds_ = (
            await conn.execute(select(func.count()).where(stock_moves.c.kind == "count"))
        ).scalar()
    assert (audit.delta, audit.book, audit.counted, audit.value_minor) == (-3, 9, 6, -750)
    assert (audit.counted_by, audit.accepted_by, audit.reason) == ("ken", "ken", "supervisor")
    assert kinds_ == 1
    # A second difference on the same pile within the period raises an alert.
    made = await ask(engine, "count_create", "floor", "sue", location=FACE_B, sku="SKU-B")
    second = int(made["count_id"])
    closed = await ask(engine, "count_key", "PK1", "ken", count_id=second, qty=5)
    assert closed["outcome"] == "closed"
    assert "location_adjusted_twice" in await kinds_of_alerts(engine)
    # A count that disagrees twice goes to a supervisor, who books a difference.
    made = await ask(engine, "count_create", "PK1", "sue", location=FACE, sku="SKU-A")
    third = int(made["count_id"])
    assert (await ask(engine, "count_key", "PK1", "ann", count_id=third, qty=0))[
        "outcome"
    ] == "recount"
    assert (await ask(engine, "count_key", "PK1", "ken", count_id=third, qty=1))[
        "outcome"
    ] == "review"
    accepted = await ask(engine, "count_accept", "PK1", "sue", count_id=third)
    assert accepted["outcome"] == "closed"
    assert await pile(engine, FACE) == (1, 0)
    await asyncio.sleep(0)
    _ = topics


async def kinds_of_alerts(engine: AsyncEngine) -> list[str]:
    from wcs.persistence.tables import alerts

    async with engine.connect() as conn:
        return list((await conn.scalars(select(alerts.c.code))).all())


@pytest.mark.parametrize("settings", [{"count_period_s": 0.5}], indirect=True)
async def test_the_floor_schedules_counts_of_the_reserve_no_station_counts(
    bench: tuple[Controller, FakeFloor, AsyncEngine],
) -> None:
    controller, _, engine = bench
    await asyncio.sleep(0.6)  # the reserve's first stock is older than its interval now
    await controller.housekeeping_once()
    async with engine.connect() as conn:
        rows = (
            await conn.execute(select(count_tasks).where(count_tasks.c.station == "floor"))
        ).all()
    # The reserve pile is due, for the floor (a stock controller counts it over the
    # API); the faces are the pick station's to count, not the floor's.
    assert [(r.location, r.sku, r.reason, r.state) for r in rows] == [
        (RESERVE, "SKU-A", "abc", "open")
    ]
    # Once a pile has an open count, the next round opens no other.
    await controller.housekeeping_once()
    async with engine.connect() as conn:
        n = await conn.scalar(
            select(func.count()).select_from(count_tasks).where(count_tasks.c.location == RESERVE)
        )
    assert n == 1
    done = await ask(engine, "count_key", "floor", "ken", count_id=int(rows[0].id), qty=30)
    assert done["outcome"] == "closed"
    assert (await count_row(engine, int(rows[0].id))).result == "matched"  # type: ignore[attr-defined]
