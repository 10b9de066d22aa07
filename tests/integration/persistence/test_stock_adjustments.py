"""Booked count differences and replenishment moves on the database, SQLite and
PostgreSQL (hypothesis).

Orders come in through intake (faces and reserve both promised), some are released
into batches (one of them possibly on the floor already), then a face is counted and
whatever the count finds is booked the way the owner books it. Properties:

- reserved never exceeds on hand: a difference that would leave fewer units than
  reserved first releases reservations of orders not being picked, and every such
  order is planned again: reserved in full elsewhere, or backordered holding nothing;
  an order on an active batch keeps its units (the count goes to review instead);
- every booked difference has exactly one audit row (pile, book, counted, who,
  when, why) and one ``stock_moves`` row of the same amount, and the SKU's units
  change by exactly that amount;
- a move conserves units and reservations between the reserve and the face.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from tests.conftest import _wipe
from tests.integration.persistence.helpers import new_order, seed_catalogue
from wcs.contract.topics import Topics
from wcs.domain.floor import counts
from wcs.domain.floor.counts import CountPolicy
from wcs.domain.floor.effects import Adjust, NewCount, SaveCount, Transfer
from wcs.domain.floor.machines import CountState
from wcs.domain.states import OrderState
from wcs.persistence import stockwork
from wcs.persistence.db import make_engine
from wcs.persistence.tables import (
    order_lines,
    orders,
    pick_batches,
    pick_tasks,
    reservations,
    stock,
    stock_adjustments,
    stock_moves,
)
from wcs.services.catalog import LocationData, upsert_location
from wcs.services.intake import Submission, commit_batch
from wcs.services.orders import receive_stock
from wcs.services.waves import release_wave
from wcs.timeutil import utcnow

TOPICS = Topics("wh1")
SKU = "P-1"
FACE, OTHER, RESERVE = "A-01-01-1", "A-01-02-1", "R-09-01-1"
POLICY = CountPolicy(recount_units=1, recount_pct=0.0)
WEEK = 7 * 24 * 3600


async def _seed(engine: Any, face: int, other: int, reserve: int) -> None:
    await seed_catalogue(engine, TOPICS, {SKU: [(FACE, face), (OTHER, other)]})
    await upsert_location(engine, LocationData(RESERVE, "reserve", 9, 1, 1))
    if reserve:
        await receive_stock(engine, TOPICS, SKU, RESERVE, reserve, actor="test")


async def _orders(engine: Any, quantities: list[int]) -> None:
    subs = [
        Submission(new_order(f"ext-{n}", [(SKU, q)]), f"key-{n}", f"hash-{n}", "prop")
        for n, q in enumerate(quantities)
    ]
    async with engine.connect() as conn:
        await commit_batch(conn, TOPICS, subs)


async def _snapshot(engine: Any) -> dict[str, Any]:
    async with engine.connect() as conn:
        piles = dict.fromkeys((FACE, OTHER, RESERVE), (0, 0))
        for r in await conn.execute(select(stock).where(stock.c.sku == SKU)):
            piles[r.location] = (int(r.on_hand), int(r.reserved))
        held: Counter[str] = Counter()
        per_order: Counter[str] = Counter()
        for r in await conn.execute(select(reservations).where(reservations.c.state == "active")):
            held[r.location] += int(r.qty)
            per_order[r.order_id] += int(r.qty)
        state = {r.id: r.state for r in await conn.execute(select(orders.c.id, orders.c.state))}
        demand = {
            r.order_id: int(r.qty)
            for r in await conn.execute(select(order_lines.c.order_id, order_lines.c.qty))
        }
    return {"piles": piles, "held": held, "per_order": per_order, "state": state, "demand": demand}


async def _run(url: str, face: int, other: int, reserve: int, quantities: list[int],
               release: int, on_floor: bool, found: int) -> None:  # fmt: skip
    engine = make_engine(url)
    try:
        await _wipe(engine)
        await _seed(engine, face, other, reserve)
        await _orders(engine, quantities)
        if release:
            from wcs.domain.waves import WavePolicy

            await release_wave(
                engine, TOPICS, None, actor="t", policy=WavePolicy(max_orders=release)
            )
        if on_floor:
            async with engine.begin() as conn:
                first = await conn.scalar(
                    select(pick_batches.c.id).order_by(pick_batches.c.id).limit(1)
                )
                if first is not None:
                    await conn.execute(
                        update(pick_batches)
                        .where(pick_batches.c.id == first)
                        .values(state="active")
                    )
        before = await _snapshot(engine)
        now = utcnow()
        async with engine.begin() as conn:
            (row,) = await stockwork.open_counts(
                conn, [NewCount(SKU, FACE, counts.ABC)], lambda _: "PK1", actor="t", now=now
            )
            count = stockwork.count_of(row)
            book = await stockwork.book(conn, SKU, FACE, now=now, alert_period=_week())
            count, effects = counts.judge(count, found, "ann", book, POLICY)
            if count.state == CountState.RECOUNT:  # confirmed by a second counter
                count, effects = counts.judge(count, found, "bob", book, POLICY)
            booked = [e for e in effects if isinstance(e, Adjust)]
            for effect in effects:
                if isinstance(effect, SaveCount):
                    await stockwork.save_count(conn, effect, now)
            replanned = [
                await stockwork.adjust(conn, TOPICS, e, actor="t", now=now) for e in booked
            ]
        after = await _snapshot(engine)
        await _check(engine, before, after, booked, replanned, found, count.state)
    finally:
        await engine.dispose()


def _week() -> Any:
    from datetime import timedelta

    return timedelta(seconds=WEEK)


async def _check(
    engine: Any,
    before: dict[str, Any],
    after: dict[str, Any],
    booked: list[Adjust],
    replanned: list[list[str]],
    found: int,
    final: CountState,
) -> None:
    # The books agree with the reservations, and never promise more than they hold.
    for location, (on_hand, reserved) in after["piles"].items():
        assert 0 <= reserved <= on_hand, location
        assert reserved == after["held"][location], location
    units_before = sum(p[0] for p in before["piles"].values())
    units_after = sum(p[0] for p in after["piles"].values())
    delta = sum(b.delta for b in booked)
    assert units_after == units_before + delta
    if booked:
        assert after["piles"][FACE][0] == found
    else:
        assert final in (CountState.DONE, CountState.REVIEW)
        assert after["piles"] == before["piles"]
    # Every order holds all its units, or is backordered holding none.
    for order_id, state in after["state"].items():
        if state == OrderState.BACKORDERED:
            assert after["per_order"][order_id] == 0
        elif state in (OrderState.RESERVED, OrderState.PICK_PLANNED):
            assert after["per_order"][order_id] == after["demand"][order_id], order_id
    moved = {o for o, s in after["state"].items() if s != before["state"][o]}
    # Units found fill backorders; units missing move the orders planned again.
    filled = {
        o
        for o in moved
        if (before["state"][o], after["state"][o]) == (OrderState.BACKORDERED, OrderState.RESERVED)
    }
    assert not filled or delta > 0
    assert moved - filled <= {o for r in replanned for o in r}
    async with engine.connect() as conn:
        # Orders on an active batch kept their reservations and their state.
        active = set(
            (
                await conn.scalars(
                    select(pick_tasks.c.order_id)
                    .join(pick_batches, pick_batches.c.id == pick_tasks.c.batch_id)
                    .where(pick_batches.c.state == "active")
                )
            ).all()
        )
        assert not (active & moved)
        # Orders that left a batch left it whole: no open task of theirs remains.
        left = [o for o in moved if after["state"][o] != OrderState.PICK_PLANNED]
        if left:
            open_tasks = await conn.scalar(
                select(func.count())
                .select_from(pick_tasks)
                .where(pick_tasks.c.order_id.in_(left), pick_tasks.c.state == "open")
            )
            assert open_tasks == 0
        # One audit row and one ledger row per booked difference, of the same amount.
        audit = (await conn.execute(select(stock_adjustments))).all()
        ledger = (
            await conn.execute(select(stock_moves).where(stock_moves.c.kind == "count"))
        ).all()
    assert len(audit) == len(booked) == len(ledger)
    for row, b in zip(audit, booked, strict=True):
        assert (row.sku, row.location, row.delta, row.book, row.counted) == (
            b.sku, b.location, b.delta, b.book, b.counted,
        )  # fmt: skip
        assert row.counted_by and row.accepted_by and row.at is not None and row.reason
        assert sorted(row.replanned) == sorted(set(replanned[0]))
    assert [(r.location, r.qty) for r in ledger] == [(b.location, b.delta) for b in booked]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    face=st.integers(0, 10),
    other=st.integers(0, 4),
    reserve=st.integers(0, 12),
    quantities=st.lists(st.integers(1, 4), min_size=1, max_size=6),
    release=st.integers(0, 4),
    on_floor=st.booleans(),
    found=st.integers(0, 12),
)
def test_a_booked_count_never_strands_reservations_and_is_audited(
    db_url: str,
    face: int,
    other: int,
    reserve: int,
    quantities: list[int],
    release: int,
    on_floor: bool,
    found: int,
) -> None:
    asyncio.run(_run(db_url, face, other, reserve, quantities, release, on_floor, found))


async def _move(url: str, face: int, reserve: int, quantities: list[int], moved: int) -> None:
    engine = make_engine(url)
    try:
        await _wipe(engine)
        await _seed(engine, face, 0, reserve)
        await _orders(engine, quantities)
        before = await _snapshot(engine)
        now = utcnow()
        async with engine.begin() as conn:
            booked = await stockwork.transfer(
                conn, Transfer(1, SKU, RESERVE, FACE, moved), actor="t", now=now
            )
        after = await _snapshot(engine)
        bp, ap = before["piles"], after["piles"]
        # Units and reservations leave the reserve exactly as they arrive at the face.
        assert ap[RESERVE][0] - bp[RESERVE][0] == -booked == bp[FACE][0] - ap[FACE][0]
        assert ap[RESERVE][1] + ap[FACE][1] == bp[RESERVE][1] + bp[FACE][1]
        assert 0 <= booked <= moved
        for location, (on_hand, reserved) in ap.items():
            assert 0 <= reserved <= on_hand
            assert reserved == after["held"][location]
        # Each order still holds exactly its units, wherever they are now.
        assert after["per_order"] == before["per_order"]
        async with engine.connect() as conn:
            ledger = defaultdict(int)
            for r in await conn.execute(
                select(stock_moves).where(stock_moves.c.kind.like("move%"))
            ):
                ledger[r.location] += r.qty
        assert dict(ledger) == ({RESERVE: -booked, FACE: booked} if booked else {})
    finally:
        await engine.dispose()


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    face=st.integers(0, 4),
    reserve=st.integers(0, 15),
    quantities=st.lists(st.integers(1, 4), min_size=1, max_size=5),
    moved=st.integers(0, 20),
)
def test_every_unit_moved_is_conserved_between_locations(
    db_url: str, face: int, reserve: int, quantities: list[int], moved: int
) -> None:
    asyncio.run(_move(db_url, face, reserve, quantities, moved))
