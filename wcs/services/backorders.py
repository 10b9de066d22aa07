"""The customer's answer to a backorder notice: wait, substitute or cancel (design §1
step 2: "the customer may substitute or cancel").

- wait: nothing changes; the order is reserved when stock arrives (``fill_backorders``).
- cancel: ``backordered -> cancelled``, open replenishment requests of the order close.
- substitute: the short line's SKU is replaced and the whole order is reserved again,
  all or nothing: it becomes ``reserved`` if the substitute is in stock, otherwise it
  stays backordered waiting for the substitute instead.

Every answer is kept in ``backorder_choices`` with its outcome, in the transaction of
its effect.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.contract.topics import Topics
from wcs.domain.states import OrderState
from wcs.errors import Conflict, ValidationFailed
from wcs.persistence import inventory
from wcs.persistence.db import transaction
from wcs.persistence.orders import lock_order, transition
from wcs.persistence.tables import backorder_choices, order_lines, replenishment_requests, skus
from wcs.timeutil import as_utc, utcnow

Choice = Literal["wait", "cancel", "substitute"]


async def _short_skus(conn: AsyncConnection, order_id: str) -> list[str]:
    rows = await conn.scalars(
        select(replenishment_requests.c.sku)
        .where(
            and_(
                replenishment_requests.c.order_id == order_id,
                replenishment_requests.c.state == "open",
            )
        )
        .distinct()
    )
    return sorted(rows)


async def _close_requests(
    conn: AsyncConnection, order_id: str, state: str, sku: str | None = None
) -> None:
    where = and_(
        replenishment_requests.c.order_id == order_id, replenishment_requests.c.state == "open"
    )
    if sku is not None:
        where = and_(where, replenishment_requests.c.sku == sku)
    await conn.execute(update(replenishment_requests).where(where).values(state=state))


async def _substitute(
    conn: AsyncConnection,
    topics: Topics,
    order_id: str,
    replace: str | None,
    substitute: str | None,
    actor: str,
) -> tuple[str, str]:
    if not substitute:
        raise ValidationFailed("choice 'substitute' needs substitute_sku (the item to send)")
    short = await _short_skus(conn, order_id)
    if replace is None:
        if len(short) != 1:
            raise ValidationFailed(
                f"order {order_id} is short of {', '.join(short) or 'nothing'}; say which "
                "one to replace with 'replace_sku'"
            )
        replace = short[0]
    if replace not in short:
        raise ValidationFailed(
            f"{replace} is not short on order {order_id}; short: {', '.join(short) or 'none'}"
        )
    if substitute == replace:
        raise ValidationFailed("the substitute must be another SKU")
    if await conn.scalar(select(skus.c.sku).where(skus.c.sku == substitute)) is None:
        raise ValidationFailed(f"SKU {substitute} does not exist")
    await conn.execute(
        update(order_lines)
        .where(and_(order_lines.c.order_id == order_id, order_lines.c.sku == replace))
        .values(sku=substitute)
    )
    await _close_requests(conn, order_id, "cancelled", replace)
    plan = await inventory.reserve(conn, order_id, await inventory.order_demand(conn, order_id))
    if plan.complete:
        await transition(
            conn,
            topics,
            order_id,
            OrderState.RESERVED,
            actor=actor,
            reason=f"customer chose {substitute} instead of {replace}",
        )
        await _close_requests(conn, order_id, "fulfilled")
        return replace, OrderState.RESERVED
    waiting = {s.sku: s.missing for s in plan.shortages if s.sku == substitute}
    if waiting:
        await conn.execute(
            insert(replenishment_requests).values(
                sku=substitute,
                qty=waiting[substitute],
                order_id=order_id,
                state="open",
                created_at=utcnow(),
            )
        )
    return replace, OrderState.BACKORDERED


async def record_choice(
    engine: AsyncEngine,
    topics: Topics,
    order_id: str,
    choice: Choice,
    *,
    actor: str,
    substitute_sku: str | None = None,
    replace_sku: str | None = None,
) -> dict[str, Any]:
    now = utcnow()
    async with transaction(engine) as conn:
        head = await lock_order(conn, order_id)
        if head.state != OrderState.BACKORDERED:
            raise Conflict(
                f"order {order_id} is {head.state}; a backorder choice applies only while "
                "it is backordered",
                order_id=order_id,
            )
        replaced: str | None = None
        if choice == "wait":
            outcome: str = OrderState.BACKORDERED
        elif choice == "cancel":
            await transition(
                conn,
                topics,
                order_id,
                OrderState.CANCELLED,
                actor=actor,
                reason="customer cancelled while waiting for stock",
            )
            await inventory.release(conn, order_id, actor=actor)
            await _close_requests(conn, order_id, "cancelled")
            outcome = OrderState.CANCELLED
        elif choice == "substitute":
            replaced, outcome = await _substitute(
                conn, topics, order_id, replace_sku, substitute_sku, actor
            )
        else:
            raise ValidationFailed(f"choice {choice!r} is not one of wait, cancel, substitute")
        choice_id = (
            await conn.execute(
                insert(backorder_choices)
                .values(
                    order_id=order_id,
                    choice=choice,
                    replaced_sku=replaced,
                    substitute_sku=substitute_sku if choice == "substitute" else None,
                    outcome=outcome,
                    actor=actor[:64],
                    at=now,
                )
                .returning(backorder_choices.c.id)
            )
        ).scalar_one()
    return {
        "id": int(choice_id),
        "order_id": order_id,
        "choice": choice,
        "replaced_sku": replaced,
        "substitute_sku": substitute_sku if choice == "substitute" else None,
        "state": outcome,
        "at": now,
    }


async def choices_of(engine: AsyncEngine, order_id: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(backorder_choices)
            .where(backorder_choices.c.order_id == order_id)
            .order_by(backorder_choices.c.id)
        )
        return [
            {
                "id": r.id,
                "order_id": r.order_id,
                "choice": r.choice,
                "replaced_sku": r.replaced_sku,
                "substitute_sku": r.substitute_sku,
                "state": r.outcome,
                "at": as_utc(r.at),
            }
            for r in rows
        ]
