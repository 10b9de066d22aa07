"""Pick faces, counts, moves and adjustments as the API shows and configures them.

Faces are configuration (a supervisor sets a face's SKU, minimum and maximum);
counts and moves are floor state, changed only by the station that owns the
location (``wcs.services.floor_requests``). What a counter is shown never includes
the book: counts are blind; a supervisor sees the differences.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.errors import NotFound, ValidationFailed
from wcs.floor import Floor
from wcs.persistence.db import reading, transaction
from wcs.persistence.inventory import PICKABLE_ZONE
from wcs.persistence.tables import (
    count_tasks,
    locations,
    move_tasks,
    pick_faces,
    skus,
    stock,
    stock_adjustments,
)
from wcs.timeutil import utcnow

FLOOR = "floor"


def station_of(floor: Floor | None, location: str) -> str:
    """The station that owns a location: the pick station whose panel lights it."""
    if floor is None:
        return FLOOR
    slot = floor.slot_of(location)
    if slot is None:
        return FLOOR
    station = floor.station_of_device(slot[0])
    return station.id if station is not None and station.kind == "pick" else FLOOR


@dataclass(frozen=True)
class FaceData:
    location: str
    sku: str
    min_qty: int
    max_qty: int


async def put_face(engine: AsyncEngine, face: FaceData) -> bool:
    """Create or change a pick face; True when created."""
    if face.max_qty < max(face.min_qty, 1):
        raise ValidationFailed(
            f"face {face.location}: the maximum ({face.max_qty}) must be at least the "
            f"minimum ({face.min_qty}) and above 0"
        )
    now = utcnow()
    async with transaction(engine) as conn:
        zone = await conn.scalar(select(locations.c.zone).where(locations.c.code == face.location))
        if zone is None:
            raise NotFound(f"location {face.location!r} does not exist; create it first")
        if zone != PICKABLE_ZONE:
            raise ValidationFailed(
                f"location {face.location} is in zone {zone!r}: faces are pick locations"
            )
        if await conn.scalar(select(skus.c.sku).where(skus.c.sku == face.sku)) is None:
            raise NotFound(f"SKU {face.sku!r} does not exist")
        values = {
            "sku": face.sku,
            "min_qty": face.min_qty,
            "max_qty": face.max_qty,
            "updated_at": now,
        }
        result = await conn.execute(
            update(pick_faces).where(pick_faces.c.location == face.location).values(values)
        )
        if result.rowcount:
            return False
        await conn.execute(
            insert(pick_faces).values(location=face.location, created_at=now, **values)
        )
        return True


async def faces(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with reading(engine).connect() as conn:
        rows = await conn.execute(
            select(
                pick_faces.c.location,
                pick_faces.c.sku,
                pick_faces.c.min_qty,
                pick_faces.c.max_qty,
                func.coalesce(stock.c.on_hand, 0).label("on_hand"),
                func.coalesce(stock.c.reserved, 0).label("reserved"),
            )
            .outerjoin(
                stock,
                and_(stock.c.location == pick_faces.c.location, stock.c.sku == pick_faces.c.sku),
            )
            .order_by(pick_faces.c.location)
        )
        return [dict(r._mapping) for r in rows]


def _count_view(row: Any, *, differences: bool) -> dict[str, Any]:
    view = {
        "id": row.id,
        "sku": row.sku,
        "location": row.location,
        "station": row.station,
        "reason": row.reason,
        "state": row.state,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "first_by": row.first_by,
        "result": row.result,
        "closed_at": row.closed_at,
    }
    if differences:
        view |= {
            "first_delta": row.first_delta,
            "last_delta": row.last_delta,
            "last_by": row.last_by,
            "counted": row.counted,
            "note": row.note,
        }
    return view


async def counts_view(
    engine: AsyncEngine,
    *,
    station: str | None = None,
    states: list[str] | None = None,
    location: str | None = None,
    limit: int = 200,
    differences: bool = False,
) -> list[dict[str, Any]]:
    """Counts, newest first. ``differences`` (supervisors): with what they found."""
    query = select(count_tasks).order_by(count_tasks.c.id.desc()).limit(limit)
    if station:
        query = query.where(count_tasks.c.station == station)
    if states:
        query = query.where(count_tasks.c.state.in_(states))
    if location:
        query = query.where(count_tasks.c.location == location)
    async with reading(engine).connect() as conn:
        rows = (await conn.execute(query)).all()
    return [_count_view(r, differences=differences) for r in rows]


async def count_station(engine: AsyncEngine, count_id: int) -> str:
    async with reading(engine).connect() as conn:
        station = await conn.scalar(
            select(count_tasks.c.station).where(count_tasks.c.id == count_id)
        )
    if station is None:
        raise NotFound(f"no count {count_id}")
    return str(station)


async def moves_view(
    engine: AsyncEngine,
    *,
    station: str | None = None,
    states: list[str] | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    query = select(move_tasks).order_by(move_tasks.c.id.desc()).limit(limit)
    if station:
        query = query.where(move_tasks.c.station == station)
    if states:
        query = query.where(move_tasks.c.state.in_(states))
    async with reading(engine).connect() as conn:
        rows = await conn.execute(query)
        return [dict(r._mapping) for r in rows]


async def adjustments_view(
    engine: AsyncEngine, *, since: datetime | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    query = select(stock_adjustments).order_by(stock_adjustments.c.id.desc()).limit(limit)
    if since is not None:
        query = query.where(stock_adjustments.c.at >= since)
    async with reading(engine).connect() as conn:
        rows = await conn.execute(query)
        return [dict(r._mapping) for r in rows]
