"""Lookups shared by the handlers."""

from __future__ import annotations

import re
import time

from sqlalchemy import or_, select, update

from controller.context import BatchContext
from wcs.errors import IllegalTransition
from wcs.persistence.orders import transition
from wcs.persistence.tables import orders, skus, totes

_SKU_CACHE_S = 30.0


def cached_sku_for_code(ctx: BatchContext, code: str) -> str | None:
    """sku_for_code() from the cache alone: None when it would have to ask."""
    hit = ctx.sku_cache.get(code)
    if hit is not None and time.monotonic() - hit[0] < _SKU_CACHE_S:
        return hit[1]
    return None


async def sku_for_code(ctx: BatchContext, code: str) -> str | None:
    """The SKU a scanned item code stands for: its barcode, or the SKU code itself.

    Cached briefly: the catalogue changes rarely and this runs on every scan."""
    now = time.monotonic()
    cache = ctx.sku_cache
    hit = cache.get(code)
    if hit is not None and now - hit[0] < _SKU_CACHE_S:
        return hit[1]
    sku = await ctx.conn.scalar(
        select(skus.c.sku).where(or_(skus.c.barcode == code, skus.c.sku == code)).limit(1)
    )
    if len(cache) > 50_000:
        cache.clear()
    cache[code] = (now, sku)
    return sku


def is_tote(ctx: BatchContext, code: str) -> bool:
    return re.fullmatch(ctx.settings.controller.tote_pattern, code) is not None


async def order_state(ctx: BatchContext, order_id: str) -> str | None:
    value = await ctx.conn.scalar(select(orders.c.state).where(orders.c.id == order_id))
    return str(value) if value is not None else None


async def move(ctx: BatchContext, order_id: str, target: str, reason: str) -> bool:
    """Transition if legal now; False (and nothing written) if the order moved on."""
    try:
        await transition(ctx.conn, ctx.topics, order_id, target, actor=ctx.actor, reason=reason)
    except IllegalTransition:
        return False
    return True


async def tote_of_order(ctx: BatchContext, order_id: str) -> str | None:
    value = await ctx.conn.scalar(select(totes.c.code).where(totes.c.order_id == order_id).limit(1))
    return str(value) if value is not None else None


async def set_tote(ctx: BatchContext, code: str, *, state: str, station: str | None = None) -> None:
    await ctx.conn.execute(
        update(totes)
        .where(totes.c.code == code)
        .values(state=state, station=station, updated_at=ctx.now)
    )
