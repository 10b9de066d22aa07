"""A deadlock is the database giving up on a transaction, not on an event.

A station's batches never meet another writer of its rows, but the shared rows
(stock, orders) can still meet intake's transactions, and PostgreSQL breaks a lock
cycle by aborting one of them. The controller replays a failed batch with a
savepoint per event so that one bad event cannot take its neighbours down - and a
deadlock met during that replay must not be taken for the event's own failure
(dead-lettered and acknowledged, its effect lost): the whole batch is tried again.
Here a real deadlock error is raised at exactly that moment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.edge import Inbound
from controller.lane import Lane
from controller.runtime import Controller
from tests.integration.controller.support import FakeFloor, fake_floor, floor_for
from tests.integration.persistence.helpers import new_order
from wcs.contract.payloads import ScanEvent
from wcs.contract.topics import Topics
from wcs.errors import ValidationFailed
from wcs.persistence.tables import activity
from wcs.services.catalog import LocationData, SkuData, upsert_location, upsert_sku
from wcs.services.orders import receive_stock, submit_order
from wcs.settings import MqttEndpoint, Settings

BARCODE = "4006381333931"


async def real_deadlock(engine: AsyncEngine) -> DBAPIError:
    """Two transactions updating two rows in opposite orders; returns the loser's error."""
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE dl_probe (id int PRIMARY KEY, n int)"))
        await conn.execute(text("INSERT INTO dl_probe VALUES (1, 0), (2, 0)"))

    async def cross(first: int, second: int) -> None:
        async with engine.begin() as conn:
            await conn.execute(text(f"UPDATE dl_probe SET n = n + 1 WHERE id = {first}"))
            await asyncio.sleep(0.3)
            await conn.execute(text(f"UPDATE dl_probe SET n = n + 1 WHERE id = {second}"))

    results = await asyncio.gather(cross(1, 2), cross(2, 1), return_exceptions=True)
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE dl_probe"))
    errors = [r for r in results if isinstance(r, DBAPIError)]
    assert len(errors) == 1
    return errors[0]


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


def scan(controller: Controller, msg_id: str, code: str) -> Inbound:
    topic = controller.topics.dev_evt("scan-pk", "scan")
    payload = ScanEvent(msg_id=msg_id, code=code, symbology="]E0")
    return Inbound(
        "PK1", "evt", "scan-pk", payload, topic, payload.to_json(), 0, 0, time.perf_counter()
    )


async def test_a_deadlock_in_the_replay_retries_the_batch_instead_of_losing_the_event(
    station: tuple[Controller, FakeFloor, AsyncEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    controller, floor, engine = station
    await submit_order(
        engine,
        controller.topics,
        new_order("d1", [("SKU-A", 3)]),
        idempotency_key="d1",
        request_hash="d1",
        actor="t",
    )
    await controller.housekeeping_once()
    await floor.wait_command("ptl-1", "light", lambda b: b["slot"] == 1)
    lane = Lane(engine)
    await controller._commit([scan(controller, "tote", "T0001")], lane)
    deadlock = await real_deadlock(engine)

    real = controller.edge.apply
    calls: list[str] = []

    async def apply(unit: Any, owned: Any, state: Any, item: Inbound) -> Any:
        msg_id = item.payload.msg_id
        calls.append(msg_id)
        if msg_id == "bad":
            raise ValidationFailed("this event is refused")  # sends the batch to the replay
        if msg_id == "good" and calls.count("good") == 1:
            raise deadlock  # first seen in the replay with savepoints
        return await real(unit, owned, state, item)

    monkeypatch.setattr(controller.edge, "apply", apply)
    batch = [scan(controller, "bad", BARCODE), scan(controller, "good", BARCODE)]
    try:
        await controller._commit_with_retry(batch, lane)
    finally:
        await lane.close()

    async with engine.connect() as conn:
        kinds = (await conn.scalars(select(activity.c.kind).order_by(activity.c.id))).all()
    assert "failed" not in kinds
    assert kinds.count("pick") == 1  # the good scan, once
    assert kinds.count("refused") == 1  # the bad one, once
    assert controller.stats.commit_errors == 1  # the deadlock: one whole-batch retry
