"""The devices table: what each floor device last said about itself.

Drivers publish a retained ``dev/{id}/status`` (online / offline as Last Will /
fault with a detail). Whoever hears it - the controller, the API's live feed -
calls ``record_device_status``; several processes recording the same report is
harmless. ``updated_at`` is the time of the last *change* of state or detail, so
"offline for 10 minutes" can be read from it; a repeat of the same report changes
nothing and a report older than the stored change (a late redelivery, a second
publisher) is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.errors import ValidationFailed
from wcs.persistence.db import insert_skipping_duplicates, reading
from wcs.persistence.tables import device_status_history, devices
from wcs.timeutil import as_utc, utcnow

DEVICE_STATES = ("online", "offline", "fault")


@dataclass(frozen=True, slots=True)
class DeviceRow:
    id: str
    kind: str
    zone: str
    station: str | None
    state: str
    detail: str | None
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "zone": self.zone,
            "station": self.station,
            "state": self.state,
            "detail": self.detail,
            "updated_at": self.updated_at,
        }


def _insert_ignoring_duplicate(conn: AsyncConnection, values: dict[str, Any]) -> Any:
    return insert_skipping_duplicates(conn.dialect.name, devices, "id").values(**values)


async def record_device_status(
    conn: AsyncConnection,
    device_id: str,
    kind: str,
    zone: str,
    state: str,
    detail: str | None,
    *,
    at: datetime | None = None,
    station: str | None = None,
) -> bool:
    """Upsert one status report inside the caller's transaction; True when it changed.

    ``at`` is the report's own time (the payload's ``ts``); ``station`` is kept when
    not given.
    """
    if state not in DEVICE_STATES:
        raise ValidationFailed(f"device state {state!r} is not one of {', '.join(DEVICE_STATES)}")
    at = as_utc(at) if at is not None else utcnow()
    values: dict[str, Any] = {
        "id": device_id,
        "kind": kind,
        "zone": zone,
        "station": station,
        "state": state,
        "detail": detail,
        "updated_at": at,
    }
    for _ in range(2):
        row = (
            await conn.execute(
                select(devices.c.state, devices.c.detail, devices.c.updated_at)
                .where(devices.c.id == device_id)
                .with_for_update()
            )
        ).first()
        if row is None:
            inserted = await conn.execute(_insert_ignoring_duplicate(conn, values))
            if inserted.rowcount == 1:
                await _remember(conn, device_id, state, detail, at)
                return True
            continue  # another process inserted it first: update that row instead
        if at < as_utc(row.updated_at):
            return False
        changed = (row.state, row.detail) != (state, detail)
        changes: dict[str, Any] = {"kind": kind, "zone": zone}
        if station is not None:
            changes["station"] = station
        if changed:
            changes.update(state=state, detail=detail, updated_at=at)
            await _remember(conn, device_id, state, detail, at)
        await conn.execute(update(devices).where(devices.c.id == device_id).values(**changes))
        return changed
    return False


async def _remember(
    conn: AsyncConnection, device_id: str, state: str, detail: str | None, at: datetime
) -> None:
    await conn.execute(
        insert(device_status_history).values(device_id=device_id, state=state, detail=detail, at=at)
    )


async def device_history(
    engine: AsyncEngine, device_id: str, limit: int = 50
) -> list[dict[str, Any]]:
    """The device's state changes, newest first."""
    async with reading(engine).connect() as conn:
        rows = await conn.execute(
            select(device_status_history)
            .where(device_status_history.c.device_id == device_id)
            .order_by(device_status_history.c.at.desc(), device_status_history.c.id.desc())
            .limit(limit)
        )
        return [{"state": r.state, "detail": r.detail, "at": as_utc(r.at)} for r in rows]


async def list_devices(engine: AsyncEngine) -> list[DeviceRow]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(devices).order_by(devices.c.zone, devices.c.id))
        return [
            DeviceRow(r.id, r.kind, r.zone, r.station, r.state, r.detail, as_utc(r.updated_at))
            for r in rows
        ]
