"""Intake's group commit on SQLite and PostgreSQL: exact under a flash sale, one bad
order never takes its batch down, a key repeated inside one batch answered once."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.persistence.helpers import new_order, seed_catalogue
from wcs.contract.topics import Topics
from wcs.domain.reservation import Availability, take
from wcs.errors import IdempotencyConflict, InsufficientStock
from wcs.persistence.intake_store import PgIntakeStore
from wcs.persistence.tables import (
    order_events,
    orders,
    outbox,
    replenishment_requests,
    reservations,
    stock,
)
from wcs.services.intake import IntakeDesk, IntakeResult, Shortage, Submission
from wcs.timeutil import utcnow

TOPICS = Topics("wh1")
HOT = "HOT-1"


def sub(
    key: str, lines: list[tuple[str, int]], body: str | None = None, **kw: object
) -> Submission:
    return Submission(new_order(key, lines, **kw), key, body or key, "shop")


async def flash_sale(
    engine: AsyncEngine, *, orders_n: int, units: int, shortage: Shortage
) -> list[IntakeResult | BaseException]:
    """``orders_n`` concurrent single-unit orders for one SKU with ``units`` in stock,
    spread over two piles, through two desks (two API workers)."""
    await seed_catalogue(
        engine, TOPICS, {HOT: [("A-01-01-1", units // 3), ("A-01-02-1", units - units // 3)]}
    )
    async with (
        IntakeDesk(engine, TOPICS, batch_max=64, shortage=shortage) as one,
        IntakeDesk(engine, TOPICS, batch_max=64, shortage=shortage) as two,
    ):
        desks = itertools.cycle([one, two])
        outcomes = await asyncio.gather(
            *(next(desks).submit(sub(f"fs-{i}", [(HOT, 1)])) for i in range(orders_n)),
            return_exceptions=True,
        )
        assert one.stats.largest > 1 or two.stats.largest > 1  # they were batched
    return outcomes


async def reconcile(engine: AsyncEngine) -> None:
    """Stock agrees with the reservations: every reserved unit is held by an order."""
    async with engine.connect() as conn:
        piles = {
            (r.sku, r.location): (r.on_hand, r.reserved)
            for r in await conn.execute(
                select(stock.c.sku, stock.c.location, stock.c.on_hand, stock.c.reserved)
            )
        }
        held = {
            (r.sku, r.location): int(r.qty)
            for r in await conn.execute(
                select(
                    reservations.c.sku,
                    reservations.c.location,
                    func.sum(reservations.c.qty).label("qty"),
                )
                .where(reservations.c.state == "active")
                .group_by(reservations.c.sku, reservations.c.location)
            )
        }
    for pile, (on_hand, reserved) in piles.items():
        assert 0 <= reserved <= on_hand
        assert reserved == held.get(pile, 0), (
            f"{pile}: stock says {reserved}, reservations {held.get(pile, 0)}"
        )


@pytest.mark.parametrize("shortage", ["backorder", "refuse"])
async def test_flash_sale_reserves_exactly_the_stock(
    engine: AsyncEngine, shortage: Shortage
) -> None:
    outcomes = await flash_sale(engine, orders_n=600, units=60, shortage=shortage)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    results = [o for o in outcomes if isinstance(o, IntakeResult)]
    states = Counter(r.state for r in results)
    assert states["reserved"] == 60
    if shortage == "backorder":
        assert not errors
        assert states["backordered"] == 540
    else:
        assert len(errors) == 540
        assert all(isinstance(e, InsufficientStock) for e in errors)
        assert states["backordered"] == 0
    await reconcile(engine)
    async with engine.connect() as conn:
        stored = Counter(
            dict(
                (
                    await conn.execute(
                        select(orders.c.state, func.count()).group_by(orders.c.state)
                    )
                ).all()
            )
        )
        assert stored == states
        assert await conn.scalar(select(func.sum(stock.c.reserved))) == 60
        assert (
            await conn.scalar(select(func.count()).select_from(replenishment_requests))
            == states["backordered"]
        )
        # Three events per order, seq 1..3 without gaps, and a state message for each.
        seqs = (await conn.execute(select(order_events.c.order_id, order_events.c.seq))).all()
        by_order: dict[str, list[int]] = {}
        for order_id, seq in seqs:
            by_order.setdefault(order_id, []).append(seq)
        assert len(by_order) == len(results)
        assert all(sorted(s) == [1, 2, 3] for s in by_order.values())
        messages = await conn.scalar(
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.topic.like(f"{TOPICS.root}/order/%"))
        )
        assert messages == 3 * len(results)


async def test_same_key_twice_in_one_batch_is_one_order(engine: AsyncEngine) -> None:
    await seed_catalogue(engine, TOPICS, {"SKU-1": [("A-01-01-1", 10)]})
    async with IntakeDesk(engine, TOPICS) as desk:
        first, again, other = await asyncio.gather(
            desk.submit(sub("k1", [("SKU-1", 2)])),
            desk.submit(sub("k1", [("SKU-1", 2)])),
            desk.submit(sub("k1", [("SKU-1", 3)], body="another body")),
            return_exceptions=True,
        )
    assert isinstance(first, IntakeResult) and first.created
    assert isinstance(again, IntakeResult) and not again.created
    assert again.order_id == first.order_id
    assert isinstance(other, IdempotencyConflict)
    async with IntakeDesk(engine, TOPICS) as desk:  # a later batch: a replay from the table
        later = await desk.submit(sub("k1", [("SKU-1", 2)]))
    assert not later.created and later.order_id == first.order_id
    async with IntakeDesk(engine, TOPICS) as desk:  # used before: the stored order answers
        mixed = await asyncio.gather(
            desk.submit(sub("k1", [("SKU-1", 3)], body="another body")),
            desk.submit(sub("k1", [("SKU-1", 2)])),
            return_exceptions=True,
        )
    assert isinstance(mixed[0], IdempotencyConflict)
    assert isinstance(mixed[1], IntakeResult) and mixed[1].order_id == first.order_id
    await reconcile(engine)  # the replay's units, taken with its batch, went back
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(orders)) == 1
        assert await conn.scalar(select(func.sum(stock.c.reserved))) == 2


async def test_a_bad_order_does_not_take_its_batch_down(pg_engine: AsyncEngine) -> None:
    """A value the database refuses (here a name longer than its column; the API's
    schema refuses it before) fails its batch; the batch is committed order by order."""
    await seed_catalogue(pg_engine, TOPICS, {"SKU-1": [("A-01-01-1", 10)]})
    async with IntakeDesk(pg_engine, TOPICS) as desk:
        outcomes = await asyncio.gather(
            *(desk.submit(sub(f"ok-{i}", [("SKU-1", 1)])) for i in range(5)),
            desk.submit(sub("bad", [("SKU-1", 1)], customer_name="x" * 300)),
            return_exceptions=True,
        )
        assert desk.stats.split_batches >= 1
    assert all(isinstance(o, IntakeResult) and o.state == "reserved" for o in outcomes[:5])
    assert isinstance(outcomes[5], Exception) and not isinstance(outcomes[5], IntakeResult)
    await reconcile(pg_engine)
    async with pg_engine.connect() as conn:
        assert await conn.scalar(select(func.sum(stock.c.reserved))) == 5


async def test_pg_take_chooses_piles_as_the_domain_rule(pg_engine: AsyncEngine) -> None:
    """The atomic take on PostgreSQL picks the same piles as ``take`` would, and takes
    everything when the demand exceeds the stock."""
    codes = [f"A-02-{b:02d}-1" for b in range(1, 6)]
    await seed_catalogue(pg_engine, TOPICS, {"TAKE-1": [(c, 0) for c in codes]})
    rng = random.Random(19)
    cases = [
        ([rng.randint(0, 12) for _ in range(rng.randint(1, 5))], rng.choice([1, 3, 7, 12, 40]))
        for _ in range(60)
    ]
    async with pg_engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        for piles, need in cases:
            tx = raw.transaction()
            await tx.start()
            try:
                await raw.executemany(
                    "INSERT INTO stock (sku, location, on_hand, reserved, updated_at)"
                    " VALUES ('TAKE-1', $1, $2, 0, now())",
                    list(zip(codes, piles, strict=False)),
                )
                _, held = await PgIntakeStore(raw).claim([], {"TAKE-1": need}, utcnow())
                got = sorted((a.location, a.available) for a in held.get("TAKE-1", []))
                expected = take(
                    min(need, sum(piles)),
                    [
                        Availability(c, q, 2 * 10_000 + b)
                        for b, (c, q) in enumerate(zip(codes, piles, strict=False), start=1)
                        if q > 0
                    ],
                )
                assert got == sorted(expected), (piles, need)
            finally:
                await tx.rollback()
