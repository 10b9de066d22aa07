"""Order intake, cancellation and stock receipts (design §1 steps 1-2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.contract.payloads import ClearCommand
from wcs.contract.topics import Topics
from wcs.domain import orders as domain
from wcs.domain.intake import IntakeLine, IntakeOrder, check_order
from wcs.domain.orders import OrderEvent
from wcs.domain.reservation import LineDemand
from wcs.domain.states import OrderState
from wcs.errors import IdempotencyConflict
from wcs.ids import new_id
from wcs.persistence import inventory
from wcs.persistence.db import transaction
from wcs.persistence.orders import raise_alert, record_events, transition
from wcs.persistence.outbox import enqueue, message
from wcs.persistence.tables import (
    order_lines,
    orders,
    pick_tasks,
    replenishment_requests,
    skus,
    totes,
)
from wcs.services.order_views import shape_order
from wcs.timeutil import utcnow

# Promised ship-by time per service level, counted from intake.
SLA = {
    "same_day": timedelta(hours=4),
    "express": timedelta(hours=12),
    "standard": timedelta(hours=48),
}


@dataclass(frozen=True)
class NewOrder:
    external_id: str
    customer_name: str
    phone: str | None
    email: str | None
    line1: str
    line2: str | None
    city: str
    postal_code: str
    country: str
    lines: Sequence[tuple[str, int]]
    priority: int = 0
    service: str = "standard"
    lat: float | None = None
    lon: float | None = None
    customer_ref: str | None = None
    linked_order_id: str | None = None


@dataclass
class IntakeResult:
    order_id: str
    state: str
    created: bool
    problems: list[str] = field(default_factory=list)
    order: dict[str, Any] | None = None  # the new order's API view (not for replays)


# Intake runs these for every order: built once, so SQLAlchemy neither rebuilds them
# nor recomputes their cache keys per request.
_BY_KEY = select(
    orders.c.id, orders.c.state, orders.c.request_hash, orders.c.exception_reason
).where(orders.c.idempotency_key == bindparam("key"))
_KNOWN_SKUS = select(skus.c.sku).where(skus.c.sku.in_(bindparam("wanted", expanding=True)))
_INSERT_ORDER = insert(orders)
_INSERT_LINES = insert(order_lines).returning(order_lines.c.id, sort_by_parameter_order=True)
_SET_STATE = (
    update(orders)
    .where(orders.c.id == bindparam("b_id"))
    .values(state=bindparam("b_state"), seq=bindparam("b_seq"))
)


async def _existing(conn: AsyncConnection, key: str, request_hash: str) -> IntakeResult | None:
    row = (await conn.execute(_BY_KEY, {"key": key})).first()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise IdempotencyConflict(
            f"Idempotency-Key {key!r} was already used for order {row.id} with a different "
            "body; use a new key for a new order",
            order_id=row.id,
        )
    problems = row.exception_reason.split("; ") if row.exception_reason else []
    return IntakeResult(row.id, row.state, created=False, problems=problems)


async def submit_order(
    engine: AsyncEngine,
    topics: Topics,
    new: NewOrder,
    *,
    idempotency_key: str,
    request_hash: str,
    actor: str,
) -> IntakeResult:
    """Create an order and move it as far as it can go: validated, reserved or backordered.

    An invalid order is kept in ``exception`` with its reasons and an alert for
    customer service. The same key with the same body returns the same order.
    """
    attempts = 6
    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            async with transaction(engine) as conn:
                found = await _existing(conn, idempotency_key, request_hash)
                if found is not None:
                    return found
                return await _create(
                    conn, topics, new, idempotency_key, request_hash, actor, savepoints=last
                )
        except IntegrityError:
            # A concurrent request with the same key won the insert; answer with its order.
            if attempt >= 1:
                raise
        except inventory.ReservationContended:
            # Lost a race for the same units: the whole transaction rolled back; the
            # last attempt re-plans inside its transaction instead.
            if last:
                raise
    raise AssertionError("unreachable")


async def _create(
    conn: AsyncConnection,
    topics: Topics,
    new: NewOrder,
    key: str,
    request_hash: str,
    actor: str,
    *,
    savepoints: bool = False,
) -> IntakeResult:
    now = utcnow()
    order_id = new_id("o")
    wanted = sorted({sku for sku, _ in new.lines})
    known = set((await conn.scalars(_KNOWN_SKUS, {"wanted": wanted})).all())
    problems = check_order(
        IntakeOrder(
            external_id=new.external_id,
            customer_name=new.customer_name,
            phone=new.phone,
            email=new.email,
            line1=new.line1,
            city=new.city,
            postal_code=new.postal_code,
            country=new.country,
            lines=[IntakeLine(sku, qty) for sku, qty in new.lines],
        ),
        known,
    )
    order_row: dict[str, Any] = {
        "id": order_id,
        "external_id": new.external_id,
        "idempotency_key": key,
        "request_hash": request_hash,
        "state": OrderState.RECEIVED,
        "seq": 0,
        "priority": new.priority,
        "service": new.service,
        "customer_name": new.customer_name,
        "phone": new.phone,
        "email": new.email,
        "line1": new.line1,
        "line2": new.line2,
        "city": new.city,
        "postal_code": new.postal_code,
        "country": new.country.upper(),
        "lat": new.lat,
        "lon": new.lon,
        "customer_ref": new.customer_ref,
        "linked_order_id": new.linked_order_id,
        "exception_reason": None,
        "sla_deadline": now + SLA.get(new.service, SLA["standard"]),
        "created_at": now,
        "updated_at": now,
    }
    await conn.execute(_INSERT_ORDER, order_row)
    line_ids = (
        await conn.scalars(
            _INSERT_LINES,
            [
                {"order_id": order_id, "line_no": n, "sku": sku, "qty": qty, "qty_picked": 0}
                for n, (sku, qty) in enumerate(new.lines, start=1)
            ],
        )
    ).all()

    events: list[OrderEvent] = [domain.created(order_id, actor, now, "order received")]

    def step(target: str, reason: str) -> None:
        last = events[-1]
        events.append(
            domain.transition(
                order_id, last.to_state, last.seq, target, actor=actor, reason=reason, at=now
            )
        )

    values: dict[str, Any] = {}
    if problems:
        reason = "; ".join(problems)
        step(OrderState.EXCEPTION, reason)
        values["exception_reason"] = reason
        await raise_alert(
            conn,
            topics,
            code="order_invalid",
            severity="warning",
            message_text=f"order {order_id} ({new.external_id}) needs customer service: {reason}",
            subject=order_id,
            at=now,
        )
    else:
        step(OrderState.VALIDATED, "checks passed")
        demand = [
            LineDemand(line_id, sku, qty)
            for line_id, (sku, qty) in zip(line_ids, new.lines, strict=True)
        ]
        plan = await inventory.reserve(conn, order_id, demand, savepoints=savepoints)
        if plan.complete:
            step(OrderState.RESERVED, "stock reserved")
        else:
            short = ", ".join(f"{s.sku} short {s.missing}" for s in plan.shortages)
            step(OrderState.BACKORDERED, f"shortage: {short}")
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
    final = events[-1]
    if values:
        await conn.execute(
            update(orders)
            .where(orders.c.id == order_id)
            .values(state=final.to_state, seq=final.seq, **values)
        )
    else:
        await conn.execute(
            _SET_STATE, {"b_id": order_id, "b_state": final.to_state, "b_seq": final.seq}
        )
    await record_events(conn, topics, events)
    # The answer is built from what was written: no read back on the hot path.
    order_row.update(state=final.to_state, seq=final.seq, **values)
    view = shape_order(
        SimpleNamespace(**order_row),
        [
            {"line_no": n, "sku": sku, "qty": qty, "qty_picked": 0}
            for n, (sku, qty) in enumerate(new.lines, start=1)
        ],
    )
    return IntakeResult(order_id, final.to_state, created=True, problems=problems, order=view)


async def cancel_order(
    engine: AsyncEngine, topics: Topics, order_id: str, *, actor: str, reason: str | None
) -> OrderEvent:
    """Cancel before shipping; reservations are released in the same transaction."""
    async with transaction(engine) as conn:
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
