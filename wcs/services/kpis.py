"""KPI queries: read the facts of a time window and let ``wcs.domain.kpis`` compute.

Sources: ``order_events`` (the append-only state log) for processing time, shipping
and delivery times and hourly throughput; ``orders`` for the ship-by deadline and
the current count per state; ``activity`` for picks, mispicks, QC and weight checks;
``shipments.delivery_due`` for the promised delivery time, ``sign_offs`` for the
customers' ratings, ``returns`` for the returns rate, ``count_tasks`` (closed in the
window, by result) for inventory accuracy and ``stock_adjustments`` (booked in the
window, per currency of their SKU) for the adjustments.
Aggregation happens in SQL where it can (counts per kind, per hour) so a busy window
costs one row per hour or per kind, not one per event; processing-time percentiles
need one row per packed order.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.domain import kpis
from wcs.domain.kpis import ActivityCount, AdjustmentTotal, Deadline, KpiInputs, KpiReport
from wcs.domain.states import OrderState
from wcs.errors import ValidationFailed
from wcs.persistence.db import reading
from wcs.persistence.tables import (
    activity,
    count_tasks,
    order_events,
    orders,
    returns,
    shipments,
    sign_offs,
    skus,
    stock_adjustments,
)
from wcs.timeutil import as_utc

ACTIVITY_KINDS = (
    kpis.PICK_OK,
    kpis.MISPICK,
    kpis.QC_PASS,
    kpis.QC_FAIL,
    kpis.WEIGHT_OK,
    kpis.WEIGHT_MISMATCH,
)


def hour_bucket(conn: AsyncConnection, column: Any) -> ColumnElement[Any]:
    """The UTC hour a timestamp falls in, computed by the database."""
    if conn.dialect.name == "postgresql":
        return func.date_trunc("hour", func.timezone("UTC", column))
    # SQLite keeps our UTC timestamps as ISO text: cut it at the hour.
    return func.strftime("%Y-%m-%d %H:00:00", column)


def parse_hour(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return as_utc(moment)


async def hourly_counts(
    conn: AsyncConnection, column: Any, where: ColumnElement[bool]
) -> dict[datetime, int]:
    bucket = hour_bucket(conn, column).label("hour")
    rows = await conn.execute(select(bucket, func.count()).where(where).group_by(bucket))
    return {parse_hour(hour): int(n) for hour, n in rows if hour is not None}


def _in_window(column: Any, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(column >= start, column < end)


async def _first_reached(
    conn: AsyncConnection, state: str, start: datetime, end: datetime
) -> list[Deadline]:
    """Orders that reached ``state`` in the window, when, and their ship-by deadline."""
    reached = func.min(order_events.c.at).label("reached")
    rows = await conn.execute(
        select(order_events.c.order_id, reached, orders.c.sla_deadline)
        .join(orders, orders.c.id == order_events.c.order_id)
        .where(and_(order_events.c.to_state == state, _in_window(order_events.c.at, start, end)))
        .group_by(order_events.c.order_id, orders.c.sla_deadline)
    )
    return [
        Deadline(r.order_id, as_utc(r.reached), as_utc(r.sla_deadline) if r.sla_deadline else None)
        for r in rows
    ]


async def _delivered(conn: AsyncConnection, start: datetime, end: datetime) -> list[Deadline]:
    """Orders delivered in the window against the delivery time their shipment promised
    (the ship-by deadline is the warehouse's promise, not the carrier's)."""
    reached = func.min(order_events.c.at).label("reached")
    due = func.max(shipments.c.delivery_due).label("due")
    rows = await conn.execute(
        select(order_events.c.order_id, reached, due)
        .outerjoin(shipments, shipments.c.order_id == order_events.c.order_id)
        .where(
            and_(
                order_events.c.to_state == OrderState.DELIVERED,
                _in_window(order_events.c.at, start, end),
            )
        )
        .group_by(order_events.c.order_id)
    )
    return [Deadline(r.order_id, as_utc(r.reached), as_utc(r.due) if r.due else None) for r in rows]


async def _ratings(conn: AsyncConnection, start: datetime, end: datetime) -> dict[int, int]:
    rows = await conn.execute(
        select(sign_offs.c.rating, func.count())
        .where(and_(sign_offs.c.rating.is_not(None), _in_window(sign_offs.c.at, start, end)))
        .group_by(sign_offs.c.rating)
    )
    return {int(score): int(n) for score, n in rows}


async def _returned(conn: AsyncConnection, delivered: list[Deadline]) -> frozenset[str]:
    ids = [d.order_id for d in delivered]
    found: set[str] = set()
    for i in range(0, len(ids), 1000):  # bounded IN lists
        chunk = ids[i : i + 1000]
        found.update(
            await conn.scalars(select(returns.c.order_id).where(returns.c.order_id.in_(chunk)))
        )
    return frozenset(found)


async def _processing(
    conn: AsyncConnection, start: datetime, end: datetime
) -> tuple[dict[str, datetime], dict[str, datetime]]:
    packed = (
        select(
            order_events.c.order_id.label("order_id"),
            func.min(order_events.c.at).label("packed_at"),
        )
        .where(
            and_(
                order_events.c.to_state == OrderState.PACKED,
                _in_window(order_events.c.at, start, end),
            )
        )
        .group_by(order_events.c.order_id)
        .subquery()
    )
    first = order_events.alias("first_event")
    rows = await conn.execute(
        select(packed.c.order_id, first.c.at, packed.c.packed_at).join(
            first, and_(first.c.order_id == packed.c.order_id, first.c.seq == 1)
        )
    )
    started: dict[str, datetime] = {}
    done: dict[str, datetime] = {}
    for order_id, begun, packed_at in rows:
        started[order_id] = as_utc(begun)
        done[order_id] = as_utc(packed_at)
    return started, done


async def _activity(conn: AsyncConnection, start: datetime, end: datetime) -> list[ActivityCount]:
    rows = await conn.execute(
        select(activity.c.kind, activity.c.ok, func.count())
        .where(and_(activity.c.kind.in_(ACTIVITY_KINDS), _in_window(activity.c.at, start, end)))
        .group_by(activity.c.kind, activity.c.ok)
    )
    return [ActivityCount(kind, bool(ok), int(n)) for kind, ok, n in rows]


async def _counts(conn: AsyncConnection, start: datetime, end: datetime) -> dict[str, int]:
    rows = await conn.execute(
        select(count_tasks.c.result, func.count())
        .where(
            and_(
                count_tasks.c.result.in_((kpis.COUNT_MATCHED, kpis.COUNT_ADJUSTED)),
                _in_window(count_tasks.c.closed_at, start, end),
            )
        )
        .group_by(count_tasks.c.result)
    )
    return {str(result): int(n) for result, n in rows}


def _abs(column: Any) -> ColumnElement[Any]:
    return case((column < 0, -column), else_=column)


async def _adjustments(
    conn: AsyncConnection, start: datetime, end: datetime
) -> list[AdjustmentTotal]:
    a = stock_adjustments.c
    rows = await conn.execute(
        select(
            skus.c.currency,
            func.count(),
            func.sum(a.delta),
            func.sum(_abs(a.delta)),
            func.sum(a.value_minor),
            func.sum(_abs(a.value_minor)),
        )
        .select_from(stock_adjustments.outerjoin(skus, skus.c.sku == a.sku))
        .where(_in_window(a.at, start, end))
        .group_by(skus.c.currency)
    )
    return [
        AdjustmentTotal(
            currency,
            int(n),
            int(net or 0),
            int(gross or 0),
            None if value is None else int(value),
            None if value_gross is None else int(value_gross),
        )
        for currency, n, net, gross, value, value_gross in rows
    ]


async def orders_by_state(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(select(orders.c.state, func.count()).group_by(orders.c.state))
    return {state: int(n) for state, n in rows}


def check_window(
    start: datetime, end: datetime, *, max_days: int = 400
) -> tuple[datetime, datetime]:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationFailed("give 'from' and 'to' with a time zone, e.g. 2026-11-25T08:00:00Z")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        raise ValidationFailed("'to' must be after 'from'")
    if (end - start).days > max_days:
        raise ValidationFailed(f"the window may span at most {max_days} days")
    return start, end


async def kpi_report(engine: AsyncEngine, start: datetime, end: datetime) -> KpiReport:
    """Every KPI over [start, end); see ``wcs.domain.kpis`` for the definitions."""
    start, end = check_window(start, end)
    async with reading(engine).connect() as conn:
        started, packed = await _processing(conn, start, end)
        delivered = await _delivered(conn, start, end)
        inputs = KpiInputs(
            start=start,
            end=end,
            started=started,
            packed=packed,
            activity=await _activity(conn, start, end),
            shipped=await _first_reached(conn, OrderState.SHIPPED, start, end),
            delivered=delivered,
            ratings=await _ratings(conn, start, end),
            returned=await _returned(conn, delivered),
            orders_by_state=await orders_by_state(conn),
            received_per_hour=await hourly_counts(
                conn, orders.c.created_at, _in_window(orders.c.created_at, start, end)
            ),
            packed_per_hour=await hourly_counts(
                conn,
                order_events.c.at,
                and_(
                    order_events.c.to_state == OrderState.PACKED,
                    _in_window(order_events.c.at, start, end),
                ),
            ),
            counts=await _counts(conn, start, end),
            adjustments=await _adjustments(conn, start, end),
        )
    return kpis.build_report(inputs)


def _ratio(value: kpis.Ratio) -> dict[str, Any]:
    return {"good": value.good, "total": value.total, "rate": value.rate}


def report_as_dict(report: KpiReport) -> dict[str, Any]:
    """The report as plain JSON-able values (API responses, SSE, the status page)."""
    pt = report.processing_time
    sat = report.satisfaction
    return {
        "from": report.start,
        "to": report.end,
        "processing_time": {
            "count": pt.count,
            "p50_s": pt.p50_s,
            "p95_s": pt.p95_s,
            "mean_s": pt.mean_s,
            "max_s": pt.max_s,
        },
        "pick_accuracy": _ratio(report.pick_accuracy),
        "pack_pass_rate": _ratio(report.pack_pass_rate),
        "qc_pass_rate": _ratio(report.qc_pass_rate),
        "on_time_shipping": _ratio(report.on_time_shipping),
        "on_time_delivery": _ratio(report.on_time_delivery),
        "customer_satisfaction": (
            None
            if sat is None
            else {
                "count": sat.count,
                "average": sat.average,
                "distribution": {str(k): v for k, v in sat.distribution.items()},
            }
        ),
        "returns_rate": None if report.returns_rate is None else _ratio(report.returns_rate),
        "inventory_accuracy": _ratio(report.inventory_accuracy),
        "stock_adjustments": {
            "count": report.adjustments.count,
            "units_net": report.adjustments.units_net,
            "units_gross": report.adjustments.units_gross,
            "value": [
                {"currency": v.currency, "net_minor": v.net_minor, "gross_minor": v.gross_minor}
                for v in report.adjustments.values
            ],
        },
        "orders_by_state": dict(report.orders_by_state),
        "throughput": [
            {"hour": r.hour, "received": r.count, "packed": p.count}
            for r, p in zip(report.received_per_hour, report.packed_per_hour, strict=True)
        ],
    }


def state_counts_with_zeros(counts: Mapping[str, int]) -> dict[str, int]:
    return {state.value: int(counts.get(state.value, 0)) for state in OrderState}
