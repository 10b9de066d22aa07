"""Lookups shared by the handlers."""

from __future__ import annotations

import re
import time

from sqlalchemy import or_, select, update

from controller.context import BatchContext
from wcs.contract.payloads import ScanEvent, dlq_for
from wcs.domain.pick_scan import ItemCode, Refused, gtin_forms, read_item
from wcs.errors import IllegalTransition
from wcs.persistence.orders import transition
from wcs.persistence.outbox import OutboxMessage
from wcs.persistence.tables import orders, sku_gtins, skus, totes

_SKU_CACHE_S = 30.0


def cached_sku_for_code(ctx: BatchContext, code: str) -> str | None:
    """sku_for_code() from the cache alone: None when it would have to ask."""
    hit = ctx.sku_cache.get(code)
    if hit is not None and time.monotonic() - hit[0] < _SKU_CACHE_S:
        return hit[1]
    return None


async def sku_for_code(ctx: BatchContext, code: str, symbology: str | None = None) -> str | None:
    """The SKU a scanned item code stands for (None also for a refused GS1 code)."""
    item = read_item(code, symbology)
    return None if isinstance(item, Refused) else await sku_for_item(ctx, item)


async def sku_for_item(ctx: BatchContext, item: ItemCode) -> str | None:
    """The SKU of a scanned unit: by its GTIN (the SKU's GTINs, or a barcode written as
    any GTIN form), else by the code as scanned (a barcode, or the SKU code itself).

    Cached briefly: the catalogue changes rarely and this runs on every scan. A unit
    with a lot or a date is cached by its GTIN only, never by its code, so that the
    batched take (which goes by the code) never skips its shelf-life check."""
    now = time.monotonic()
    cache = ctx.sku_cache
    key = item.lookup_key
    hit = cache.get(key)
    if hit is not None and now - hit[0] < _SKU_CACHE_S:
        sku = hit[1]
    else:
        sku = None
        if item.gtin is not None:
            sku = await ctx.conn.scalar(
                select(sku_gtins.c.sku).where(sku_gtins.c.gtin == item.gtin)
            ) or await ctx.conn.scalar(
                select(skus.c.sku).where(skus.c.barcode.in_(gtin_forms(item.gtin))).limit(1)
            )
        if sku is None:
            sku = await ctx.conn.scalar(
                select(skus.c.sku)
                .where(or_(skus.c.barcode == item.code, skus.c.sku == item.code))
                .limit(1)
            )
    if len(cache) > 50_000:
        cache.clear()
    cache[key] = (now, sku)
    if not item.traced:
        cache[item.code] = (now, sku)
    return sku


async def min_shelf_life_days(ctx: BatchContext, sku: str) -> int:
    """Days of life a unit of ``sku`` must have left when picked (the SKU's, or the default)."""
    days = await ctx.conn.scalar(select(skus.c.min_shelf_life_days).where(skus.c.sku == sku))
    return int(days) if days is not None else ctx.settings.controller.min_shelf_life_days


def dead_letter_scan(ctx: BatchContext, device_id: str, event: ScanEvent, reason: str) -> None:
    """A scan refused for what its code says (a wrong GS1 label): to dlq with why,
    after commit like the batch's other messages, so bad labels show where ops look."""
    topic = ctx.topics.dev_evt(device_id, "scan")
    ctx.messages.append(
        OutboxMessage(ctx.topics.dlq(), dlq_for(topic, event.to_json(), reason).to_json())
    )


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
