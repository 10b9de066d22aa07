"""Stock and reservations on the database: never oversell, never lose a unit.

A reservation is applied with one conditional update per location,
``reserved = reserved + q WHERE on_hand - reserved >= q``. PostgreSQL re-checks the
condition on the newest row version after waiting for a concurrent writer, and SQLite
serialises writers, so two orders can never both take the last unit. Stock in pick
faces (zone ``pick``) and in reserve locations (zone ``reserve``) is reservable; an
order holding reserve units waits for a replenishment move to bring them to a face
before it is released to the floor. Units elsewhere (returns, exception lanes) are
counted but not promised to customers. Re-plans on the floor (a short pick's rest, a
re-pick) take face stock only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wcs.domain.reservation import Availability, LineDemand, Plan, plan_reservation
from wcs.errors import Conflict, NotFound, ValidationFailed
from wcs.persistence.tables import (
    locations,
    order_lines,
    reservations,
    skus,
    stock,
    stock_moves,
)
from wcs.timeutil import utcnow

PICKABLE_ZONE = "pick"
RESERVE_ZONE = "reserve"
RESERVABLE_ZONES = (PICKABLE_ZONE, RESERVE_ZONE)
PLAN_ATTEMPTS = 5


# Every order runs these: built once (no per-call construction or cache key).
_AVAILABLE = (
    select(
        stock.c.sku,
        stock.c.location,
        (stock.c.on_hand - stock.c.reserved).label("available"),
        locations.c.aisle,
        locations.c.bay,
    )
    .join(locations, locations.c.code == stock.c.location)
    .where(
        and_(
            stock.c.sku.in_(bindparam("wanted", expanding=True)),
            stock.c.on_hand > stock.c.reserved,
            locations.c.zone.in_(bindparam("zones", expanding=True)),
        )
    )
)
TAKE = (
    update(stock)
    .where(
        and_(
            stock.c.sku == bindparam("b_sku"),
            stock.c.location == bindparam("b_location"),
            stock.c.on_hand - stock.c.reserved >= bindparam("b_qty"),
        )
    )
    .values(reserved=stock.c.reserved + bindparam("b_qty"), updated_at=bindparam("b_now"))
)
_INSERT_RESERVATIONS = insert(reservations)


async def availability(
    conn: AsyncConnection, skus: Iterable[str], zones: Sequence[str] = RESERVABLE_ZONES
) -> dict[str, list[Availability]]:
    wanted = sorted(set(skus))
    rows = await conn.execute(_AVAILABLE, {"wanted": wanted, "zones": list(zones)})
    result: dict[str, list[Availability]] = {sku: [] for sku in wanted}
    for row in rows:
        result[row.sku].append(
            Availability(row.location, int(row.available), row.aisle * 10_000 + row.bay)
        )
    return result


async def _apply(conn: AsyncConnection, order_id: str, plan: Plan, now: datetime) -> bool:
    for alloc in plan.allocations:
        result = await conn.execute(
            TAKE,
            {"b_sku": alloc.sku, "b_location": alloc.location, "b_qty": alloc.qty, "b_now": now},
        )
        if result.rowcount != 1:
            return False
    await conn.execute(
        _INSERT_RESERVATIONS,
        [
            {
                "order_id": order_id,
                "line_id": a.line_id,
                "sku": a.sku,
                "location": a.location,
                "qty": a.qty,
                "state": "active",
                "created_at": now,
            }
            for a in plan.allocations
        ],
    )
    return True


class ReservationContended(Conflict):
    """Other reservations kept taking the planned units; the caller may retry."""

    code = "reservation_contended"


async def reserve(
    conn: AsyncConnection,
    order_id: str,
    lines: Sequence[LineDemand],
    *,
    savepoints: bool = True,
    zones: Sequence[str] = RESERVABLE_ZONES,
) -> Plan:
    """Reserve every line or nothing. Returns the applied plan, or one with shortages.

    With ``savepoints`` a lost race is retried inside the caller's transaction. Without
    them (the intake's fast path: two round trips fewer) a lost race raises
    ReservationContended and the caller retries its whole transaction, which the
    failed conditional update has left untouched only if it rolls back.
    """
    now = utcnow()
    for _ in range(PLAN_ATTEMPTS):
        plan = plan_reservation(lines, await availability(conn, (ln.sku for ln in lines), zones))
        if not plan.complete:
            return plan
        if not savepoints:
            if await _apply(conn, order_id, plan, now):
                return plan
            break
        savepoint = await conn.begin_nested()
        if await _apply(conn, order_id, plan, now):
            await savepoint.commit()
            return plan
        # Someone took the units between our read and our write: read again.
        await savepoint.rollback()
    raise ReservationContended(
        f"order {order_id}: stock kept changing while reserving; try again", order_id=order_id
    )


async def order_demand(conn: AsyncConnection, order_id: str) -> list[LineDemand]:
    rows = await conn.execute(
        select(order_lines.c.id, order_lines.c.sku, order_lines.c.qty)
        .where(order_lines.c.order_id == order_id)
        .order_by(order_lines.c.line_no)
    )
    return [LineDemand(r.id, r.sku, r.qty) for r in rows]


async def release(conn: AsyncConnection, order_id: str, *, actor: str) -> int:
    """Give back an order's units: held units to available, picked units to their shelf."""
    now = utcnow()
    rows = (
        await conn.execute(
            select(
                reservations.c.id,
                reservations.c.sku,
                reservations.c.location,
                reservations.c.qty,
                reservations.c.state,
            ).where(
                and_(
                    reservations.c.order_id == order_id,
                    reservations.c.state.in_(("active", "picked")),
                )
            )
        )
    ).all()
    moves: list[dict[str, Any]] = []
    for row in rows:
        if row.state == "active":
            await conn.execute(
                update(stock)
                .where(and_(stock.c.sku == row.sku, stock.c.location == row.location))
                .values(reserved=stock.c.reserved - row.qty, updated_at=now)
            )
        else:  # already in a tote: back onto the shelf it came from
            await conn.execute(
                update(stock)
                .where(and_(stock.c.sku == row.sku, stock.c.location == row.location))
                .values(on_hand=stock.c.on_hand + row.qty, updated_at=now)
            )
            moves.append(
                {
                    "sku": row.sku,
                    "location": row.location,
                    "kind": "restock",
                    "qty": row.qty,
                    "order_id": order_id,
                    "actor": actor,
                    "at": now,
                }
            )
    if rows:
        await conn.execute(
            update(reservations)
            .where(reservations.c.id.in_([r.id for r in rows]))
            .values(state=case((reservations.c.state == "active", "released"), else_="restocked"))
        )
    if moves:
        await conn.execute(insert(stock_moves), moves)
    return sum(r.qty for r in rows)


async def receive(
    conn: AsyncConnection, sku: str, location: str, qty: int, *, actor: str
) -> dict[str, int]:
    """Add units at a location (goods receipt, replenishment). Returns the new pile."""
    if qty <= 0:
        raise ValidationFailed(f"receipt quantity must be > 0, got {qty}")
    now = utcnow()
    known = await conn.scalar(select(skus.c.sku).where(skus.c.sku == sku))
    if known is None:
        raise NotFound(f"SKU {sku!r} does not exist; create it with PUT /skus/{sku}")
    loc = await conn.scalar(select(locations.c.code).where(locations.c.code == location))
    if loc is None:
        raise NotFound(f"location {location!r} does not exist; create it with PUT /locations")
    result = await conn.execute(
        update(stock)
        .where(and_(stock.c.sku == sku, stock.c.location == location))
        .values(on_hand=stock.c.on_hand + qty, updated_at=now)
    )
    if result.rowcount == 0:
        await conn.execute(
            insert(stock).values(
                sku=sku, location=location, on_hand=qty, reserved=0, updated_at=now
            )
        )
    await conn.execute(
        insert(stock_moves).values(
            sku=sku, location=location, kind="receipt", qty=qty, actor=actor, at=now
        )
    )
    row = (
        await conn.execute(
            select(stock.c.on_hand, stock.c.reserved).where(
                and_(stock.c.sku == sku, stock.c.location == location)
            )
        )
    ).one()
    return {"on_hand": row.on_hand, "reserved": row.reserved}
