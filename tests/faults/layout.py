"""The drilled floor: the controller benchmark's 50 pick stations, a few of them real.

Every station is a PTL panel of 8 slots plus a scanner, seeded in mid-shift (batches
released, totes bound, nothing picked yet) exactly as ``bench/b_controller.py`` seeds
it. Most stations are played straight on MQTT, as their drivers would publish. The
first few are *simulated devices*: a Modbus PTL panel and a TCP serial scanner from
``device_sim``, bridged by a real ``wcs drivers`` process - so device unplugs and
driver crashes are part of the drill too.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select, text

from bench.b_controller import STATIONS, floor_doc, seed
from wcs.floor import Floor
from wcs.persistence.db import make_engine
from wcs.persistence.tables import stock


def station_of(device_id: str) -> int:
    """``ptl-7`` / ``scan-7`` -> 7."""
    return int(device_id.rsplit("-", 1)[1])


def controller_floor(site: str, sim_stations: Sequence[int]) -> dict[str, Any]:
    """The floor the controller runs: all stations; simulated ones with real links."""
    doc = copy.deepcopy(floor_doc(site))
    for device in doc["devices"]:
        k = station_of(device["id"])
        if k in sim_stations and device["kind"] == "scanner":
            # Served on a free port by the simulator; the port here is a placeholder.
            device["link"] = {"url": f"socket://127.0.0.1:{40000 + k}"}
    return doc


def sim_floor(doc: dict[str, Any], sim_stations: Sequence[int]) -> Floor:
    """Only the simulated stations' devices: what SimFloor serves and drivers open."""
    devices = [d for d in doc["devices"] if station_of(d["id"]) in sim_stations]
    stations = [s for s in doc["stations"] if int(s["id"][1:]) in sim_stations]
    return Floor.model_validate({"site": doc["site"], "devices": devices, "stations": stations})


def write_floor(path: Path, floor: dict[str, Any] | Floor) -> Path:
    doc = floor.model_dump(mode="json", exclude_none=True) if isinstance(floor, Floor) else floor
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def direct_stations(sim_stations: Sequence[int]) -> list[int]:
    return [k for k in range(1, STATIONS + 1) if k not in sim_stations]


async def seed_floor(db_url: str, orders_per_station: int) -> None:
    """The benchmark's mid-shift floor, with id sequences moved past the rows it wrote.

    The benchmark bulk-loads rows with explicit ids and never serves the API; here the
    API takes orders on the same database, so its inserts must not reuse those ids."""
    await seed(db_url, orders_per_station)
    engine = make_engine(db_url)
    try:
        async with engine.begin() as conn:
            for name in ("order_lines", "reservations", "order_events", "pick_tasks", "stock"):
                await conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'),"
                        f" (SELECT coalesce(max(id), 0) + 1 FROM {name}), false)"
                    )
                )
    finally:
        await engine.dispose()


async def stock_snapshot(db_url: str) -> dict[tuple[str, str], int]:
    """On-hand units per (sku, location) before the drill: the ledger's opening balance."""
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(stock.c.sku, stock.c.location, stock.c.on_hand))
            return {(r.sku, r.location): int(r.on_hand) for r in rows}
    finally:
        await engine.dispose()
