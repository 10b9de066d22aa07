"""The controller's allocation loop: packed orders get a carrier, on both databases,
against the fake carrier running as its own process."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.allocation import Allocator
from controller.runtime import Controller
from tests.integration.carriers.conftest import FakeCarrier, start_process, stop
from tests.integration.controller.support import settings_for
from tests.integration.persistence.helpers import new_order, seed_catalogue
from tests.ports import free_port
from wcs.carriers.client import RetryPolicy
from wcs.carriers.rules import load_rules
from wcs.contract.topics import Topics
from wcs.domain.states import OrderState
from wcs.floor import Floor
from wcs.persistence.db import transaction
from wcs.persistence.orders import transition
from wcs.persistence.tables import alerts, orders, packages, shipments
from wcs.services.orders import submit_order
from wcs.services.shipments import CarrierDesk
from wcs.settings import MqttEndpoint
from wcs.timeutil import utcnow

TO_PACKED = (
    OrderState.PICK_PLANNED,
    OrderState.PICKING,
    OrderState.PICKED,
    OrderState.QC_PASSED,
    OrderState.PACKING,
    OrderState.PACKED,
)
BERLIN = {"city": "Berlin", "postal_code": "10115", "country": "DE"}
MUNICH = {"city": "München", "postal_code": "80331", "country": "DE"}


@pytest.fixture(scope="module")
def carrier_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("allocation-carrier") / "carrier.log"
    args = [sys.executable, "-m", "wcs.carriers.fake_server", "--port", str(port), "--seed", "3"]
    proc = start_process(args, url, log)
    try:
        yield url
    finally:
        stop(proc)


@pytest.fixture
def carrier(carrier_url: str) -> Iterator[FakeCarrier]:
    fake = FakeCarrier(carrier_url)
    fake.faults(fail_next=0, delay_next=0, delay_s=0, fail_rate=0)
    yield fake
    fake.faults(fail_next=0, delay_next=0, delay_s=0, fail_rate=0)


async def packed_order(
    engine: AsyncEngine, topics: Topics, key: str, measured_g: float, **address: str
) -> str:
    result = await submit_order(
        engine,
        topics,
        new_order(key, [("SKU-1", 2)], **address),
        idempotency_key=key,
        request_hash=key,
        actor="test",
    )
    assert result.state == OrderState.RESERVED
    async with transaction(engine) as conn:
        for state in TO_PACKED:
            await transition(conn, topics, result.order_id, state, actor="test")
        await conn.execute(
            packages.insert().values(
                id=f"p-{key}",
                order_id=result.order_id,
                station="P1",
                carton="M",
                expected_g=measured_g,
                measured_g=measured_g,
                state="packed",
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
    return result.order_id


async def state_of(engine: AsyncEngine, order_id: str) -> str:
    async with engine.connect() as conn:
        return str(await conn.scalar(select(orders.c.state).where(orders.c.id == order_id)))


@pytest.fixture
async def seeded(engine: AsyncEngine, site: str) -> Topics:
    topics = Topics(site)
    await seed_catalogue(engine, topics, {"SKU-1": [("A-01-01-1", 50)]})
    return topics


def allocator(engine: AsyncEngine, topics: Topics, desk: CarrierDesk) -> Allocator:
    return Allocator(engine, topics, desk, actor="controller:test", retry_base_s=0.0)


def desk_for(url: str) -> CarrierDesk:
    # Few quick retries: a failing carrier is the point of one test, not a wait.
    return CarrierDesk(load_rules(), url, retry=RetryPolicy(attempts=2, initial_s=0.01))


async def test_packed_orders_are_booked_with_the_measured_parcel(
    engine: AsyncEngine, seeded: Topics, carrier: FakeCarrier
) -> None:
    own = await packed_order(engine, seeded, "al-1", 812.0, **BERLIN)
    far = await packed_order(engine, seeded, "al-2", 1433.5, **MUNICH)
    async with desk_for(carrier.url) as desk:
        booked = await allocator(engine, seeded, desk).round()
    assert booked == 2
    assert await state_of(engine, own) == OrderState.ALLOCATED
    assert await state_of(engine, far) == OrderState.ALLOCATED
    async with engine.connect() as conn:
        rows = {
            r.order_id: r
            for r in await conn.execute(
                select(shipments.c.order_id, shipments.c.own_fleet, shipments.c.weight_g)
            )
        }
    assert rows[own].own_fleet and not rows[far].own_fleet
    # The scale's weight travels to the carrier, not an estimate from the catalogue.
    assert (rows[own].weight_g, rows[far].weight_g) == (812.0, 1433.5)
    assert sum(carrier.stats()["bookings"].values()) >= 1


async def test_a_failing_carrier_is_retried_and_an_unfit_order_alerted_once(
    engine: AsyncEngine, seeded: Topics, carrier: FakeCarrier
) -> None:
    far = await packed_order(engine, seeded, "al-3", 900.0, **MUNICH)
    # 90 kg: heavier than any carrier (or our vans) takes.
    unfit = await packed_order(engine, seeded, "al-4", 90_000.0, **MUNICH)
    carrier.faults(fail_next=100)
    async with desk_for(carrier.url) as desk:
        loop = allocator(engine, seeded, desk)
        assert await loop.round() == 0
        assert await state_of(engine, far) == OrderState.PACKED
        carrier.faults(fail_next=0)
        assert await loop.round() == 1
        assert await loop.round() == 0
    assert await state_of(engine, far) == OrderState.ALLOCATED
    assert await state_of(engine, unfit) == OrderState.PACKED
    assert loop.stats.failed >= 3
    async with engine.connect() as conn:
        subjects = list(
            (
                await conn.scalars(
                    select(alerts.c.subject).where(alerts.c.code == "carrier_booking_failed")
                )
            ).all()
        )
    assert subjects.count(unfit) == 1
    assert far in subjects


async def test_the_controller_runs_the_loop(
    engine: AsyncEngine,
    seeded: Topics,
    carrier: FakeCarrier,
    db_url: str,
    mqtt_endpoint: MqttEndpoint,
    site: str,
) -> None:
    settings = settings_for(
        db_url,
        mqtt_endpoint,
        site,
        carrier_url=carrier.url,
        controller={"wave_interval_s": 3600, "allocate_interval_s": 0.05},
    )
    order_id = await packed_order(engine, seeded, "al-5", 700.0, **MUNICH)
    async with Controller(settings, Floor(site=site), engine=engine) as controller:
        names = {t.get_name() for t in asyncio.all_tasks()}
        assert "controller-allocation" in names
        async with asyncio.timeout(15):
            while await state_of(engine, order_id) != OrderState.ALLOCATED:
                await asyncio.sleep(0.05)
        assert controller.allocator is not None and controller.allocator.stats.allocated == 1
