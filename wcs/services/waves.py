"""Wave release: reserved orders become batches of pick tasks (design §1 step 3).

One transaction: the released orders are locked, planned with the pure wave/batch
planner, written as a wave, its batches and one pick task per reservation (in
walking order), and moved ``reserved -> pick_planned``. Pick stations get batches
round-robin by their open work, so no picker idles while another has a queue.

Only orders whose units are all at pick faces are released; one holding units in
reserve waits until a replenishment move has brought them to a face.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.contract.topics import Topics
from wcs.domain.batching import order_by_order
from wcs.domain.geometry import Location, layouts_for
from wcs.domain.picking import PickLine, PickOrder
from wcs.domain.states import OrderState
from wcs.domain.waves import WavePolicy, plan_wave
from wcs.floor import Floor
from wcs.ids import new_id
from wcs.persistence.db import transaction
from wcs.persistence.inventory import PICKABLE_ZONE
from wcs.persistence.orders import transition
from wcs.persistence.tables import (
    locations,
    orders,
    pick_batches,
    pick_tasks,
    reservations,
    waves,
)
from wcs.timeutil import as_utc, utcnow


@dataclass(frozen=True)
class ReleasedBatch:
    id: str
    station: str | None
    orders: list[str]
    stops: list[str]
    distance_m: float


@dataclass(frozen=True)
class ReleasedWave:
    id: str | None
    batches: list[ReleasedBatch]
    distance_m: float
    baseline_m: float
    held: list[str]
    at_risk: list[str]


# Orders holding units in reserve wait for a replenishment move to bring them to a
# face (``wcs.domain.floor.replenish``): pickers are never sent to a reserve shelf.
_WAITING_FOR_A_MOVE = (
    select(reservations.c.order_id)
    .join(locations, locations.c.code == reservations.c.location)
    .where(and_(reservations.c.state == "active", locations.c.zone != PICKABLE_ZONE))
)


async def _pickable(conn: Any, limit: int) -> list[PickOrder]:
    rows = (
        await conn.execute(
            select(
                orders.c.id,
                orders.c.priority,
                orders.c.sla_deadline,
                orders.c.updated_at,
                reservations.c.id.label("rid"),
                reservations.c.sku,
                reservations.c.qty,
                locations.c.code,
                locations.c.aisle,
                locations.c.bay,
                locations.c.level,
                locations.c.zone,
            )
            .join(reservations, reservations.c.order_id == orders.c.id)
            .join(locations, locations.c.code == reservations.c.location)
            .where(
                and_(
                    orders.c.state == OrderState.RESERVED,
                    reservations.c.state == "active",
                    orders.c.id.not_in(_WAITING_FOR_A_MOVE),
                )
            )
            .order_by(orders.c.priority.desc(), orders.c.created_at, orders.c.id)
            .limit(limit * 20)
        )
    ).all()
    grouped: dict[str, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row.id, []).append(row)
    result = []
    for order_id, lines in list(grouped.items())[:limit]:
        head = lines[0]
        result.append(
            PickOrder(
                order_id=order_id,
                lines=tuple(
                    PickLine(r.rid, r.sku, r.qty, Location(r.code, r.aisle, r.bay, r.level, r.zone))
                    for r in lines
                ),
                priority=head.priority,
                sla_deadline=as_utc(head.sla_deadline) if head.sla_deadline else None,
                ready_at=as_utc(head.updated_at),
            )
        )
    return result


async def _station_load(conn: Any, station_ids: list[str]) -> Counter[str]:
    load: Counter[str] = Counter(dict.fromkeys(station_ids, 0))
    rows = await conn.execute(
        select(pick_batches.c.station, func.count())
        .where(and_(pick_batches.c.state != "done", pick_batches.c.station.in_(station_ids)))
        .group_by(pick_batches.c.station)
    )
    for station, n in rows:
        load[station] = int(n)
    return load


async def release_wave(
    engine: AsyncEngine,
    topics: Topics,
    floor: Floor | None,
    *,
    actor: str,
    policy: WavePolicy | None = None,
    now: datetime | None = None,
) -> ReleasedWave:
    """Release reserved orders now, in a transaction of its own (see ``release_in``)."""
    async with transaction(engine) as conn:
        return await release_in(conn, topics, floor, actor=actor, policy=policy, now=now)


async def release_in(
    conn: AsyncConnection,
    topics: Topics,
    floor: Floor | None,
    *,
    actor: str,
    policy: WavePolicy | None = None,
    now: datetime | None = None,
) -> ReleasedWave:
    """Release reserved orders now; answers the batches with stops and distances."""
    now = now or utcnow()
    policy = policy or WavePolicy()
    candidates = await _pickable(conn, policy.max_orders * 3)
    if not candidates:
        return ReleasedWave(None, [], 0.0, 0.0, [], [])
    all_locations = [
        Location(r.code, r.aisle, r.bay, r.level, r.zone)
        for r in await conn.execute(select(locations).where(locations.c.zone == "pick"))
    ]
    layouts = layouts_for(all_locations)
    plan = plan_wave(candidates, now, layouts, policy)
    released = {o.order_id: o for o in plan.selection.released}
    baseline = sum(b.distance_m for b in order_by_order(list(released.values()), layouts))
    wave_id = new_id("w")
    await conn.execute(
        insert(waves).values(
            id=wave_id,
            released_at=now,
            released_by=actor,
            orders=len(released),
            distance_m=plan.distance_m,
            baseline_m=baseline,
        )
    )
    stations = [s.id for s in floor.stations if s.kind == "pick"] if floor else []
    load = await _station_load(conn, stations) if stations else Counter[str]()
    out: list[ReleasedBatch] = []
    task_rows: list[dict[str, Any]] = []
    batch_rows: list[dict[str, Any]] = []
    for batch in plan.batches:
        station = min(stations, key=lambda s: (load[s], s)) if stations else None
        if station:
            load[station] += 1
        batch_id = new_id("b")
        batch_rows.append(
            {
                "id": batch_id,
                "wave_id": wave_id,
                "station": station,
                "state": "open",
                "zone": ",".join(batch.zones),
                "distance_m": batch.distance_m,
                "stops": list(batch.stops),
                "created_at": now,
            }
        )
        stop_rank = {code: n for n, code in enumerate(batch.stops)}
        line_ids = await _line_ids(conn, [t.line for pl in batch.pick_lists for t in pl.tasks])
        for pick_list in batch.pick_lists:
            for task in pick_list.tasks:
                slot = floor.slot_of(task.location.code) if floor else None
                task_rows.append(
                    {
                        "batch_id": batch_id,
                        "seq": stop_rank.get(task.location.code, len(stop_rank)),
                        "order_id": task.order_id,
                        "line_id": line_ids[task.line],
                        "reservation_id": task.line,
                        "sku": task.sku,
                        "location": task.location.code,
                        "qty": task.qty,
                        "qty_picked": 0,
                        "state": "open",
                        "ptl_device": slot[0] if slot else None,
                        "ptl_slot": slot[1] if slot else None,
                        "updated_at": now,
                    }
                )
        out.append(
            ReleasedBatch(
                batch_id, station, list(batch.orders), list(batch.stops), batch.distance_m
            )
        )
    await conn.execute(insert(pick_batches), batch_rows)
    await conn.execute(insert(pick_tasks), task_rows)
    for order_id in released:
        await transition(
            conn,
            topics,
            order_id,
            OrderState.PICK_PLANNED,
            actor=actor,
            reason=f"wave {wave_id}",
            at=now,
        )
    return ReleasedWave(
        wave_id,
        out,
        plan.distance_m,
        baseline,
        [o.order_id for o in plan.selection.held],
        list(plan.selection.at_risk),
    )


async def _line_ids(conn: Any, reservation_ids: list[int]) -> dict[int, int]:
    rows = await conn.execute(
        select(reservations.c.id, reservations.c.line_id).where(
            reservations.c.id.in_(reservation_ids)
        )
    )
    return {r.id: r.line_id for r in rows}
