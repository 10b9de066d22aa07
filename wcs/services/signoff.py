"""Customer sign-off: delivered -> closed, by the customer or by timeout (design §1 step 8).

The customer confirms receipt with a rating (1-5) and an optional comment. An order
nobody signs off is closed ``auto_close_days`` after its delivery, unless there is a
complaint: a return that is still open keeps the order ``delivered`` until the
return is resolved, and the clock then counts from the delivery as before (the
customer had their say through the return).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.contract.topics import Topics
from wcs.domain.states import RETURN_TERMINAL, OrderState
from wcs.errors import ValidationFailed
from wcs.persistence.db import transaction
from wcs.persistence.orders import lock_order, transition
from wcs.persistence.tables import order_events, orders, return_lines, returns, sign_offs
from wcs.timeutil import as_utc, utcnow

S = OrderState
AUTO_CLOSE_ACTOR = "system:auto-close"
COMMENT_MAX = 2000


async def confirm_receipt(
    engine: AsyncEngine,
    topics: Topics,
    order_id: str,
    *,
    rating: int,
    comment: str | None,
    actor: str,
) -> dict[str, Any]:
    """The customer signs off a delivered order; it becomes ``closed``."""
    if not 1 <= rating <= 5:
        raise ValidationFailed(f"rating must be 1 to 5, got {rating}")
    comment = (comment or "").strip()[:COMMENT_MAX] or None
    async with transaction(engine) as conn:
        now = utcnow()
        event = await transition(
            conn,
            topics,
            order_id,
            S.CLOSED,
            actor=actor,
            reason=f"customer confirmed receipt, rating {rating}/5",
            at=now,
        )
        await conn.execute(
            insert(sign_offs).values(
                order_id=order_id,
                kind="customer",
                rating=rating,
                comment=comment,
                actor=actor[:64],
                at=now,
            )
        )
    return {"order_id": order_id, "state": S.CLOSED, "seq": event.seq, "rating": rating, "at": now}


def _open_return(order_id_column: Any) -> Any:
    return exists(
        select(return_lines.c.id)
        .join(returns, returns.c.id == return_lines.c.return_id)
        .where(
            and_(
                returns.c.order_id == order_id_column,
                return_lines.c.state.not_in(sorted(RETURN_TERMINAL)),
            )
        )
    )


async def auto_close_due(
    engine: AsyncEngine,
    topics: Topics,
    now: datetime,
    *,
    after_days: int = 7,
    limit: int = 500,
) -> list[str]:
    """Close delivered orders older than ``after_days`` without an open return.

    One transaction per order, each re-checked under the order's lock, so several
    API processes running this at once close each order once.
    """
    cutoff = now - timedelta(days=after_days)
    delivered_at = (
        select(order_events.c.order_id, func.max(order_events.c.at).label("at"))
        .where(order_events.c.to_state == S.DELIVERED)
        .group_by(order_events.c.order_id)
        .subquery()
    )
    async with engine.connect() as conn:
        due = (
            await conn.scalars(
                select(orders.c.id)
                .join(delivered_at, delivered_at.c.order_id == orders.c.id)
                .where(
                    and_(
                        orders.c.state == S.DELIVERED,
                        delivered_at.c.at <= cutoff,
                        ~_open_return(orders.c.id),
                    )
                )
                .order_by(delivered_at.c.at)
                .limit(limit)
            )
        ).all()
    closed: list[str] = []
    for order_id in due:
        async with transaction(engine) as conn:
            head = await lock_order(conn, order_id)
            still_open = await conn.scalar(select(_open_return(order_id)))
            if head.state != S.DELIVERED or still_open:
                continue
            await transition(
                conn,
                topics,
                order_id,
                S.CLOSED,
                actor=AUTO_CLOSE_ACTOR,
                reason=f"no sign-off or complaint within {after_days} days of delivery",
                at=now,
            )
            await conn.execute(
                insert(sign_offs).values(
                    order_id=order_id, kind="auto", actor=AUTO_CLOSE_ACTOR, at=now
                )
            )
            closed.append(order_id)
    return closed


async def sign_off_of(engine: AsyncEngine, order_id: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(sign_offs).where(sign_offs.c.order_id == order_id))
        ).first()
    if row is None:
        return None
    return {
        "kind": row.kind,
        "rating": row.rating,
        "comment": row.comment,
        "actor": row.actor,
        "at": as_utc(row.at),
    }
