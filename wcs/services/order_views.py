"""Read models of orders: one order with lines, lists by state, event timelines."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.errors import NotFound, ValidationFailed
from wcs.persistence.db import reading
from wcs.persistence.tables import order_events, order_lines, orders
from wcs.timeutil import as_utc


def shape_order(row: Any, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The API's view of an order from a row (or any object with its columns)."""
    return {
        "id": row.id,
        "external_id": row.external_id,
        "state": row.state,
        "seq": row.seq,
        "priority": row.priority,
        "service": row.service,
        "lines": lines,
        "customer": {
            "name": row.customer_name,
            "phone": row.phone,
            "email": row.email,
            "ref": row.customer_ref,
        },
        "address": {
            "line1": row.line1,
            "line2": row.line2,
            "city": row.city,
            "postal_code": row.postal_code,
            "country": row.country,
            "lat": row.lat,
            "lon": row.lon,
        },
        "lang": row.lang,
        "exception_reason": row.exception_reason,
        "sla_deadline": as_utc(row.sla_deadline) if row.sla_deadline else None,
        "linked_order_id": row.linked_order_id,
        "created_at": as_utc(row.created_at),
        "updated_at": as_utc(row.updated_at),
    }


async def _lines(conn: AsyncConnection, order_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    result: dict[str, list[dict[str, Any]]] = {oid: [] for oid in order_ids}
    if not order_ids:
        return result
    rows = await conn.execute(
        select(
            order_lines.c.order_id,
            order_lines.c.line_no,
            order_lines.c.sku,
            order_lines.c.qty,
            order_lines.c.qty_picked,
        )
        .where(order_lines.c.order_id.in_(order_ids))
        .order_by(order_lines.c.order_id, order_lines.c.line_no)
    )
    for r in rows:
        result[r.order_id].append(
            {"line_no": r.line_no, "sku": r.sku, "qty": r.qty, "qty_picked": r.qty_picked}
        )
    return result


async def get_order(engine: AsyncEngine, order_id: str) -> dict[str, Any]:
    async with reading(engine).connect() as conn:
        row = (await conn.execute(select(orders).where(orders.c.id == order_id))).first()
        if row is None:
            raise NotFound(f"order {order_id} does not exist", order_id=order_id)
        lines = await _lines(conn, [order_id])
    return shape_order(row, lines[order_id])


def _encode_cursor(created_at: datetime, order_id: str) -> str:
    raw = f"{as_utc(created_at).isoformat()}|{order_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, order_id = raw.split("|", 1)
        return datetime.fromisoformat(stamp), order_id
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed(f"cursor {cursor!r} is not one this API handed out") from None


async def list_orders(
    engine: AsyncEngine,
    *,
    states: list[str] | None = None,
    customer_ref: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first, keyset-paginated (stable while orders keep arriving)."""
    query = select(orders)
    conditions: list[ColumnElement[bool]] = []
    if states:
        conditions.append(orders.c.state.in_(states))
    if customer_ref is not None:
        conditions.append(orders.c.customer_ref == customer_ref)
    if cursor:
        created, oid = _decode_cursor(cursor)
        conditions.append(
            or_(
                orders.c.created_at < created,
                and_(orders.c.created_at == created, orders.c.id < oid),
            )
        )
    if conditions:
        query = query.where(and_(*conditions))
    query = query.order_by(orders.c.created_at.desc(), orders.c.id.desc()).limit(limit + 1)
    async with reading(engine).connect() as conn:
        rows = (await conn.execute(query)).all()
        page = rows[:limit]
        lines = await _lines(conn, [r.id for r in page])
    next_cursor = _encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    return [shape_order(r, lines[r.id]) for r in page], next_cursor


async def order_events_of(engine: AsyncEngine, order_id: str) -> list[dict[str, Any]]:
    async with reading(engine).connect() as conn:
        exists = await conn.scalar(select(orders.c.id).where(orders.c.id == order_id))
        if exists is None:
            raise NotFound(f"order {order_id} does not exist", order_id=order_id)
        rows = await conn.execute(
            select(order_events)
            .where(order_events.c.order_id == order_id)
            .order_by(order_events.c.seq)
        )
        return [
            {
                "seq": r.seq,
                "from_state": r.from_state,
                "to_state": r.to_state,
                "actor": r.actor,
                "reason": r.reason,
                "at": as_utc(r.at),
            }
            for r in rows
        ]


async def count_by_state(engine: AsyncEngine) -> dict[str, int]:
    async with reading(engine).connect() as conn:
        rows = await conn.execute(select(orders.c.state, func.count()).group_by(orders.c.state))
        return {state: int(n) for state, n in rows}


async def customer_ref_of(engine: AsyncEngine, order_id: str) -> str | None:
    async with reading(engine).connect() as conn:
        row = (
            await conn.execute(select(orders.c.customer_ref).where(orders.c.id == order_id))
        ).first()
    if row is None:
        raise NotFound(f"order {order_id} does not exist", order_id=order_id)
    return row.customer_ref  # type: ignore[no-any-return]
