"""What a QC bench's or a pack station's screen shows: the work at hand, read in one go.

- **QC**: the open check at the bench (the tote that arrived), every line of the
  order with the count scanned so far against the count expected, the operator's
  packaging and appearance verdicts and whether a photo is on file; once the check
  ends, its result and reason stay on screen for a while, with what to do next.
- **Pack**: the parcel being packed at the station: carton, weight expected against
  measured (with the tolerance), the SSCC label once printed and on which printer;
  a parcel refused by the scale stays on screen with what to do.

Read-only; the verdicts go through ``wcs.services.qc`` like the API's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.floor import Station
from wcs.persistence.db import reading
from wcs.persistence.tables import order_lines, orders, packages, qc_checks, skus, totes
from wcs.services.pod import PodImage
from wcs.settings import PackSettings
from wcs.timeutil import as_utc, utcnow

# A finished check or parcel stays on screen this long, so its outcome can be read.
SHOW_DONE = timedelta(minutes=2)
ACTIVE_PACKAGE = ("weighing", "labelling", "awaiting_scan")


async def _lines(
    conn: AsyncConnection, order_id: str, counted: dict[str, int]
) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(order_lines.c.sku, order_lines.c.qty, skus.c.name, skus.c.barcode, skus.c.weight_g)
        .outerjoin(skus, skus.c.sku == order_lines.c.sku)
        .where(order_lines.c.order_id == order_id)
        .order_by(order_lines.c.sku)
    )
    return [
        {
            "sku": r.sku,
            "name": r.name or r.sku,
            "barcode": r.barcode,
            "expected": int(r.qty),
            "scanned": int(counted.get(r.sku, 0)),
            "weight_g": float(r.weight_g) if r.weight_g is not None else None,
        }
        for r in rows
    ]


async def _tote(conn: AsyncConnection, order_id: str) -> str | None:
    value = await conn.scalar(
        select(totes.c.code).where(totes.c.order_id == order_id).order_by(totes.c.updated_at.desc())
    )
    return str(value) if value is not None else None


async def _qc(conn: AsyncConnection, station: Station, now: datetime) -> dict[str, Any]:
    row = (
        await conn.execute(
            select(qc_checks)
            .where(
                and_(
                    qc_checks.c.station == station.id,
                    (qc_checks.c.result.is_(None)) | (qc_checks.c.updated_at >= now - SHOW_DONE),
                )
            )
            .order_by(qc_checks.c.result.is_not(None), qc_checks.c.updated_at.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return {"order_id": None}
    lines = await _lines(conn, row.order_id, dict(row.scanned or {}))
    extra = {
        sku: n for sku, n in (row.scanned or {}).items() if sku not in {ln["sku"] for ln in lines}
    }
    return {
        "order_id": row.order_id,
        "tote": await _tote(conn, row.order_id),
        "lines": lines,
        "extra": extra,
        "expected": sum(ln["expected"] for ln in lines),
        "scanned": sum(ln["scanned"] for ln in lines) + sum(extra.values()),
        "packaging_ok": row.packaging_ok,
        "appearance_ok": row.appearance_ok,
        "photo": row.photo is not None,
        "result": row.result,
        "reason": row.note if row.result else None,
        "updated_at": as_utc(row.updated_at),
    }


async def _pack(
    conn: AsyncConnection, station: Station, now: datetime, pack: PackSettings
) -> dict[str, Any]:
    row = (
        await conn.execute(
            select(packages)
            .where(
                and_(
                    packages.c.station == station.id,
                    packages.c.state.in_(ACTIVE_PACKAGE)
                    | (packages.c.updated_at >= now - SHOW_DONE),
                )
            )
            .order_by(packages.c.state.in_(ACTIVE_PACKAGE).desc(), packages.c.updated_at.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return {"order_id": None}
    expected = float(row.expected_g)
    tolerance = max(expected * pack.weight_tolerance_pct / 100, pack.weight_tolerance_min_g)
    measured = float(row.measured_g) if row.measured_g is not None else None
    service = await conn.scalar(select(orders.c.service).where(orders.c.id == row.order_id))
    return {
        "order_id": row.order_id,
        "package_id": row.id,
        "tote": await _tote(conn, row.order_id),
        "lines": await _lines(conn, row.order_id, {}),
        "carton": row.carton,
        "service": service,
        "expected_g": round(expected, 1),
        "tolerance_g": round(tolerance, 1),
        "measured_g": measured,
        "difference_g": round(measured - expected, 1) if measured is not None else None,
        "weight_ok": None if measured is None else abs(measured - expected) <= tolerance,
        "sscc": row.sscc,
        "printer": row.printer,
        "state": row.state,
        "updated_at": as_utc(row.updated_at),
    }


async def station_view(
    engine: AsyncEngine, station: Station, pack: PackSettings, *, now: datetime | None = None
) -> dict[str, Any]:
    now = now or utcnow()
    async with reading(engine).connect() as conn:
        if station.kind == "qc":
            work = await _qc(conn, station, now)
        elif station.kind == "pack":
            work = await _pack(conn, station, now, pack)
        else:
            work = {"order_id": None}
    return {"station": station.id, "kind": station.kind, "at": now, **work}


def store_photo(data_dir: Path, order_id: str, photo: PodImage) -> str:
    """Keep the verdict's photo under the data directory, named by its hash; returns the
    path relative to the data directory (a repeat writes nothing new)."""
    folder = data_dir / "qc" / order_id
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / photo.relative_path
    if not target.exists():
        partial = target.with_suffix(target.suffix + ".part")
        partial.write_bytes(photo.data)
        partial.replace(target)
    return str(target.relative_to(data_dir))
