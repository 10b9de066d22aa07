"""What customers do for themselves by signed link (``wcs.links``): the data the
pages show and the record that a single-use link was used.

A link names one order; every page reads that order only, so a link can never show
another customer's order (and a changed link fails its signature).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.errors import Conflict, NotFound
from wcs.links import Link
from wcs.persistence.inventory import availability
from wcs.persistence.tables import link_uses, order_lines, orders, replenishment_requests, skus
from wcs.timeutil import as_utc, utcnow

# A substitute's price may differ from the missing item's by this share at most.
PRICE_BAND = 0.25
MAX_SUGGESTIONS = 3


async def used_at(engine: AsyncEngine, link: Link) -> datetime | None:
    async with engine.connect() as conn:
        at = await conn.scalar(
            select(link_uses.c.used_at).where(link_uses.c.link_id == link.link_id)
        )
    return as_utc(at) if at else None


async def mark_used(conn: AsyncConnection, link: Link) -> None:
    """Record the use inside the acting transaction; a second use is a Conflict."""
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(link_uses).values(
                    link_id=link.link_id,
                    purpose=link.purpose,
                    order_id=link.order_id,
                    used_at=utcnow(),
                )
            )
    except IntegrityError as exc:
        raise Conflict("this link was already used", link_id=link.link_id) from exc


async def order_summary(engine: AsyncEngine, order_id: str) -> dict[str, Any]:
    """The order as its customer sees it on a self-service page: reference, state,
    lines with names, the destination city."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(
                    orders.c.id,
                    orders.c.external_id,
                    orders.c.state,
                    orders.c.city,
                    orders.c.country,
                    orders.c.lang,
                ).where(orders.c.id == order_id)
            )
        ).first()
        if row is None:
            raise NotFound(f"order {order_id} does not exist", order_id=order_id)
        lines = (
            await conn.execute(
                select(order_lines.c.line_no, order_lines.c.sku, order_lines.c.qty, skus.c.name)
                .join(skus, skus.c.sku == order_lines.c.sku, isouter=True)
                .where(order_lines.c.order_id == order_id)
                .order_by(order_lines.c.line_no)
            )
        ).all()
    return {
        "id": row.id,
        "external_id": row.external_id,
        "state": row.state,
        "city": row.city,
        "country": row.country,
        "lang": row.lang,
        "lines": [
            {"line_no": ln.line_no, "sku": ln.sku, "qty": ln.qty, "name": ln.name or ln.sku}
            for ln in lines
        ],
    }


async def backorder_options(engine: AsyncEngine, order_id: str) -> list[dict[str, Any]]:
    """Per missing item: what is short, and up to three substitutes in stock from the
    same category at a similar price (within 25 %), closest price first."""
    async with engine.connect() as conn:
        short = (
            await conn.execute(
                select(
                    replenishment_requests.c.sku,
                    func.sum(replenishment_requests.c.qty).label("missing"),
                )
                .where(
                    and_(
                        replenishment_requests.c.order_id == order_id,
                        replenishment_requests.c.state == "open",
                    )
                )
                .group_by(replenishment_requests.c.sku)
                .order_by(replenishment_requests.c.sku)
            )
        ).all()
        wanted = {
            r.sku: int(r.qty)
            for r in await conn.execute(
                select(order_lines.c.sku, order_lines.c.qty).where(
                    order_lines.c.order_id == order_id
                )
            )
        }
        options = []
        for s in short:
            item = (await conn.execute(select(skus).where(skus.c.sku == s.sku))).first()
            suggestions: list[dict[str, Any]] = []
            if item is not None and item.category and item.price_minor:
                low = item.price_minor * (1 - PRICE_BAND)
                high = item.price_minor * (1 + PRICE_BAND)
                candidates = (
                    await conn.execute(
                        select(skus).where(
                            and_(
                                skus.c.category == item.category,
                                skus.c.sku != item.sku,
                                skus.c.sku.not_in(list(wanted)),
                                skus.c.price_minor.between(low, high),
                                skus.c.currency == item.currency,
                            )
                        )
                    )
                ).all()
                stock = await availability(conn, [c.sku for c in candidates])
                need = wanted.get(s.sku, 1)
                for c in sorted(candidates, key=lambda c: abs(c.price_minor - item.price_minor)):
                    if sum(a.available for a in stock.get(c.sku, [])) >= need:
                        suggestions.append(
                            {
                                "sku": c.sku,
                                "name": c.name,
                                "variant": c.variant,
                                "price_minor": c.price_minor,
                                "currency": c.currency,
                            }
                        )
                    if len(suggestions) == MAX_SUGGESTIONS:
                        break
            options.append(
                {
                    "sku": s.sku,
                    "name": item.name if item is not None else s.sku,
                    "missing": int(s.missing),
                    "price_minor": item.price_minor if item is not None else None,
                    "currency": item.currency if item is not None else None,
                    "substitutes": suggestions,
                }
            )
    return options


async def sender_of(engine: AsyncEngine, order_id: str) -> list[str]:
    """The customer's own name and address, for their return label (the link's holder
    is the customer: the label needs the sender)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(
                    orders.c.customer_name,
                    orders.c.line1,
                    orders.c.line2,
                    orders.c.postal_code,
                    orders.c.city,
                    orders.c.country,
                ).where(orders.c.id == order_id)
            )
        ).one()
    return [
        row.customer_name,
        row.line1,
        row.line2 or "",
        f"{row.postal_code} {row.city}",
        row.country,
    ]
