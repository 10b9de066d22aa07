"""SKUs, locations and the stock view (design §6 catalogue endpoints)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.domain import gs1
from wcs.errors import Conflict, NotFound, ValidationFailed
from wcs.persistence.db import reading, transaction
from wcs.persistence.inventory import RESERVABLE_ZONES
from wcs.persistence.tables import locations, reservations, sku_gtins, skus, stock
from wcs.timeutil import utcnow


@dataclass(frozen=True)
class SkuData:
    sku: str
    name: str
    weight_g: float
    length_mm: int
    width_mm: int
    height_mm: int
    barcode: str | None = None
    gtins: tuple[str, ...] = ()  # GTIN-14, validated
    min_shelf_life_days: int | None = None
    category: str | None = None
    price_minor: int | None = None
    currency: str | None = None
    product: str | None = None
    variant: str | None = None

    def all_gtins(self) -> list[str]:
        """Its GTINs, the barcode included when it is one (in order, once each)."""
        found = list(self.gtins)
        if self.barcode is not None:
            # An in-house barcode is no GTIN: it is matched as itself.
            with contextlib.suppress(ValidationFailed):
                found.append(gs1.gtin14(self.barcode))
        return list(dict.fromkeys(found))


@dataclass(frozen=True)
class LocationData:
    code: str
    zone: str
    aisle: int
    bay: int
    level: int


async def upsert_sku(engine: AsyncEngine, data: SkuData) -> bool:
    """Create or replace a SKU; True when it was created."""
    values: dict[str, Any] = {
        "name": data.name,
        "weight_g": data.weight_g,
        "length_mm": data.length_mm,
        "width_mm": data.width_mm,
        "height_mm": data.height_mm,
        "barcode": data.barcode,
        "min_shelf_life_days": data.min_shelf_life_days,
        "category": data.category,
        "price_minor": data.price_minor,
        "currency": data.currency,
        "product": data.product,
        "variant": data.variant,
        "updated_at": utcnow(),
    }
    gtins = data.all_gtins()
    async with transaction(engine) as conn:
        if data.barcode is not None:
            owner = await conn.scalar(
                select(skus.c.sku).where(
                    and_(skus.c.barcode == data.barcode, skus.c.sku != data.sku)
                )
            )
            if owner is not None:
                raise Conflict(f"barcode {data.barcode} already belongs to SKU {owner}")
        if gtins:
            taken = (
                await conn.execute(
                    select(sku_gtins.c.gtin, sku_gtins.c.sku).where(
                        and_(sku_gtins.c.gtin.in_(gtins), sku_gtins.c.sku != data.sku)
                    )
                )
            ).first()
            if taken is not None:
                raise Conflict(f"GTIN {taken.gtin} already belongs to SKU {taken.sku}")
        result = await conn.execute(update(skus).where(skus.c.sku == data.sku).values(**values))
        created = result.rowcount != 1
        if created:
            await conn.execute(insert(skus).values(sku=data.sku, **values))
        await conn.execute(
            delete(sku_gtins).where(
                and_(sku_gtins.c.sku == data.sku, sku_gtins.c.gtin.not_in(gtins))
            )
        )
        known = set(
            (await conn.scalars(select(sku_gtins.c.gtin).where(sku_gtins.c.sku == data.sku))).all()
        )
        new = [{"gtin": g, "sku": data.sku} for g in gtins if g not in known]
        if new:
            await conn.execute(insert(sku_gtins), new)
        return created


async def upsert_location(engine: AsyncEngine, data: LocationData) -> bool:
    values = {
        "zone": data.zone,
        "aisle": data.aisle,
        "bay": data.bay,
        "level": data.level,
        "updated_at": utcnow(),
    }
    async with transaction(engine) as conn:
        result = await conn.execute(
            update(locations).where(locations.c.code == data.code).values(**values)
        )
        if result.rowcount == 1:
            return False
        await conn.execute(insert(locations).values(code=data.code, **values))
        return True


async def get_sku(engine: AsyncEngine, sku: str) -> dict[str, Any]:
    """The SKU's row, with ``gtins``: its GTIN-14s in order."""
    async with reading(engine).connect() as conn:
        row = (await conn.execute(select(skus).where(skus.c.sku == sku))).mappings().first()
        if row is None:
            raise NotFound(f"SKU {sku!r} does not exist")
        gtins = (
            await conn.scalars(
                select(sku_gtins.c.gtin).where(sku_gtins.c.sku == sku).order_by(sku_gtins.c.gtin)
            )
        ).all()
    return {**row, "gtins": list(gtins)}


async def get_location(engine: AsyncEngine, code: str) -> dict[str, Any]:
    async with reading(engine).connect() as conn:
        row = (
            (await conn.execute(select(locations).where(locations.c.code == code)))
            .mappings()
            .first()
        )
    if row is None:
        raise NotFound(f"location {code!r} does not exist")
    return dict(row)


async def stock_view(engine: AsyncEngine, sku: str) -> dict[str, Any]:
    """On hand, reserved and available, in total and per location."""
    async with reading(engine).connect() as conn:
        exists = await conn.scalar(select(skus.c.sku).where(skus.c.sku == sku))
        if exists is None:
            raise NotFound(f"SKU {sku!r} does not exist")
        rows = (
            await conn.execute(
                select(
                    stock.c.location,
                    stock.c.on_hand,
                    stock.c.reserved,
                    locations.c.zone,
                )
                .join(locations, locations.c.code == stock.c.location)
                .where(stock.c.sku == sku)
                .order_by(stock.c.location)
            )
        ).all()
        in_totes = await conn.scalar(
            select(func.coalesce(func.sum(reservations.c.qty), 0)).where(
                and_(reservations.c.sku == sku, reservations.c.state == "picked")
            )
        )
    on_hand = sum(r.on_hand for r in rows)
    reserved = sum(r.reserved for r in rows)
    return {
        "sku": sku,
        "on_hand": on_hand,
        "reserved": reserved,
        "available": sum(r.on_hand - r.reserved for r in rows if r.zone in RESERVABLE_ZONES),
        "in_totes": int(in_totes or 0),
        "locations": [
            {
                "location": r.location,
                "zone": r.zone,
                "on_hand": r.on_hand,
                "reserved": r.reserved,
                "available": r.on_hand - r.reserved,
            }
            for r in rows
        ],
    }
