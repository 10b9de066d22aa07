"""Delivery services on SQLite and PostgreSQL: booking under carrier faults (the fake carrier
as a real process), automatic close and the housekeeping task of the API process."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from tests.integration.carriers.conftest import FakeCarrier
from tests.integration.delivery.helpers import DELIVERY_PATH, FLOOR_PATH, drive
from tests.integration.persistence.helpers import new_order, seed_catalogue
from wcs.carriers.client import RetryPolicy
from wcs.carriers.rules import load_rules
from wcs.contract.topics import Topics
from wcs.domain.delivery import ReturnWish
from wcs.errors import CarrierUnavailable
from wcs.persistence.tables import alerts, order_events, shipments, sign_offs
from wcs.services.delivery_jobs import TASK_NAME, DeliveryHousekeeping
from wcs.services.orders import cancel_order, submit_order
from wcs.services.returns import inspect_return, mark_received, request_return, resolve_return
from wcs.services.shipments import CarrierDesk, allocate_order
from wcs.services.signoff import auto_close_due
from wcs.settings import MqttEndpoint, Settings
from wcs.timeutil import utcnow

FAST = RetryPolicy(attempts=4, initial_s=0.02, max_s=0.1, deadline_s=10)


async def _packed(engine: AsyncEngine, site: str, key: str) -> str:
    topics = Topics(site)
    await seed_catalogue(engine, topics, {"SKU-1": [("A-01-01-1", 20)]})
    result = await submit_order(
        engine,
        topics,
        new_order(key, [("SKU-1", 1)], city="Hamburg", postal_code="20095", country="DE"),
        idempotency_key=key,
        request_hash=key,
        actor="test",
    )
    assert result.state == "reserved"
    await drive(engine, site, result.order_id, FLOOR_PATH)
    return result.order_id


async def test_retried_booking_is_booked_once(
    engine: AsyncEngine, site: str, fake_carrier: FakeCarrier
) -> None:
    order_id = await _packed(engine, site, "faults-1")
    fake_carrier.faults(fail_next=2)
    async with CarrierDesk(load_rules(), fake_carrier.url, retry=FAST) as desk:
        allocation = await allocate_order(engine, Topics(site), order_id, desk=desk, actor="t")
    stats = fake_carrier.stats()
    assert stats["attempts"][allocation.shipment_id] == 3
    assert stats["bookings"][allocation.shipment_id] == 1
    assert allocation.tracking_no.startswith("FC") and not allocation.replayed


async def test_a_timed_out_booking_is_not_booked_twice(
    engine: AsyncEngine, site: str, fake_carrier: FakeCarrier
) -> None:
    order_id = await _packed(engine, site, "faults-2")
    # The carrier books, then answers too late: the retry must get that same booking.
    fake_carrier.faults(delay_next=1, delay_s=1.5)
    async with CarrierDesk(load_rules(), fake_carrier.url, retry=FAST, timeout_s=0.4) as desk:
        allocation = await allocate_order(engine, Topics(site), order_id, desk=desk, actor="t")
    stats = fake_carrier.stats()
    assert stats["attempts"][allocation.shipment_id] == 2
    assert stats["bookings"][allocation.shipment_id] == 1


async def test_carrier_down_leaves_a_pending_shipment_that_rebooks_with_the_same_key(
    engine: AsyncEngine, site: str, fake_carrier: FakeCarrier
) -> None:
    order_id = await _packed(engine, site, "faults-3")
    topics = Topics(site)
    fake_carrier.faults(fail_next=100)
    async with CarrierDesk(load_rules(), fake_carrier.url, retry=FAST) as desk:
        with pytest.raises(CarrierUnavailable, match="4 attempts"):
            await allocate_order(engine, topics, order_id, desk=desk, actor="t")
        async with engine.connect() as conn:
            pending = (await conn.execute(select(shipments))).one()
            alert = (await conn.execute(select(alerts.c.code, alerts.c.subject))).one()
            state = (
                await conn.scalars(
                    select(order_events.c.to_state)
                    .where(order_events.c.order_id == order_id)
                    .order_by(order_events.c.seq.desc())
                )
            ).first()
        assert pending.status == "pending" and "503" in pending.last_error
        assert tuple(alert) == ("carrier_booking_failed", order_id)
        assert state == "packed"

        fake_carrier.faults(fail_next=0)
        allocation = await allocate_order(engine, topics, order_id, desk=desk, actor="t")
    assert allocation.shipment_id == pending.id
    assert fake_carrier.stats()["bookings"][pending.id] == 1


async def test_an_order_allocated_without_a_booking_gets_one(
    engine: AsyncEngine, site: str, fake_carrier: FakeCarrier
) -> None:
    order_id = await _packed(engine, site, "no-label-1")
    await drive(engine, site, order_id, ("allocated",))  # moved on without a booking
    async with CarrierDesk(load_rules(), fake_carrier.url, retry=FAST) as desk:
        first = await allocate_order(engine, Topics(site), order_id, desk=desk, actor="t")
        again = await allocate_order(engine, Topics(site), order_id, desk=desk, actor="t")
    assert not first.replayed and first.tracking_no
    assert again.replayed and again.shipment_id == first.shipment_id
    async with engine.connect() as conn:
        rows = (await conn.execute(select(shipments.c.id, shipments.c.status))).all()
    assert [tuple(r) for r in rows] == [(first.shipment_id, "booked")]


async def test_a_cancelled_order_has_its_booking_voided_by_housekeeping(
    engine: AsyncEngine, site: str, fake_carrier: FakeCarrier
) -> None:
    topics = Topics(site)
    order_id = await _packed(engine, site, "cancel-1")
    async with CarrierDesk(load_rules(), fake_carrier.url, retry=FAST) as desk:
        allocation = await allocate_order(engine, topics, order_id, desk=desk, actor="t")
        await cancel_order(engine, topics, order_id, actor="cs", reason="customer changed mind")
        jobs = DeliveryHousekeeping(engine, topics, auto_close_days=7, desk=desk)
        assert (await jobs.run_once()).voided == [allocation.shipment_id]
        assert (await jobs.run_once()).voided == []
    async with httpx.AsyncClient(base_url=fake_carrier.url) as carrier:
        status = (await carrier.get(f"/v1/shipments/{allocation.tracking_no}")).json()
    assert status["status"] == "cancelled"
    async with engine.connect() as conn:
        row = (await conn.execute(select(shipments.c.status))).one()
    assert row.status == "cancelled"


async def _delivered(engine: AsyncEngine, site: str, key: str) -> str:
    topics = Topics(site)
    await seed_catalogue(engine, topics, {"SKU-1": [("A-01-01-1", 20)]})
    result = await submit_order(
        engine,
        topics,
        new_order(key, [("SKU-1", 2)]),
        idempotency_key=key,
        request_hash=key,
        actor="t",
    )
    await drive(engine, site, result.order_id, FLOOR_PATH + DELIVERY_PATH)
    return result.order_id


async def test_auto_close_waits_for_the_deadline_and_for_open_returns(
    engine: AsyncEngine, site: str
) -> None:
    topics = Topics(site)
    quiet = await _delivered(engine, site, "quiet-1")
    unhappy = await _delivered(engine, site, "unhappy-1")
    rma = await request_return(
        engine, topics, unhappy, [ReturnWish(1, 1, "broken")], actor="customer"
    )
    now = utcnow()
    assert await auto_close_due(engine, topics, now + timedelta(days=6), after_days=7) == []
    closed = await auto_close_due(engine, topics, now + timedelta(days=8), after_days=7)
    assert closed == [quiet]
    assert await auto_close_due(engine, topics, now + timedelta(days=8), after_days=7) == []

    await mark_received(engine, rma, actor="desk")
    await inspect_return(engine, rma, grade="scrap", actor="desk")
    await resolve_return(engine, topics, rma, "refund", refund_minor=1250, actor="desk")
    assert await auto_close_due(engine, topics, now + timedelta(days=8), after_days=7) == [unhappy]
    async with engine.connect() as conn:
        rows = (await conn.execute(select(sign_offs.c.order_id, sign_offs.c.kind))).all()
        actors = (
            await conn.scalars(
                select(order_events.c.actor).where(order_events.c.to_state == "closed")
            )
        ).all()
    assert sorted(tuple(r) for r in rows) == sorted([(quiet, "auto"), (unhappy, "auto")])
    assert set(actors) == {"system:auto-close"}


async def test_housekeeping_is_a_named_task_that_closes_due_orders(
    engine: AsyncEngine, site: str
) -> None:
    order_id = await _delivered(engine, site, "house-1")
    woken = asyncio.Event()
    jobs = DeliveryHousekeeping(
        engine,
        Topics(site),
        auto_close_days=7,
        interval_s=0.05,
        clock=lambda: utcnow() + timedelta(days=8),
        after_round=woken.set,
    )
    async with jobs:
        assert [t for t in asyncio.all_tasks() if t.get_name() == TASK_NAME]
        await asyncio.wait_for(woken.wait(), 10)
    assert not [t for t in asyncio.all_tasks() if t.get_name() == TASK_NAME]
    assert jobs.rounds >= 1 and jobs.failures == 0
    async with engine.connect() as conn:
        kind = await conn.scalar(select(sign_offs.c.kind).where(sign_offs.c.order_id == order_id))
    assert kind == "auto"


async def test_api_lifespan_owns_the_housekeeping_task(
    db_url: str, engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=db_url,
        mqtt_url=f"mqtt://{mqtt_endpoint.host}:{mqtt_endpoint.port}",
        site=site,
        embedded_broker=False,
        pod_dir=tmp_path / "pod",
    )
    app = create_app(settings, run_relay=False)
    async with app.router.lifespan_context(app):
        running = [t for t in asyncio.all_tasks() if t.get_name() == TASK_NAME]
        assert len(running) == 1 and not running[0].done()
        assert isinstance(app.state.carrier_desk, CarrierDesk)
    assert running[0].cancelled()
