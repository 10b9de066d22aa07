"""Order cancellation and stock receipts (design §1 step 2); intake lives in
``wcs.services.intake`` and is re-exported here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.contract.payloads import ClearCommand
from wcs.contract.topics import Topics
from wcs.domain.orders import OrderEvent
from wcs.domain.states import OrderState
from wcs.ids import new_id
from wcs.persistence import inventory
from wcs.persistence.db import transaction
from wcs.persistence.orders import close_alerts_about, transition
from wcs.persistence.outbox import enqueue, message
from wcs.persistence.tables import (
    order_lines,
    orders,
    pick_tasks,
    replenishment_requests,
    totes,
)
from wcs.services.intake import IntakeResult, NewOrder, submit_order
from wcs.timeutil import utcnow

__all__ = [
    "IntakeResult",
    "NewOrder",
    "cancel_order",
    "fill_backorders",
    "receive_stock",
    "submit_order",
]


async def cancel_order(
    engine: AsyncEngine, topics: Topics, order_id: str, *, actor: str, reason: str | None
) -> OrderEvent:
    """Cancel before shipping; reservations are released in the same transaction."""
    async with transaction(engine) as conn:
        return await cancel_in(conn, topics, order_id, actor=actor, reason=reason)


async def cancel_in(
    conn: AsyncConnection, topics: Topics, order_id: str, *, actor: str, reason: str | None
) -> OrderEvent:
    """Cancel inside the caller's transaction (an order at no station, or the owner of
    the station the order is at, after it took the order's tasks off its floor)."""
    event = await transition(
        conn, topics, order_id, OrderState.CANCELLED, actor=actor, reason=reason or "cancelled"
    )
    await inventory.release(conn, order_id, actor=actor)
    await _stop_picking(conn, topics, order_id)
    await conn.execute(
        update(replenishment_requests)
        .where(
            and_(
                replenishment_requests.c.order_id == order_id,
                replenishment_requests.c.state == "open",
            )
        )
        .values(state="cancelled")
    )
    # Whatever was wrong with the order ended with it.
    await close_alerts_about(conn, order_id, resolved_by=f"order cancelled by {actor}")
    return event


async def _stop_picking(conn: AsyncConnection, topics: Topics, order_id: str) -> None:
    """A cancelled order's open pick tasks end here, in the cancelling transaction.

    Left lit, a picker would keep picking for it and the finished task would take its
    units off ``reserved`` a second time. Lit slots are switched off through the
    outbox; the station's controller lights its next stop on its next round. A tote
    already holding units goes to the exception lane to be emptied back to the shelf.
    """
    tasks = (
        await conn.execute(
            select(
                pick_tasks.c.id, pick_tasks.c.state, pick_tasks.c.ptl_device, pick_tasks.c.ptl_slot
            ).where(
                and_(pick_tasks.c.order_id == order_id, pick_tasks.c.state.in_(("open", "lit")))
            )
        )
    ).all()
    if tasks:
        now = utcnow()
        await conn.execute(
            update(pick_tasks)
            .where(pick_tasks.c.id.in_([t.id for t in tasks]))
            .values(state="cancelled", updated_at=now)
        )
        await enqueue(
            conn,
            [
                message(
                    topics.dev_cmd(t.ptl_device, "clear"),
                    ClearCommand(cmd_id=new_id("c"), ts=now, slot=t.ptl_slot),
                )
                for t in tasks
                if t.state == "lit" and t.ptl_device and t.ptl_slot is not None
            ],
        )
    await conn.execute(
        update(totes)
        .where(and_(totes.c.order_id == order_id, totes.c.state != "free"))
        .values(state="exception", updated_at=utcnow())
    )


async def receive_stock(
    engine: AsyncEngine, topics: Topics, sku: str, location: str, qty: int, *, actor: str
) -> tuple[dict[str, int], list[str]]:
    """Book a receipt, then reserve for backordered orders of that SKU, oldest first."""
    async with transaction(engine) as conn:
        pile = await inventory.receive(conn, sku, location, qty, actor=actor)
        reserved = await fill_backorders(conn, topics, sku, actor=actor)
        return pile, reserved


async def fill_backorders(
    conn: AsyncConnection, topics: Topics, sku: str, *, actor: str, at: datetime | None = None
) -> list[str]:
    waiting = (
        await conn.scalars(
            select(orders.c.id)
            .where(
                and_(
                    orders.c.state == OrderState.BACKORDERED,
                    orders.c.id.in_(select(order_lines.c.order_id).where(order_lines.c.sku == sku)),
                )
            )
            .order_by(orders.c.created_at, orders.c.id)
            .with_for_update(skip_locked=True)
        )
    ).all()
    done: list[str] = []
    for order_id in waiting:
        plan = await inventory.reserve(conn, order_id, await inventory.order_demand(conn, order_id))
        if not plan.complete:
            continue  # stays backordered; later orders may still fit (smaller lines)
        await transition(
            conn, topics, order_id, OrderState.RESERVED, actor=actor, reason="stock arrived", at=at
        )
        await conn.execute(
            update(replenishment_requests)
            .where(
                and_(
                    replenishment_requests.c.order_id == order_id,
                    replenishment_requests.c.state == "open",
                )
            )
            .values(state="fulfilled", fulfilled_at=utcnow())
        )
        done.append(order_id)
    return done
