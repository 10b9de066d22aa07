"""Customer notices: messages owed to a customer, written with the event that causes them.

A notice is a row in ``customer_notices`` inside the caller's transaction, so a
delay or a refund and the promise to tell the customer commit together. Sending
(e-mail, text message) is a separate process that sets ``sent_at``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from wcs.domain.delivery import notice_channel
from wcs.errors import NotFound
from wcs.persistence.tables import customer_notices, orders
from wcs.timeutil import as_utc, utcnow


async def add_notice(
    conn: AsyncConnection, order_id: str, kind: str, message: str, *, at: datetime | None = None
) -> int:
    contact = (
        await conn.execute(select(orders.c.email, orders.c.phone).where(orders.c.id == order_id))
    ).first()
    if contact is None:
        raise NotFound(f"order {order_id} does not exist", order_id=order_id)
    notice_id = (
        await conn.execute(
            insert(customer_notices)
            .values(
                order_id=order_id,
                kind=kind,
                channel=notice_channel(contact.email, contact.phone),
                message=message,
                created_at=at or utcnow(),
            )
            .returning(customer_notices.c.id)
        )
    ).scalar_one()
    return int(notice_id)


async def notices_of(conn: AsyncConnection, order_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(customer_notices)
        .where(customer_notices.c.order_id == order_id)
        .order_by(customer_notices.c.id)
    )
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "channel": r.channel,
            "message": r.message,
            "created_at": as_utc(r.created_at),
            "sent_at": as_utc(r.sent_at) if r.sent_at else None,
        }
        for r in rows
    ]
