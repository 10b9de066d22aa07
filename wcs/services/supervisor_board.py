"""What the supervisor's first screen needs beyond the counts: orders at risk of
missing their deadline, throughput per zone against the plan, stations and their
state, devices down. Read-only, no personal data (order ids, states, deadlines).

- **At risk**: orders not yet shipped whose ship-by deadline (``sla_deadline``) is
  within the SLA margin or past, and parcels on their way past their promised
  delivery; most urgent first, with the stage they are stuck in.
- **Throughput per zone** over the last hour, from the event log: pick (orders
  reaching ``picked``), QC (``qc_passed``/``qc_failed``), pack (``packed``) and
  outbound (``shipped``). The plan for the hour is the forecast's expected orders
  when there is a forecast, otherwise the orders received in the last hour (what came
  in has to go out).
- **Stations** from the floor file: down (the station marked down, or one of its
  devices not online), busy (an order at hand) or idle, with what is at hand.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from wcs.domain.alert_rules import BEFORE_SHIPPING, IN_DELIVERY
from wcs.domain.states import STAGE_OF
from wcs.floor import Floor
from wcs.floor_map import group_by_place
from wcs.persistence.tables import (
    devices,
    order_events,
    orders,
    packages,
    pick_batches,
    pick_tasks,
    qc_checks,
    shipments,
    table,
    totes,
)
from wcs.services.shipments import IN_FLIGHT
from wcs.timeutil import as_utc

HOUR = timedelta(hours=1)
ZONE_STATES: dict[str, tuple[str, ...]] = {
    "pick": ("picked",),
    "qc": ("qc_passed", "qc_failed"),
    "pack": ("packed",),
    "outbound": ("shipped",),
}
AT_RISK_ROWS = 50


async def at_risk_orders(
    conn: AsyncConnection, now: datetime, margin: timedelta, limit: int = AT_RISK_ROWS
) -> dict[str, Any]:
    """``{"late": n, "at_risk": n, "orders": [...]}``, most urgent first."""
    deadline = orders.c.sla_deadline
    before = and_(orders.c.state.in_(sorted(BEFORE_SHIPPING)), deadline <= now + margin)
    due = (
        select(shipments.c.order_id, func.min(shipments.c.delivery_due).label("due"))
        .where(and_(shipments.c.status.in_(IN_FLIGHT), shipments.c.delivery_due.is_not(None)))
        .group_by(shipments.c.order_id)
        .subquery()
    )
    overdue = and_(orders.c.state.in_(sorted(IN_DELIVERY)), due.c.due < now)
    rows = (
        await conn.execute(
            select(orders.c.id, orders.c.state, orders.c.updated_at, deadline, due.c.due)
            .outerjoin(due, due.c.order_id == orders.c.id)
            .where(or_(before, overdue))
            .order_by(func.coalesce(due.c.due, deadline))
            .limit(500)
        )
    ).all()
    found = []
    for r in rows:
        shipping = r.state in BEFORE_SHIPPING
        when = as_utc(r.sla_deadline if shipping and r.sla_deadline else r.due)
        found.append(
            {
                "order_id": r.id,
                "state": r.state,
                "stage": STAGE_OF.get(r.state, r.state),
                "deadline": when,
                "deadline_kind": "ship_by" if shipping else "delivery",
                "left_s": (when - now).total_seconds(),
                "late": when < now,
                "since": as_utc(r.updated_at),
            }
        )
    found.sort(key=lambda o: o["left_s"])
    return {
        "late": sum(1 for o in found if o["late"]),
        "at_risk": sum(1 for o in found if not o["late"]),
        "orders": found[:limit],
    }


async def zone_throughput(
    conn: AsyncConnection, now: datetime, planned_per_hour: float | None
) -> dict[str, Any]:
    """Orders through each zone in the last hour against the plan for an hour."""
    since = now - HOUR
    wanted = sorted({s for states in ZONE_STATES.values() for s in states})
    rows = await conn.execute(
        select(order_events.c.to_state, func.count())
        .where(and_(order_events.c.to_state.in_(wanted), order_events.c.at > since))
        .group_by(order_events.c.to_state)
    )
    per_state = {state: int(n) for state, n in rows}
    source = "forecast"
    plan = planned_per_hour
    if plan is None:
        source = "intake"
        plan = float(
            await conn.scalar(
                select(func.count()).select_from(orders).where(orders.c.created_at > since)
            )
            or 0
        )
    zones = []
    for zone, states in ZONE_STATES.items():
        done = sum(per_state.get(s, 0) for s in states)
        zones.append(
            {
                "zone": zone,
                "done": done,
                "plan": round(plan, 1),
                "ratio": (done / plan) if plan else None,
            }
        )
    return {"window_s": HOUR.total_seconds(), "plan_source": source, "zones": zones}


async def station_states(conn: AsyncConnection, floor: Floor | None) -> list[dict[str, Any]]:
    """Every station of the floor file with its state and what is at hand."""
    if floor is None:
        return []
    device_rows = {r.id: r for r in await conn.execute(select(devices))}
    owners = {r.id: r for r in await conn.execute(select(table("stations")))}
    qc_at_hand = {
        r.station: r.order_id
        for r in await conn.execute(
            select(qc_checks.c.station, qc_checks.c.order_id)
            .where(qc_checks.c.result.is_(None))
            .order_by(qc_checks.c.updated_at)
        )
    }
    pack_at_hand = {
        r.station: r.order_id
        for r in await conn.execute(
            select(packages.c.station, packages.c.order_id)
            .where(packages.c.state.in_(("weighing", "labelling", "awaiting_scan")))
            .order_by(packages.c.updated_at)
        )
    }
    pick_at_hand = {
        r.station: int(r.n)
        for r in await conn.execute(
            select(pick_batches.c.station, func.count().label("n"))
            .where(pick_batches.c.state.in_(("open", "active")))
            .group_by(pick_batches.c.station)
        )
    }
    result = []
    for station in floor.stations:
        members = [
            d
            for d in (station.scanner, station.scale, station.printer, *station.panels)
            if d is not None
        ]
        down_devices = []
        for device_id in members:
            row = device_rows.get(device_id)
            if row is None or row.state != "online":
                state = row.state if row is not None else "unknown"
                down_devices.append({"id": device_id, "state": state})
        owner = owners.get(station.id)
        at_hand: str | None = None
        if station.kind == "qc":
            at_hand = qc_at_hand.get(station.id)
        elif station.kind == "pack":
            at_hand = pack_at_hand.get(station.id)
        batches = pick_at_hand.get(station.id, 0) if station.kind == "pick" else 0
        if (owner is not None and owner.down) or down_devices:
            state = "down"
        elif at_hand or batches:
            state = "busy"
        else:
            state = "idle"
        result.append(
            {
                "id": station.id,
                "kind": station.kind,
                "state": state,
                "order_id": at_hand,
                "batches": batches,
                "devices_down": down_devices,
                "down_reason": owner.down_reason if owner is not None and owner.down else None,
                "owner": owner.holder if owner is not None else None,
            }
        )
    return result


async def floor_live(conn: AsyncConnection, floor: Floor | None) -> dict[str, Any]:
    """What the floor map lights: PTL slots lit now (with the quantity and colour) and
    totes in flight by place."""
    if floor is None:
        return {"lit": [], "totes": {}}
    lit = [
        {"panel": r.ptl_device, "slot": int(r.ptl_slot), "qty": int(r.qty - r.qty_picked)}
        for r in await conn.execute(
            select(
                pick_tasks.c.ptl_device,
                pick_tasks.c.ptl_slot,
                pick_tasks.c.qty,
                pick_tasks.c.qty_picked,
            ).where(and_(pick_tasks.c.state == "lit", pick_tasks.c.ptl_device.is_not(None)))
        )
    ]
    rows = await conn.execute(
        select(totes.c.code, totes.c.state, totes.c.station).where(totes.c.state != "free")
    )
    return {
        "lit": lit,
        "totes": group_by_place(floor, [(r.code, r.state, r.station) for r in rows]),
    }


def devices_down(all_devices: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Devices not online, the longest down first."""
    down = [
        {**d, "down_s": (now - as_utc(d["updated_at"])).total_seconds()}
        for d in all_devices
        if d["state"] != "online"
    ]
    down.sort(key=lambda d: -d["down_s"])
    return down
