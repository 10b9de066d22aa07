"""Customer service's queue: the orders that wait for a person (exception,
backordered, delivery failed), each with why and since when, oldest first, and the
open alerts about each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.domain.states import OrderState
from wcs.persistence.tables import alert_resolutions, alerts, order_events, orders
from wcs.timeutil import as_utc, utcnow

WAITING: tuple[str, ...] = (
    OrderState.EXCEPTION,
    OrderState.BACKORDERED,
    OrderState.DELIVERY_FAILED,
)


async def service_queue(
    engine: AsyncEngine, *, states: tuple[str, ...] = WAITING, limit: int = 200
) -> list[dict[str, Any]]:
    now = utcnow()
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    orders.c.id,
                    orders.c.external_id,
                    orders.c.state,
                    orders.c.customer_name,
                    orders.c.country,
                    orders.c.exception_reason,
                    order_events.c.reason,
                    order_events.c.at,
                )
                .join(
                    order_events,
                    and_(
                        order_events.c.order_id == orders.c.id, order_events.c.seq == orders.c.seq
                    ),
                )
                .where(orders.c.state.in_(list(states)))
                .order_by(order_events.c.at, orders.c.id)
                .limit(limit)
            )
        ).all()
        ids = [r.id for r in rows]
        open_alerts: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        if ids:
            for a in await conn.execute(
                select(
                    alerts.c.id,
                    alerts.c.code,
                    alerts.c.severity,
                    alerts.c.acked_at,
                    alerts.c.subject,
                )
                .outerjoin(alert_resolutions, alert_resolutions.c.alert_id == alerts.c.id)
                .where(and_(alerts.c.subject.in_(ids), alert_resolutions.c.alert_id.is_(None)))
                .order_by(alerts.c.id)
            ):
                open_alerts[a.subject].append(
                    {
                        "id": a.id,
                        "code": a.code,
                        "severity": a.severity,
                        "acknowledged": a.acked_at is not None,
                    }
                )
    return [
        {
            "order_id": r.id,
            "external_id": r.external_id,
            "state": r.state,
            "customer": r.customer_name,
            "country": r.country,
            "reason": r.exception_reason or r.reason,
            "since": as_utc(r.at),
            "age_s": _age(now, r.at),
            "alerts": open_alerts[r.id],
        }
        for r in rows
    ]


def _age(now: datetime, since: datetime) -> int:
    return max(0, int((now - as_utc(since)).total_seconds()))
