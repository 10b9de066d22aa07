"""The hook in the order state change: which events become a notification request.

``record_events`` calls ``queue_order_events`` inside the caller's transaction, so an
order cannot reach ``shipped`` without the promise to tell the customer committing
with it. Most events (the floor's picking, QC, packing) are filtered out in Python
before any SQL, so the controller's hot path pays nothing.

Delays, failed attempts, reshipments and return updates are not listed here: the
services that cause them already write a ``customer_notices`` row with the details,
and the notifier sends those through the same channels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from wcs.domain.orders import OrderEvent
from wcs.domain.states import OrderState
from wcs.persistence.tables import notify_requests

S = OrderState

# order state reached -> notification kind
NOTIFY_ON: Mapping[str, str] = MappingProxyType(
    {
        S.EXCEPTION: "order_exception",
        S.BACKORDERED: "backordered",
        S.CANCELLED: "cancelled",
        S.SHIPPED: "shipped",
        S.OUT_FOR_DELIVERY: "out_for_delivery",
        S.DELIVERED: "delivered",
    }
)


def notify_rows(events: Sequence[OrderEvent]) -> list[dict[str, Any]]:
    """The ``notify_requests`` rows these events call for (most call for none)."""
    return [
        {
            "order_id": e.order_id,
            "seq": e.seq,
            "kind": NOTIFY_ON[e.to_state],
            "reason": (e.reason or None) and e.reason[:1000],
            "created_at": e.at,
            "expanded_at": None,
        }
        for e in events
        if e.to_state in NOTIFY_ON
    ]


async def queue_order_events(conn: AsyncConnection, events: Sequence[OrderEvent]) -> None:
    rows = notify_rows(events)
    if rows:
        await conn.execute(insert(notify_requests), rows)
