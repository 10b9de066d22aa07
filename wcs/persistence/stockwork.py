"""Counts, adjustments and replenishment moves on the database.

The rules live in ``wcs.domain.floor.counts`` and ``wcs.domain.floor.replenish``;
this module reads the facts they need (a pile's book with its reservations, a
station's faces and reserve) and writes what they decided, in the caller's
transaction: count and move rows, booked differences with their audit row and the
orders planned again, units moved with the reservations that go with them. Stock is
shared with intake: it moves by relative amounts, and every change is a
``stock_moves`` row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wcs.contract.topics import Topics
from wcs.domain.floor import counts, replenish
from wcs.domain.floor.counts import Book, Count, Held
from wcs.domain.floor.effects import Adjust, NewCount, NewMove, SaveCount, SaveMove, Transfer
from wcs.domain.floor.machines import BatchState, CountState, MoveState, TaskState
from wcs.domain.reservation import LineDemand
from wcs.domain.states import OrderState
from wcs.persistence import inventory
from wcs.persistence.orders import transition
from wcs.persistence.tables import (
    count_tasks,
    locations,
    move_tasks,
    orders,
    pick_batches,
    pick_faces,
    pick_tasks,
    replenishment_requests,
    reservations,
    skus,
    stock,
    stock_adjustments,
    stock_moves,
)

OPEN_COUNTS = tuple(str(s) for s in counts.OPEN_STATES)
OPEN_MOVES = (MoveState.OPEN, MoveState.ACTIVE)
CLOSED = (CountState.DONE, CountState.CANCELLED, MoveState.DONE, MoveState.SHORT)


def count_of(row: Any, slot: tuple[str, int] | None = None) -> Count:
    panel, number = slot if slot is not None else (None, None)
    return Count(
        id=int(row.id),
        sku=row.sku,
        location=row.location,
        reason=row.reason,
        state=CountState(row.state),
        first_delta=row.first_delta,
        first_by=row.first_by,
        last_delta=row.last_delta,
        last_by=row.last_by,
        note=row.note,
        panel=panel,
        slot=number,
    )


def move_of(row: Any, slot: tuple[str, int] | None = None) -> replenish.Move:
    panel, number = slot if slot is not None else (None, None)
    return replenish.Move(
        id=int(row.id),
        sku=row.sku,
        src=row.src,
        dst=row.dst,
        qty=int(row.qty),
        reason=row.reason,
        state=MoveState(row.state),
        moved=int(row.moved),
        panel=panel,
        slot=number,
    )


# --- opening work ---------------------------------------------------------------------


async def open_counts(
    conn: AsyncConnection,
    new: Sequence[NewCount],
    station_of: Callable[[str], str],
    *,
    actor: str,
    now: datetime,
) -> list[Any]:
    """Insert the counts asked for, except for piles that have an open count already;
    the rows inserted."""
    created: list[Any] = []
    for ask in new:
        busy = await conn.scalar(
            select(count_tasks.c.id)
            .where(
                and_(
                    count_tasks.c.sku == ask.sku,
                    count_tasks.c.location == ask.location,
                    count_tasks.c.state.in_(OPEN_COUNTS),
                )
            )
            .limit(1)
        )
        if busy is not None:
            continue
        row = (
            await conn.execute(
                insert(count_tasks)
                .values(
                    sku=ask.sku,
                    location=ask.location,
                    station=station_of(ask.location),
                    reason=ask.reason,
                    state=CountState.OPEN,
                    created_by=actor,
                    created_at=now,
                    updated_at=now,
                )
                .returning(*count_tasks.c)
            )
        ).one()
        created.append(row)
    return created


async def open_moves(
    conn: AsyncConnection, new: Sequence[NewMove], station: str, *, now: datetime
) -> list[Any]:
    created: list[Any] = []
    for ask in new:
        row = (
            await conn.execute(
                insert(move_tasks)
                .values(
                    sku=ask.sku,
                    src=ask.src,
                    dst=ask.dst,
                    qty=ask.qty,
                    moved=0,
                    reason=ask.reason,
                    state=MoveState.OPEN,
                    station=station,
                    created_at=now,
                    updated_at=now,
                )
                .returning(*move_tasks.c)
            )
        ).one()
        created.append(row)
    return created


async def save_count(conn: AsyncConnection, save: SaveCount, now: datetime) -> None:
    values: dict[str, Any] = {
        "state": save.state,
        "first_delta": save.first_delta,
        "first_by": save.first_by,
        "last_delta": save.last_delta,
        "last_by": save.last_by,
        "result": save.result,
        "note": save.note,
        "updated_at": now,
    }
    if save.counted is not None:
        values["counted"] = save.counted
    if save.state in CLOSED:
        values["closed_at"] = now
    await conn.execute(update(count_tasks).where(count_tasks.c.id == save.count_id).values(values))


async def save_move(conn: AsyncConnection, save: SaveMove, now: datetime) -> None:
    values: dict[str, Any] = {"state": save.state, "moved": save.moved, "updated_at": now}
    if save.state in CLOSED:
        values["done_at"] = now
    await conn.execute(update(move_tasks).where(move_tasks.c.id == save.move_id).values(values))


async def load_count(conn: AsyncConnection, count_id: int) -> tuple[Count, str] | None:
    row = (await conn.execute(select(count_tasks).where(count_tasks.c.id == count_id))).first()
    return None if row is None else (count_of(row), str(row.station))


# --- a pile's book --------------------------------------------------------------------


async def book(
    conn: AsyncConnection, sku: str, location: str, *, now: datetime, alert_period: timedelta
) -> Book:
    """The pile as the books have it, with the reservations held there (oldest first;
    movable unless their order is on an active batch) and its recent adjustments."""
    pile = (
        await conn.execute(
            select(stock.c.on_hand, stock.c.reserved).where(
                and_(stock.c.sku == sku, stock.c.location == location)
            )
        )
    ).first()
    rows = (
        await conn.execute(
            select(reservations.c.id, reservations.c.order_id, reservations.c.qty, orders.c.state)
            .join(orders, orders.c.id == reservations.c.order_id)
            .where(
                and_(
                    reservations.c.sku == sku,
                    reservations.c.location == location,
                    reservations.c.state == "active",
                )
            )
            .order_by(reservations.c.created_at, reservations.c.id)
        )
    ).all()
    picking = set(
        (
            await conn.scalars(
                select(pick_tasks.c.order_id)
                .join(pick_batches, pick_batches.c.id == pick_tasks.c.batch_id)
                .where(
                    and_(
                        pick_tasks.c.order_id.in_({r.order_id for r in rows}),
                        pick_tasks.c.state.in_((TaskState.OPEN, TaskState.LIT)),
                        pick_batches.c.state == BatchState.ACTIVE,
                    )
                )
            )
        ).all()
    )
    movable_states = (OrderState.RESERVED, OrderState.PICK_PLANNED)
    held = tuple(
        Held(
            int(r.id),
            str(r.order_id),
            int(r.qty),
            r.state in movable_states and r.order_id not in picking,
        )
        for r in rows
    )
    value = await conn.scalar(select(skus.c.price_minor).where(skus.c.sku == sku))
    recent = await conn.scalar(
        select(func.count())
        .select_from(stock_adjustments)
        .where(
            and_(
                stock_adjustments.c.sku == sku,
                stock_adjustments.c.location == location,
                stock_adjustments.c.at >= now - alert_period,
            )
        )
    )
    return Book(
        int(pile.on_hand) if pile else 0,
        int(pile.reserved) if pile else 0,
        held,
        int(value) if value is not None else None,
        int(recent or 0),
    )


# --- booking a difference -------------------------------------------------------------


async def adjust(
    conn: AsyncConnection, topics: Topics, booked: Adjust, *, actor: str, now: datetime
) -> list[str]:
    """Book a counted difference with its audit row; the reservations it releases are
    released first and their orders planned again. Returns those orders."""
    released = (
        await conn.execute(
            select(reservations, orders.c.state.label("order_state"))
            .join(orders, orders.c.id == reservations.c.order_id)
            .where(
                and_(
                    reservations.c.id.in_(booked.release),
                    reservations.c.state == "active",
                )
            )
        )
    ).all()
    reason = f"a count at {booked.location} found fewer {booked.sku} than reserved"
    by_order: dict[str, list[Any]] = defaultdict(list)
    for row in released:
        by_order[row.order_id].append(row)
    for order_id, rows in by_order.items():
        if rows[0].order_state == OrderState.PICK_PLANNED:
            await _leave_batch(conn, topics, order_id, reason, actor=actor, now=now)
    if released:
        await conn.execute(
            update(stock)
            .where(and_(stock.c.sku == booked.sku, stock.c.location == booked.location))
            .values(reserved=stock.c.reserved - sum(r.qty for r in released), updated_at=now)
        )
        await conn.execute(
            update(reservations)
            .where(reservations.c.id.in_([r.id for r in released]))
            .values(state="released")
        )
    await _book_units(conn, booked, now)
    await conn.execute(
        insert(stock_moves).values(
            sku=booked.sku,
            location=booked.location,
            kind="count",
            qty=booked.delta,
            order_id=None,
            actor=booked.accepted_by[:64],
            at=now,
        )
    )
    await conn.execute(
        insert(stock_adjustments).values(
            count_id=booked.count_id,
            sku=booked.sku,
            location=booked.location,
            book=booked.book,
            counted=booked.counted,
            delta=booked.delta,
            value_minor=booked.value_minor,
            reason=booked.reason,
            counted_by=booked.counted_by[:64],
            accepted_by=booked.accepted_by[:64],
            replanned=sorted(by_order),
            at=now,
        )
    )
    for order_id, rows in by_order.items():
        await _plan_again(conn, topics, order_id, rows, reason, actor=actor, now=now)
    if booked.delta > 0:
        from wcs.services.orders import fill_backorders

        await fill_backorders(conn, topics, booked.sku, actor=actor, at=now)
    return sorted(by_order)


async def _book_units(conn: AsyncConnection, booked: Adjust, now: datetime) -> None:
    result = await conn.execute(
        update(stock)
        .where(and_(stock.c.sku == booked.sku, stock.c.location == booked.location))
        .values(on_hand=stock.c.on_hand + booked.delta, updated_at=now)
    )
    if result.rowcount == 0:
        if booked.delta < 0:
            raise ValueError(f"no stock of {booked.sku} at {booked.location} to take from")
        await conn.execute(
            insert(stock).values(
                sku=booked.sku,
                location=booked.location,
                on_hand=booked.delta,
                reserved=0,
                updated_at=now,
            )
        )


async def _leave_batch(
    conn: AsyncConnection, topics: Topics, order_id: str, reason: str, *, actor: str, now: datetime
) -> None:
    """An order released but not begun leaves its (not yet active) batch."""
    waiting = select(pick_batches.c.id).where(pick_batches.c.state == BatchState.OPEN)
    await conn.execute(
        update(pick_tasks)
        .where(
            and_(
                pick_tasks.c.order_id == order_id,
                pick_tasks.c.state == TaskState.OPEN,
                pick_tasks.c.batch_id.in_(waiting),
            )
        )
        .values(state=TaskState.CANCELLED, updated_at=now)
    )
    await transition(
        conn,
        topics,
        order_id,
        OrderState.RESERVED,
        actor=actor,
        reason=reason,
        at=now,
        expect=OrderState.PICK_PLANNED,
    )


async def _plan_again(
    conn: AsyncConnection,
    topics: Topics,
    order_id: str,
    rows: Sequence[Any],
    reason: str,
    *,
    actor: str,
    now: datetime,
) -> None:
    """The released units reserved elsewhere, or the order backordered."""
    per_line: dict[tuple[int, str], int] = defaultdict(int)
    for row in rows:
        per_line[(int(row.line_id), str(row.sku))] += int(row.qty)
    lines = [LineDemand(line, sku, qty) for (line, sku), qty in sorted(per_line.items())]
    plan = await inventory.reserve(conn, order_id, lines)
    if plan.complete:
        return
    await inventory.release(conn, order_id, actor=actor)
    await transition(
        conn,
        topics,
        order_id,
        OrderState.BACKORDERED,
        actor=actor,
        reason=f"{reason}, and none elsewhere",
        at=now,
    )
    await conn.execute(
        insert(replenishment_requests),
        [
            {
                "sku": s.sku,
                "qty": s.missing,
                "order_id": order_id,
                "state": "open",
                "created_at": now,
            }
            for s in plan.shortages
        ],
    )


# --- moving units ---------------------------------------------------------------------


async def transfer(conn: AsyncConnection, moved: Transfer, *, actor: str, now: datetime) -> int:
    """Units from a reserve pile to a face, with the waiting orders' reservations
    (``replenish.carry``); returns the units booked."""
    src = (
        await conn.execute(
            select(stock.c.on_hand, stock.c.reserved).where(
                and_(stock.c.sku == moved.sku, stock.c.location == moved.src)
            )
        )
    ).first()
    if src is None:
        return 0
    held = [
        (int(r.id), int(r.qty))
        for r in await conn.execute(
            select(reservations.c.id, reservations.c.qty)
            .join(orders, orders.c.id == reservations.c.order_id)
            .where(
                and_(
                    reservations.c.sku == moved.sku,
                    reservations.c.location == moved.src,
                    reservations.c.state == "active",
                    orders.c.state == OrderState.RESERVED,
                )
            )
            .order_by(reservations.c.created_at, reservations.c.id)
        )
    ]
    plan = replenish.carry(moved.qty, held, int(src.on_hand), int(src.reserved))
    if plan.booked <= 0:
        return 0
    carried = sum(q for _, q in plan.reservations)
    for location, units, promised in (
        (moved.src, -plan.booked, -carried),
        (moved.dst, plan.booked, carried),
    ):
        result = await conn.execute(
            update(stock)
            .where(and_(stock.c.sku == moved.sku, stock.c.location == location))
            .values(
                on_hand=stock.c.on_hand + units,
                reserved=stock.c.reserved + promised,
                updated_at=now,
            )
        )
        if result.rowcount == 0:
            await conn.execute(
                insert(stock).values(
                    sku=moved.sku,
                    location=location,
                    on_hand=units,
                    reserved=promised,
                    updated_at=now,
                )
            )
    whole = dict(held)
    for rid, qty in plan.reservations:
        if qty == whole[rid]:
            await conn.execute(
                update(reservations).where(reservations.c.id == rid).values(location=moved.dst)
            )
            continue
        # Split: the carried part goes to the face as a reservation of its own.
        row = (await conn.execute(select(reservations).where(reservations.c.id == rid))).one()
        await conn.execute(
            update(reservations).where(reservations.c.id == rid).values(qty=row.qty - qty)
        )
        await conn.execute(
            insert(reservations).values(
                order_id=row.order_id,
                line_id=row.line_id,
                sku=row.sku,
                location=moved.dst,
                qty=qty,
                state="active",
                created_at=row.created_at,
            )
        )
    await conn.execute(
        insert(stock_moves),
        [
            {
                "sku": moved.sku,
                "location": moved.src,
                "kind": "move_out",
                "qty": -plan.booked,
                "order_id": None,
                "actor": actor,
                "at": now,
            },
            {
                "sku": moved.sku,
                "location": moved.dst,
                "kind": "move_in",
                "qty": plan.booked,
                "order_id": None,
                "actor": actor,
                "at": now,
            },
        ],
    )
    return plan.booked


# --- a pick station's facts between batches -------------------------------------------


@dataclass(frozen=True)
class StationFacts:
    faces: tuple[replenish.Face, ...]
    reserves: dict[str, tuple[replenish.Reserve, ...]]
    waiting: dict[str, int]
    piles: tuple[counts.Pile, ...]
    picked: dict[str, int]
    counts: list[Any]  # open count rows (state open) of the station
    moves: list[Any]  # open and active move rows of the station


async def station_facts(
    conn: AsyncConnection,
    station: str,
    locations_here: Iterable[str],
    *,
    now: datetime,
    period: timedelta,
) -> StationFacts:
    """What a pick station's stock work needs between batches."""
    here = sorted(set(locations_here))
    face_rows = (
        await conn.execute(
            select(
                pick_faces,
                func.coalesce(stock.c.on_hand, 0).label("on_hand"),
                func.coalesce(stock.c.reserved, 0).label("reserved"),
            )
            .outerjoin(
                stock,
                and_(stock.c.location == pick_faces.c.location, stock.c.sku == pick_faces.c.sku),
            )
            .where(pick_faces.c.location.in_(here))
            .order_by(pick_faces.c.location)
        )
    ).all()
    face_skus = sorted({r.sku for r in face_rows})
    primary = {
        r.sku: r.location
        for r in reversed(
            (
                await conn.execute(
                    select(pick_faces.c.sku, pick_faces.c.location)
                    .where(pick_faces.c.sku.in_(face_skus))
                    .order_by(pick_faces.c.location)
                )
            ).all()
        )
    }
    moves = (
        await conn.execute(
            select(move_tasks)
            .where(and_(move_tasks.c.sku.in_(face_skus), move_tasks.c.state.in_(OPEN_MOVES)))
            .order_by(move_tasks.c.id)
        )
    ).all()
    incoming: dict[str, int] = defaultdict(int)
    outgoing: dict[tuple[str, str], int] = defaultdict(int)
    on_way: dict[str, int] = defaultdict(int)
    for m in moves:
        left = int(m.qty) - int(m.moved)
        incoming[m.dst] += left
        outgoing[(m.sku, m.src)] += left
        on_way[m.sku] += left
    reserve_rows = (
        await conn.execute(
            select(stock.c.sku, stock.c.location, stock.c.on_hand, stock.c.reserved)
            .join(locations, locations.c.code == stock.c.location)
            .where(and_(stock.c.sku.in_(face_skus), locations.c.zone == inventory.RESERVE_ZONE))
            .order_by(stock.c.location)
        )
    ).all()
    held_rows = (
        await conn.execute(
            select(reservations.c.sku, reservations.c.location, func.sum(reservations.c.qty))
            .join(orders, orders.c.id == reservations.c.order_id)
            .join(locations, locations.c.code == reservations.c.location)
            .where(
                and_(
                    reservations.c.sku.in_(face_skus),
                    reservations.c.state == "active",
                    orders.c.state == OrderState.RESERVED,
                    locations.c.zone == inventory.RESERVE_ZONE,
                )
            )
            .group_by(reservations.c.sku, reservations.c.location)
        )
    ).all()
    held = {(r[0], r[1]): int(r[2]) for r in held_rows}
    reserves: dict[str, list[replenish.Reserve]] = defaultdict(list)
    for r in reserve_rows:
        reserves[r.sku].append(
            replenish.Reserve(
                r.location,
                int(r.on_hand),
                int(r.reserved),
                held.get((r.sku, r.location), 0),
                outgoing.get((r.sku, r.location), 0),
            )
        )
    waiting: dict[str, int] = {}
    for sku in face_skus:
        total = sum(q for (s, _), q in held.items() if s == sku)
        waiting[sku] = max(0, total - on_way[sku])
    faces = tuple(
        replenish.Face(
            r.location,
            r.sku,
            int(r.min_qty),
            int(r.max_qty),
            int(r.on_hand),
            int(r.reserved),
            incoming.get(r.location, 0),
            primary.get(r.sku) == r.location,
        )
        for r in face_rows
    )
    piles_here = await piles(conn, here)
    picked = await picked_since(conn, now - period)
    open_counts_ = (
        await conn.execute(
            select(count_tasks)
            .where(and_(count_tasks.c.station == station, count_tasks.c.state == CountState.OPEN))
            .order_by(
                case((count_tasks.c.reason == counts.ABC, 1), else_=0),
                count_tasks.c.id,
            )
        )
    ).all()
    own_moves = (
        await conn.execute(
            select(move_tasks)
            .where(and_(move_tasks.c.station == station, move_tasks.c.state.in_(OPEN_MOVES)))
            .order_by(move_tasks.c.id)
        )
    ).all()
    return StationFacts(
        faces,
        {sku: tuple(r) for sku, r in reserves.items()},
        waiting,
        piles_here,
        picked,
        list(open_counts_),
        list(own_moves),
    )


async def piles(
    conn: AsyncConnection, here: Sequence[str], *, stocked_only: bool = False
) -> tuple[counts.Pile, ...]:
    """The piles at these locations, each with its last count (closed, or still
    open), else its first stock movement, else its last change: the ABC schedule's
    clock."""
    where: ColumnElement[bool] = stock.c.location.in_(here)
    if stocked_only:
        where = and_(where, stock.c.on_hand > 0)
    pile_rows = (
        await conn.execute(
            select(stock.c.sku, stock.c.location, stock.c.on_hand, stock.c.updated_at).where(where)
        )
    ).all()
    last = {
        (r.sku, r.location): r.at
        for r in await conn.execute(
            select(
                count_tasks.c.sku,
                count_tasks.c.location,
                func.max(func.coalesce(count_tasks.c.closed_at, count_tasks.c.created_at)).label(
                    "at"
                ),
            )
            .where(
                and_(
                    count_tasks.c.location.in_(here),
                    or_(
                        count_tasks.c.state == CountState.DONE, count_tasks.c.state.in_(OPEN_COUNTS)
                    ),
                )
            )
            .group_by(count_tasks.c.sku, count_tasks.c.location)
        )
    }
    set_up = {
        (r.sku, r.location): r.at
        for r in await conn.execute(
            select(
                stock_moves.c.sku, stock_moves.c.location, func.min(stock_moves.c.at).label("at")
            )
            .where(stock_moves.c.location.in_(here))
            .group_by(stock_moves.c.sku, stock_moves.c.location)
        )
    }
    return tuple(
        counts.Pile(
            r.sku,
            r.location,
            _aware(
                last.get((r.sku, r.location)) or set_up.get((r.sku, r.location)) or r.updated_at
            ),
            int(r.on_hand),
        )
        for r in pile_rows
    )


async def picked_since(conn: AsyncConnection, since: datetime) -> dict[str, int]:
    """Units picked per SKU since then (the ABC classes)."""
    return {
        str(sku): -int(n)
        for sku, n in await conn.execute(
            select(stock_moves.c.sku, func.sum(stock_moves.c.qty))
            .where(and_(stock_moves.c.kind == "pick", stock_moves.c.at >= since))
            .group_by(stock_moves.c.sku)
        )
    }


async def stocked_locations(conn: AsyncConnection, zones: Sequence[str]) -> list[str]:
    """Locations of these zones holding units on the books."""
    return list(
        (
            await conn.scalars(
                select(stock.c.location)
                .join(locations, locations.c.code == stock.c.location)
                .where(and_(locations.c.zone.in_(zones), stock.c.on_hand > 0))
                .distinct()
                .order_by(stock.c.location)
            )
        ).all()
    )


def _aware(at: datetime) -> datetime:
    from wcs.timeutil import as_utc

    return as_utc(at)
