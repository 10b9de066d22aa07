"""The own fleet's couriers and their absences (design §1 step 6, own fleet).

A courier's id is the ``subject`` of their courier token, so the courier page, the
proof-of-delivery upload and the planned routes all name the same person. Couriers
are never deleted (their routes and deliveries keep pointing at them); a courier who
leaves is deactivated and is no longer planned.

An absence (``courier_absences``) takes a courier out of one day's plans: the
dispatcher records it when a courier calls in sick or a van breaks down, and the
day is re-planned without them (``wcs.services.fleet_plans.courier_unavailable``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.errors import Conflict, NotFound, ValidationFailed
from wcs.persistence.db import transaction
from wcs.persistence.tables import (
    courier_absences,
    couriers,
    fleet_routes,
    proofs_of_delivery,
    shipments,
)
from wcs.timeutil import as_utc, utcnow

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True, slots=True)
class CourierSpec:
    name: str
    capacity_kg: float
    capacity_m3: float
    shift_start_min: int
    shift_end_min: int
    depot_lat: float
    depot_lon: float
    end_lat: float | None = None
    end_lon: float | None = None
    phone: str | None = None
    active: bool = True

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValidationFailed("a courier needs a name")
        if self.capacity_kg <= 0 or self.capacity_m3 <= 0:
            raise ValidationFailed("vehicle capacity (kg and m³) must be positive")
        if not 0 <= self.shift_start_min < self.shift_end_min <= 2 * MINUTES_PER_DAY:
            raise ValidationFailed(
                "the shift must end after it starts (a night shift may run past midnight, "
                "up to 48:00)"
            )
        if (self.end_lat is None) != (self.end_lon is None):
            raise ValidationFailed("give both end_lat and end_lon, or neither")


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_hhmm(text: str) -> int:
    """``"08:30"`` -> 510; up to ``"48:00"`` for shifts past midnight."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if not match or int(match.group(2)) >= 60:
        raise ValidationFailed(f"{text!r} is not a time of day like 08:30")
    minutes = int(match.group(1)) * 60 + int(match.group(2))
    if minutes > 2 * MINUTES_PER_DAY:
        raise ValidationFailed(f"{text!r} is past 48:00")
    return minutes


def courier_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "phone": row.phone,
        "capacity_kg": row.capacity_kg,
        "capacity_m3": row.capacity_m3,
        "shift_start": hhmm(row.shift_start_min),
        "shift_end": hhmm(row.shift_end_min),
        "depot": {"lat": row.depot_lat, "lon": row.depot_lon},
        "end": (
            {"lat": row.end_lat, "lon": row.end_lon}
            if row.end_lat is not None and row.end_lon is not None
            else None
        ),
        "active": bool(row.active),
        "created_at": as_utc(row.created_at),
        "updated_at": as_utc(row.updated_at),
    }


async def courier_row(conn: AsyncConnection, courier_id: str, *, lock: bool = False) -> Row[Any]:
    query = select(couriers).where(couriers.c.id == courier_id)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise NotFound(f"courier {courier_id} does not exist", courier_id=courier_id)
    return row


async def put_courier(
    engine: AsyncEngine, courier_id: str, spec: CourierSpec
) -> tuple[bool, dict[str, Any]]:
    """Create or replace; returns (created, view)."""
    if not ID_PATTERN.match(courier_id):
        raise ValidationFailed(
            "a courier id is 1-64 letters, digits and _ . : - (the courier token's subject)"
        )
    now = utcnow()
    values = {
        "name": spec.name.strip()[:200],
        "phone": spec.phone,
        "capacity_kg": spec.capacity_kg,
        "capacity_m3": spec.capacity_m3,
        "shift_start_min": spec.shift_start_min,
        "shift_end_min": spec.shift_end_min,
        "depot_lat": spec.depot_lat,
        "depot_lon": spec.depot_lon,
        "end_lat": spec.end_lat,
        "end_lon": spec.end_lon,
        "active": spec.active,
        "updated_at": now,
    }
    async with transaction(engine) as conn:
        exists = await conn.scalar(
            select(couriers.c.id).where(couriers.c.id == courier_id).with_for_update()
        )
        if exists is None:
            await conn.execute(insert(couriers).values(id=courier_id, created_at=now, **values))
        else:
            await conn.execute(update(couriers).where(couriers.c.id == courier_id).values(**values))
        row = await courier_row(conn, courier_id)
    return exists is None, courier_view(row)


async def delete_courier(engine: AsyncEngine, courier_id: str) -> None:
    """Delete a courier who never drove: no route, absence, shipment or proof of
    delivery names them (an entry made by mistake). A courier with a history is kept
    and retired instead (``active`` false), so that history keeps its name."""
    async with transaction(engine) as conn:
        await courier_row(conn, courier_id, lock=True)
        for table in (fleet_routes, courier_absences, shipments, proofs_of_delivery):
            named = await conn.scalar(
                select(table.c.courier_id).where(table.c.courier_id == courier_id).limit(1)
            )
            if named is not None:
                raise Conflict(
                    f"courier {courier_id} has routes or deliveries on record and is kept; "
                    "retire them with PUT and active false",
                    courier_id=courier_id,
                )
        await conn.execute(delete(couriers).where(couriers.c.id == courier_id))


async def get_courier(engine: AsyncEngine, courier_id: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        return courier_view(await courier_row(conn, courier_id))


async def list_couriers(engine: AsyncEngine, *, active: bool | None = None) -> list[dict[str, Any]]:
    query = select(couriers).order_by(couriers.c.id)
    if active is not None:
        query = query.where(couriers.c.active == active)
    async with engine.connect() as conn:
        return [courier_view(r) for r in (await conn.execute(query)).all()]


async def record_absence(
    conn: AsyncConnection, courier_id: str, day: date, reason: str, *, actor: str, at: datetime
) -> bool:
    """Within the caller's transaction; False when the absence was already recorded."""
    await courier_row(conn, courier_id)
    seen = await conn.scalar(
        select(courier_absences.c.courier_id).where(
            and_(courier_absences.c.courier_id == courier_id, courier_absences.c.day == day)
        )
    )
    if seen is not None:
        return False
    await conn.execute(
        insert(courier_absences).values(
            courier_id=courier_id,
            day=day,
            reason=reason.strip()[:500] or "unavailable",
            created_by=actor[:64],
            created_at=at,
        )
    )
    return True


async def absences(engine: AsyncEngine, day: date) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(courier_absences)
                .where(courier_absences.c.day == day)
                .order_by(courier_absences.c.courier_id)
            )
        ).all()
    return [
        {
            "courier_id": r.courier_id,
            "date": r.day.isoformat(),
            "reason": r.reason,
            "created_by": r.created_by,
            "created_at": as_utc(r.created_at),
        }
        for r in rows
    ]
