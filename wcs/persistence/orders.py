"""Order state changes as one unit: state + event row + outbox message, together.

Callers hold a transaction (``wcs.persistence.db.transaction``); these functions
never commit. The row is locked (``FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already serialises writers) and the update is guarded on the
previous ``seq``, so two processes can never both append event n+1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wcs.contract.payloads import Alert, OrderStateChange
from wcs.contract.topics import Topics
from wcs.domain import orders as domain
from wcs.domain.orders import OrderEvent
from wcs.errors import Conflict, NotFound
from wcs.notify.queue import queue_order_events
from wcs.persistence.outbox import OutboxMessage, enqueue, message
from wcs.persistence.tables import alert_resolutions, alerts, order_events, orders
from wcs.timeutil import utcnow


@dataclass(frozen=True, slots=True)
class OrderHead:
    id: str
    state: str
    seq: int


async def lock_order(conn: AsyncConnection, order_id: str) -> OrderHead:
    row = (
        await conn.execute(
            select(orders.c.id, orders.c.state, orders.c.seq)
            .where(orders.c.id == order_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise NotFound(f"order {order_id} does not exist", order_id=order_id)
    return OrderHead(row.id, row.state, row.seq)


def state_message(topics: Topics, event: OrderEvent) -> OutboxMessage:
    payload = OrderStateChange(
        ts=event.at,
        order_id=event.order_id,
        seq=event.seq,
        from_=event.from_state,
        to=event.to_state,
        reason=event.reason,
    )
    return message(topics.order_state(event.order_id), payload, retain=True)


def event_row(event: OrderEvent) -> dict[str, Any]:
    return {
        "order_id": event.order_id,
        "seq": event.seq,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "actor": event.actor,
        "reason": event.reason,
        "at": event.at,
    }


_INSERT_EVENTS = insert(order_events)


async def record_events(
    conn: AsyncConnection,
    topics: Topics,
    events: Sequence[OrderEvent],
    extra: Sequence[OutboxMessage] = (),
) -> None:
    """Append already-decided events (gap-free by construction) and their messages."""
    if not events:
        return
    await conn.execute(_INSERT_EVENTS, [event_row(e) for e in events])
    # Customer notifications commit with the change they announce (or not at all).
    await queue_order_events(conn, events)
    await enqueue(conn, [*(state_message(topics, e) for e in events), *extra])


class StateMoved(Conflict):
    """The order is no longer in the state the caller expected (someone moved it)."""

    code = "state_moved"


async def transition(
    conn: AsyncConnection,
    topics: Topics,
    order_id: str,
    target: str,
    *,
    actor: str,
    reason: str | None = None,
    at: datetime | None = None,
    values: dict[str, Any] | None = None,
    extra: Sequence[OutboxMessage] = (),
    expect: str | None = None,
) -> OrderEvent:
    """Move one order to ``target`` or raise IllegalTransition / NotFound.

    With ``expect``, the move only happens from that state (StateMoved otherwise)."""
    head = await lock_order(conn, order_id)
    if expect is not None and head.state != expect:
        raise StateMoved(f"order {order_id} is '{head.state}', not '{expect}'", order_id=order_id)
    event = domain.transition(
        order_id, head.state, head.seq, target, actor=actor, reason=reason, at=at or utcnow()
    )
    result = await conn.execute(
        update(orders)
        .where(and_(orders.c.id == order_id, orders.c.seq == head.seq))
        .values(state=target, seq=event.seq, updated_at=event.at, **(values or {}))
    )
    if result.rowcount != 1:
        raise Conflict(f"order {order_id} changed while being updated; retry")
    await record_events(conn, topics, [event], extra)
    return event


async def raise_alert(
    conn: AsyncConnection,
    topics: Topics,
    *,
    code: str,
    severity: str,
    message_text: str,
    subject: str | None,
    at: datetime | None = None,
) -> int:
    """Record an alert (for GET /alerts) and publish it on ``alert/{severity}``."""
    at = at or utcnow()
    alert_id = (
        await conn.execute(
            insert(alerts)
            .values(
                code=code, severity=severity, message=message_text, subject=subject, created_at=at
            )
            .returning(alerts.c.id)
        )
    ).scalar_one()
    payload = Alert(ts=at, code=code, message=message_text, subject=subject)
    await enqueue(conn, [message(topics.alert(severity), payload)])
    return int(alert_id)


async def close_alerts_about(
    conn: AsyncConnection,
    subject: str,
    *,
    resolved_by: str,
    codes: Sequence[str] | None = None,
    at: datetime | None = None,
) -> list[int]:
    """Resolve the open alerts about ``subject`` (an order id) whose cause has ended:
    the order was cancelled or corrected. Returns their ids."""
    at = at or utcnow()
    query = (
        select(alerts.c.id, alerts.c.acked_at)
        .outerjoin(alert_resolutions, alert_resolutions.c.alert_id == alerts.c.id)
        .where(and_(alerts.c.subject == subject, alert_resolutions.c.alert_id.is_(None)))
    )
    if codes is not None:
        query = query.where(alerts.c.code.in_(list(codes)))
    rows = (await conn.execute(query)).all()
    if not rows:
        return []
    await conn.execute(
        insert(alert_resolutions),
        [{"alert_id": r.id, "resolved_at": at, "resolved_by": resolved_by[:64]} for r in rows],
    )
    unacked = [r.id for r in rows if r.acked_at is None]
    if unacked:
        await conn.execute(
            update(alerts)
            .where(alerts.c.id.in_(unacked))
            .values(acked_by=resolved_by[:64], acked_at=at)
        )
    return [int(r.id) for r in rows]
