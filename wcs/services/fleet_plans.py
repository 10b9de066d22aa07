"""Day plans of the own fleet: which courier takes which parcel, in which order, when.

**Parcels of day D**: own-fleet shipments booked or on their way (``PLANNABLE``) of
orders neither cancelled nor closed, except those

- on a locked route of D (kept exactly as they are),
- already attempted on D (delivered, or a failed attempt: the next try is the next
  day's plan),
- waiting on an active route of another day from today on (planned there).

Where: the order's own lat/lon, else the centre of its postal code
(``wcs.fleet_data``); a parcel with neither stays unassigned with that reason. When:
the window the dispatcher recorded for it (``fleet_parcels``), else any time of a
shift. Size: the shipment's weight and carton.

**Couriers of day D**: active, not absent on D, and without a locked route on D.

**A plan** is solved in a child process (``wcs.services.fleet``), checked here
against an instance built here (``wcs.domain.fleet.check_plan``: windows, capacity,
shifts; any violation refuses the plan) and written in one transaction: the day's
unlocked active routes become ``replaced``, the new routes and their stops are
inserted with their times, and each parcel's shipment gets its courier (logged in
the shipment's history), so the proof of delivery is accepted from that courier.

**Re-plans** keep locked routes: a dispatcher planning again, a courier dropping out
(``courier_unavailable``: their route goes, locked or not, and the day is solved
again without them) and ``FleetReplanner``, which re-plans days from today on when
parcels appear that the day's plan has neither routed nor listed as unassigned -
a parcel just allocated to the own fleet, or one whose route was dropped.

**Races**: a plan is computed from a snapshot. The write checks that the snapshot
still holds (no newer plan of the day - ``(day, version)`` is unique -, the same
locked routes, every planned parcel and courier still plannable); if not, the day is
solved once more from a fresh snapshot, then the request is refused with 409.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import TracebackType
from typing import Any, Self
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.domain.fleet import (
    Courier,
    GeoPoint,
    Instance,
    Plan,
    PlanReport,
    Stop,
    TravelModel,
    Window,
    build_instance,
    check_plan,
    unassigned_reason,
)
from wcs.domain.states import OrderState
from wcs.errors import Conflict, NotFound, ValidationFailed
from wcs.fleet_data import centroids
from wcs.ids import new_id
from wcs.persistence.db import OUTAGE_ERRORS, transaction
from wcs.persistence.leases import Lease
from wcs.persistence.tables import (
    courier_absences,
    couriers,
    fleet_parcels,
    fleet_plans,
    fleet_routes,
    fleet_stops,
    orders,
    shipments,
)
from wcs.retry import Outage
from wcs.services.fleet import PlanningFailed, SolverOptions, run_solver, solver_name
from wcs.services.fleet_couriers import record_absence
from wcs.services.shipments import log_shipment_event
from wcs.settings import Settings
from wcs.tasks import background, every
from wcs.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)

S = OrderState
PLANNABLE: tuple[str, ...] = (
    "booked",
    "shipped",
    "in_transit",
    "out_for_delivery",
    "delivery_failed",
    "delayed",
)
HORIZON_S = 2 * 24 * 3600  # a plan day's times run from local midnight to +48 h
REPLANNER_TASK = "fleet-replanner"


@dataclass(frozen=True, slots=True)
class PlanningConfig:
    travel: TravelModel
    options: SolverOptions
    service_s: int
    tz: ZoneInfo

    @classmethod
    def from_settings(cls, settings: Settings) -> PlanningConfig:
        fleet = settings.fleet
        return cls(
            travel=TravelModel(road_factor=fleet.road_factor, speed_kmh=fleet.speed_kmh),
            options=SolverOptions(
                budget_s=fleet.solve_budget_s,
                threads=fleet.solver_threads,
                part_size=fleet.part_size,
            ),
            service_s=round(fleet.service_min * 60),
            tz=ZoneInfo(settings.monitoring.timezone),
        )

    def today(self, now: datetime | None = None) -> date:
        return (now or utcnow()).astimezone(self.tz).date()

    def origin(self, day: date) -> datetime:
        """Local midnight of ``day``, in UTC: second 0 of the day's instance."""
        return datetime.combine(day, time(0), tzinfo=self.tz).astimezone(UTC)


class StaleSnapshot(Exception):
    """What a plan was computed from changed before it could be written."""


@dataclass(frozen=True, slots=True)
class ParcelInfo:
    shipment_id: str
    order_id: str
    point: GeoPoint | None
    geo_source: str | None
    window_start: datetime | None
    window_end: datetime | None
    weight_g: int
    volume_cm3: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    day: date
    version: int
    locked: frozenset[str]  # route ids
    couriers: tuple[Row[Any], ...]
    parcels: tuple[ParcelInfo, ...]


@dataclass(frozen=True, slots=True)
class Computed:
    snapshot: Snapshot
    instance: Instance
    plan: Plan
    report: PlanReport
    unassigned: tuple[dict[str, str], ...]
    parts: int
    solve_ms: int


# -- snapshot --------------------------------------------------------------------------


def _volume_cm3(length_mm: int, width_mm: int, height_mm: int) -> int:
    return max(1, math.ceil(length_mm * width_mm * height_mm / 1000))


async def _eligible_rows(conn: AsyncConnection, day: date, today: date) -> Sequence[Any]:
    on_day = and_(fleet_stops.c.route_id == fleet_routes.c.id, fleet_routes.c.day == day)
    attempted = (
        select(fleet_stops.c.shipment_id)
        .select_from(fleet_stops.join(fleet_routes, fleet_stops.c.route_id == fleet_routes.c.id))
        .where(and_(on_day, fleet_stops.c.outcome.is_not(None)))
    )
    locked = (
        select(fleet_stops.c.shipment_id)
        .select_from(fleet_stops.join(fleet_routes, fleet_stops.c.route_id == fleet_routes.c.id))
        .where(
            and_(on_day, fleet_routes.c.status == "active", fleet_routes.c.locked_at.is_not(None))
        )
    )
    elsewhere = (
        select(fleet_stops.c.shipment_id)
        .select_from(fleet_stops.join(fleet_routes, fleet_stops.c.route_id == fleet_routes.c.id))
        .where(
            and_(
                fleet_routes.c.day != day,
                fleet_routes.c.day >= today,
                fleet_routes.c.status == "active",
                fleet_stops.c.outcome.is_(None),
            )
        )
    )
    query = (
        select(
            shipments.c.id,
            shipments.c.order_id,
            shipments.c.weight_g,
            shipments.c.length_mm,
            shipments.c.width_mm,
            shipments.c.height_mm,
            orders.c.lat,
            orders.c.lon,
            orders.c.country,
            orders.c.postal_code,
            fleet_parcels.c.window_start,
            fleet_parcels.c.window_end,
        )
        .join(orders, orders.c.id == shipments.c.order_id)
        .outerjoin(fleet_parcels, fleet_parcels.c.shipment_id == shipments.c.id)
        .where(
            and_(
                shipments.c.own_fleet.is_(True),
                shipments.c.status.in_(PLANNABLE),
                orders.c.state.not_in((S.CANCELLED, S.CLOSED)),
                shipments.c.id.not_in(attempted),
                shipments.c.id.not_in(locked),
                shipments.c.id.not_in(elsewhere),
            )
        )
        .order_by(shipments.c.id)
    )
    return (await conn.execute(query)).all()


def _parcel(row: Row[Any]) -> ParcelInfo:
    point: GeoPoint | None = None
    source: str | None = None
    if row.lat is not None and row.lon is not None:
        point, source = GeoPoint(row.lat, row.lon), "order"
    else:
        found = centroids().locate(row.country, row.postal_code)
        if found is not None:
            point, source = found.point, found.source
    return ParcelInfo(
        shipment_id=row.id,
        order_id=row.order_id,
        point=point,
        geo_source=source,
        window_start=as_utc(row.window_start) if row.window_start else None,
        window_end=as_utc(row.window_end) if row.window_end else None,
        weight_g=max(1, math.ceil(row.weight_g)),
        volume_cm3=_volume_cm3(row.length_mm, row.width_mm, row.height_mm),
    )


async def _available_couriers(conn: AsyncConnection, day: date) -> tuple[Row[Any], ...]:
    absent = select(courier_absences.c.courier_id).where(courier_absences.c.day == day)
    busy = select(fleet_routes.c.courier_id).where(
        and_(
            fleet_routes.c.day == day,
            fleet_routes.c.status == "active",
            fleet_routes.c.locked_at.is_not(None),
        )
    )
    rows = await conn.execute(
        select(couriers)
        .where(
            and_(
                couriers.c.active.is_(True),
                couriers.c.id.not_in(absent),
                couriers.c.id.not_in(busy),
            )
        )
        .order_by(couriers.c.id)
    )
    return tuple(rows.all())


async def _version(conn: AsyncConnection, day: date) -> int:
    found = await conn.scalar(
        select(func.max(fleet_plans.c.version)).where(fleet_plans.c.day == day)
    )
    return int(found or 0)


async def _locked_routes(conn: AsyncConnection, day: date) -> frozenset[str]:
    ids = await conn.scalars(
        select(fleet_routes.c.id).where(
            and_(
                fleet_routes.c.day == day,
                fleet_routes.c.status == "active",
                fleet_routes.c.locked_at.is_not(None),
            )
        )
    )
    return frozenset(ids.all())


async def snapshot(conn: AsyncConnection, day: date, today: date) -> Snapshot:
    return Snapshot(
        day=day,
        version=await _version(conn, day),
        locked=await _locked_routes(conn, day),
        couriers=await _available_couriers(conn, day),
        parcels=tuple(_parcel(r) for r in await _eligible_rows(conn, day, today)),
    )


# -- solving ---------------------------------------------------------------------------


def _courier(row: Row[Any]) -> Courier:
    depot = GeoPoint(row.depot_lat, row.depot_lon)
    end = GeoPoint(row.end_lat, row.end_lon) if row.end_lat is not None else depot
    return Courier(
        row.id,
        capacity_g=math.floor(row.capacity_kg * 1000),
        capacity_cm3=math.floor(row.capacity_m3 * 1_000_000),
        shift=Window(row.shift_start_min * 60, row.shift_end_min * 60),
        start=depot,
        end=end,
    )


def _stop_window(parcel: ParcelInfo, origin: datetime, day: date) -> Window | str:
    """The parcel's window in seconds of the day, or why it cannot be on this day."""
    if parcel.window_start is None and parcel.window_end is None:
        return Window(0, HORIZON_S)
    start = (parcel.window_start - origin).total_seconds() if parcel.window_start else 0
    end = (parcel.window_end - origin).total_seconds() if parcel.window_end else HORIZON_S
    if end < 0 or start > HORIZON_S:
        return f"its delivery window is not on {day.isoformat()}"
    return Window(max(0, math.ceil(start)), min(HORIZON_S, math.floor(end)))


def _stops(snap: Snapshot, config: PlanningConfig) -> tuple[list[Stop], list[dict[str, str]]]:
    origin = config.origin(snap.day)
    stops: list[Stop] = []
    unplaceable: list[dict[str, str]] = []
    for parcel in snap.parcels:
        if parcel.point is None:
            unplaceable.append(
                {
                    "shipment_id": parcel.shipment_id,
                    "order_id": parcel.order_id,
                    "reason": "no coordinates: the order has no lat/lon and its postal code is "
                    "not in the centroid table",
                }
            )
            continue
        window = _stop_window(parcel, origin, snap.day)
        if isinstance(window, str):
            unplaceable.append(
                {"shipment_id": parcel.shipment_id, "order_id": parcel.order_id, "reason": window}
            )
            continue
        stops.append(
            Stop(
                parcel.shipment_id,
                parcel.point,
                parcel.weight_g,
                parcel.volume_cm3,
                window,
                config.service_s,
            )
        )
    return stops, unplaceable


async def compute(engine: AsyncEngine, day: date, config: PlanningConfig) -> Computed:
    async with engine.connect() as conn:
        snap = await snapshot(conn, day, config.today())
    fleet = [_courier(r) for r in snap.couriers]
    stops, unplaceable = _stops(snap, config)
    result = await run_solver(fleet, stops, config.travel, config.options)
    instance = build_instance(fleet, stops, config.travel)
    report = check_plan(instance, result.plan)
    if report.violations:
        listed = "; ".join(v.message for v in report.violations[:5])
        raise PlanningFailed(
            f"the solver's plan for {day.isoformat()} breaks {len(report.violations)} rule(s) "
            f"and was not used: {listed}"
        )
    by_order = {p.shipment_id: p.order_id for p in snap.parcels}
    unassigned = [
        *unplaceable,
        *(
            {
                "shipment_id": s,
                "order_id": by_order[s],
                "reason": unassigned_reason(instance, s),
            }
            for s in result.plan.unassigned
        ),
    ]
    return Computed(
        snap,
        instance,
        result.plan,
        report,
        tuple(unassigned),
        result.parts,
        round(result.seconds * 1000),
    )


# -- storing ---------------------------------------------------------------------------


async def _still_holds(conn: AsyncConnection, computed: Computed, today: date) -> None:
    snap = computed.snapshot
    day = snap.day
    if await _version(conn, day) != snap.version:
        raise StaleSnapshot(f"another plan of {day} was made meanwhile")
    if await _locked_routes(conn, day) != snap.locked:
        raise StaleSnapshot(f"routes of {day} were locked or unlocked meanwhile")
    planned = {s for r in computed.plan.routes for s in r.stop_ids}
    eligible = {r.id for r in await _eligible_rows(conn, day, today)}
    if not planned <= eligible:
        raise StaleSnapshot(f"parcels changed meanwhile: {sorted(planned - eligible)[:5]}")
    used = {r.courier_id for r in computed.plan.routes}
    available = {r.id for r in await _available_couriers(conn, day)}
    if not used <= available:
        raise StaleSnapshot(f"couriers became unavailable meanwhile: {sorted(used - available)}")


async def _store(
    conn: AsyncConnection,
    computed: Computed,
    config: PlanningConfig,
    *,
    actor: str,
    trigger: str,
    note: str | None,
) -> str:
    snap = computed.snapshot
    day, now = snap.day, utcnow()
    origin = config.origin(day)

    def at(seconds: int) -> datetime:
        return origin + timedelta(seconds=seconds)

    await _still_holds(conn, computed, config.today())
    plan_id = new_id("fpl_")
    try:
        await conn.execute(
            insert(fleet_plans).values(
                id=plan_id,
                day=day,
                version=snap.version + 1,
                trigger=trigger,
                note=note,
                solver=solver_name()[:32],
                solve_ms=computed.solve_ms,
                parts=computed.parts,
                stops=computed.plan.planned,
                distance_m=computed.report.distance_m,
                unassigned=list(computed.unassigned),
                created_by=actor[:64],
                created_at=now,
            )
        )
    except IntegrityError:
        raise StaleSnapshot(f"another plan of {day} was written at the same moment") from None
    await conn.execute(
        update(fleet_routes)
        .where(
            and_(
                fleet_routes.c.day == day,
                fleet_routes.c.status == "active",
                fleet_routes.c.locked_at.is_(None),
            )
        )
        .values(status="replaced", replaced_at=now)
    )
    parcels = {p.shipment_id: p for p in snap.parcels}
    current = {
        r.id: r.courier_id
        for r in (
            await conn.execute(
                select(shipments.c.id, shipments.c.courier_id).where(
                    shipments.c.id.in_(list(parcels))
                )
            )
        ).all()
    }
    for schedule in computed.report.schedules:
        if not schedule.visits:
            continue
        route_id = new_id("frt_")
        await conn.execute(
            insert(fleet_routes).values(
                id=route_id,
                plan_id=plan_id,
                day=day,
                courier_id=schedule.courier_id,
                status="active",
                depart_at=at(schedule.depart),
                return_at=at(schedule.back),
                distance_m=schedule.distance_m,
                load_g=schedule.load_g,
                load_cm3=schedule.load_cm3,
                created_at=now,
            )
        )
        rows = []
        for seq, visit in enumerate(schedule.visits, start=1):
            parcel = parcels[visit.stop_id]
            stop = computed.instance.stops[computed.instance.stop_by_id[visit.stop_id]]
            assert parcel.point is not None and parcel.geo_source is not None
            rows.append(
                {
                    "route_id": route_id,
                    "seq": seq,
                    "shipment_id": parcel.shipment_id,
                    "order_id": parcel.order_id,
                    "lat": parcel.point.lat,
                    "lon": parcel.point.lon,
                    "geo_source": parcel.geo_source,
                    "window_start": parcel.window_start,
                    "window_end": parcel.window_end,
                    "eta": at(visit.start),
                    "weight_g": stop.weight_g,
                    "volume_cm3": stop.volume_cm3,
                }
            )
        await conn.execute(insert(fleet_stops), rows)
        for row in sorted(rows, key=lambda r: str(r["shipment_id"])):
            shipment_id = str(row["shipment_id"])
            before = current.get(shipment_id)
            if before == schedule.courier_id:
                continue
            await conn.execute(
                update(shipments)
                .where(shipments.c.id == shipment_id)
                .values(courier_id=schedule.courier_id, updated_at=now)
            )
            await log_shipment_event(
                conn,
                shipment_id=shipment_id,
                order_id=str(row["order_id"]),
                source="dispatcher",
                kind="courier",
                outcome="recorded",
                actor=actor,
                note=f"planned for courier {schedule.courier_id} on {day.isoformat()}, "
                f"stop {row['seq']} of route {route_id}" + (f" (was {before})" if before else ""),
                at=now,
            )
    return plan_id


async def plan_day(
    engine: AsyncEngine,
    config: PlanningConfig,
    day: date,
    *,
    actor: str,
    trigger: str = "plan",
    note: str | None = None,
) -> dict[str, Any]:
    """Solve and store the day; answers the day's view. See the module docstring."""
    for attempt in range(2):
        computed = await compute(engine, day, config)
        try:
            async with transaction(engine) as conn:
                await _store(conn, computed, config, actor=actor, trigger=trigger, note=note)
            break
        except StaleSnapshot as exc:
            if attempt == 1:
                raise Conflict(
                    f"the plan for {day.isoformat()} could not be saved: {exc}; plan again"
                ) from None
            log.info("fleet plan for %s recomputed: %s", day, exc)
    return await day_view(engine, day)


# -- routes: locking, absences ---------------------------------------------------------


async def set_lock(
    engine: AsyncEngine, route_id: str, *, actor: str, locked: bool
) -> dict[str, Any]:
    async with transaction(engine) as conn:
        row = (
            await conn.execute(
                select(fleet_routes).where(fleet_routes.c.id == route_id).with_for_update()
            )
        ).first()
        if row is None:
            raise NotFound(f"route {route_id} does not exist", route_id=route_id)
        if row.status != "active":
            raise Conflict(
                f"route {route_id} was replaced by a later plan of {row.day.isoformat()}; "
                "read the day's routes again (GET /api/v1/fleet/routes?date=...)",
                route_id=route_id,
            )
        values: dict[str, Any] = (
            {"locked_at": utcnow(), "locked_by": actor[:64]}
            if locked
            else {"locked_at": None, "locked_by": None}
        )
        if locked and row.locked_at is not None:
            values = {}
        if values:
            await conn.execute(
                update(fleet_routes).where(fleet_routes.c.id == route_id).values(**values)
            )
        routes = await route_views(conn, [route_id])
    return routes[0]


async def courier_unavailable(
    engine: AsyncEngine,
    config: PlanningConfig,
    courier_id: str,
    day: date,
    reason: str,
    *,
    actor: str,
) -> dict[str, Any]:
    """Record the absence, drop the courier's route of the day and re-plan the day."""
    async with transaction(engine) as conn:
        new = await record_absence(conn, courier_id, day, reason, actor=actor, at=utcnow())
        dropped = await conn.execute(
            update(fleet_routes)
            .where(
                and_(
                    fleet_routes.c.day == day,
                    fleet_routes.c.courier_id == courier_id,
                    fleet_routes.c.status == "active",
                )
            )
            .values(status="replaced", replaced_at=utcnow(), locked_at=None, locked_by=None)
        )
        planned = await _version(conn, day) > 0
    replanned = False
    if planned and (new or dropped.rowcount):
        await plan_day(
            engine,
            config,
            day,
            actor=actor,
            trigger="courier_unavailable",
            note=f"{courier_id}: {reason.strip()[:200] or 'unavailable'}",
        )
        replanned = True
    view = await day_view(engine, day)
    return {"courier_id": courier_id, "date": day.isoformat(), "replanned": replanned, **view}


# -- views -----------------------------------------------------------------------------


def _plan_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "version": row.version,
        "trigger": row.trigger,
        "note": row.note,
        "solver": row.solver,
        "solve_ms": row.solve_ms,
        "parts": row.parts,
        "stops": row.stops,
        "distance_km": round(row.distance_m / 1000, 3),
        "unassigned": list(row.unassigned or []),
        "created_by": row.created_by,
        "created_at": as_utc(row.created_at),
    }


def _opt(moment: datetime | None) -> datetime | None:
    return as_utc(moment) if moment is not None else None


async def route_views(conn: AsyncConnection, route_ids: Iterable[str]) -> list[dict[str, Any]]:
    ids = list(route_ids)
    if not ids:
        return []
    routes = (
        await conn.execute(
            select(fleet_routes, couriers.c.name.label("courier_name"))
            .join(couriers, couriers.c.id == fleet_routes.c.courier_id)
            .where(fleet_routes.c.id.in_(ids))
            .order_by(fleet_routes.c.courier_id, fleet_routes.c.id)
        )
    ).all()
    stops = (
        await conn.execute(
            select(
                fleet_stops,
                shipments.c.status.label("shipment_status"),
                shipments.c.tracking_no,
                orders.c.state.label("order_state"),
                orders.c.customer_name,
                orders.c.phone,
                orders.c.line1,
                orders.c.line2,
                orders.c.postal_code,
                orders.c.city,
                orders.c.country,
                fleet_parcels.c.note,
            )
            .join(shipments, shipments.c.id == fleet_stops.c.shipment_id)
            .join(orders, orders.c.id == fleet_stops.c.order_id)
            .outerjoin(fleet_parcels, fleet_parcels.c.shipment_id == fleet_stops.c.shipment_id)
            .where(fleet_stops.c.route_id.in_(ids))
            .order_by(fleet_stops.c.route_id, fleet_stops.c.seq)
        )
    ).all()
    by_route: dict[str, list[dict[str, Any]]] = {}
    for s in stops:
        by_route.setdefault(s.route_id, []).append(
            {
                "id": s.id,
                "seq": s.seq,
                "shipment_id": s.shipment_id,
                "order_id": s.order_id,
                "tracking_no": s.tracking_no,
                "eta": as_utc(s.eta),
                "window_start": _opt(s.window_start),
                "window_end": _opt(s.window_end),
                "lat": s.lat,
                "lon": s.lon,
                "geo_source": s.geo_source,
                "weight_kg": round(s.weight_g / 1000, 3),
                "volume_l": round(s.volume_cm3 / 1000, 3),
                "outcome": s.outcome,
                "outcome_at": _opt(s.outcome_at),
                "outcome_note": s.outcome_note,
                "attempt": s.attempt,
                "shipment_status": s.shipment_status,
                "order_state": s.order_state,
                "note": s.note,
                "deliver_to": {
                    "name": s.customer_name,
                    "phone": s.phone,
                    "line1": s.line1,
                    "line2": s.line2,
                    "postal_code": s.postal_code,
                    "city": s.city,
                    "country": s.country,
                },
            }
        )
    return [
        {
            "id": r.id,
            "plan_id": r.plan_id,
            "date": r.day.isoformat(),
            "courier_id": r.courier_id,
            "courier_name": r.courier_name,
            "status": r.status,
            "locked": r.locked_at is not None,
            "locked_by": r.locked_by,
            "locked_at": _opt(r.locked_at),
            "started_at": _opt(r.started_at),
            "depart_at": as_utc(r.depart_at),
            "return_at": as_utc(r.return_at),
            "distance_km": round(r.distance_m / 1000, 3),
            "load_kg": round(r.load_g / 1000, 3),
            "load_m3": round(r.load_cm3 / 1_000_000, 4),
            "stops": by_route.get(r.id, []),
        }
        for r in routes
    ]


async def active_route_ids(
    conn: AsyncConnection, day: date, courier_id: str | None = None
) -> list[str]:
    conditions = [fleet_routes.c.day == day, fleet_routes.c.status == "active"]
    if courier_id is not None:
        conditions.append(fleet_routes.c.courier_id == courier_id)
    found = await conn.scalars(
        select(fleet_routes.c.id).where(and_(*conditions)).order_by(fleet_routes.c.courier_id)
    )
    return list(found.all())


async def day_view(engine: AsyncEngine, day: date) -> dict[str, Any]:
    async with engine.connect() as conn:
        plan = (
            await conn.execute(
                select(fleet_plans)
                .where(fleet_plans.c.day == day)
                .order_by(fleet_plans.c.version.desc())
                .limit(1)
            )
        ).first()
        routes = await route_views(conn, await active_route_ids(conn, day))
        absent = (
            await conn.execute(
                select(courier_absences.c.courier_id, courier_absences.c.reason)
                .where(courier_absences.c.day == day)
                .order_by(courier_absences.c.courier_id)
            )
        ).all()
    return {
        "date": day.isoformat(),
        "plan": _plan_view(plan) if plan is not None else None,
        "routes": routes,
        "absent": [{"courier_id": a.courier_id, "reason": a.reason} for a in absent],
    }


async def get_route(engine: AsyncEngine, route_id: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        found = await route_views(conn, [route_id])
    if not found:
        raise NotFound(f"route {route_id} does not exist", route_id=route_id)
    return found[0]


# -- parcels: windows and notes ----------------------------------------------------------


async def set_parcel(
    engine: AsyncEngine,
    shipment_id: str,
    *,
    window_start: datetime | None,
    window_end: datetime | None,
    note: str | None,
    actor: str,
) -> dict[str, Any]:
    if window_start is not None and window_end is not None and window_end <= window_start:
        raise ValidationFailed("the delivery window must end after it starts")
    async with transaction(engine) as conn:
        ship = (
            await conn.execute(
                select(shipments.c.id, shipments.c.own_fleet).where(shipments.c.id == shipment_id)
            )
        ).first()
        if ship is None:
            raise NotFound(f"shipment {shipment_id} does not exist", shipment_id=shipment_id)
        if not ship.own_fleet:
            raise Conflict(
                f"shipment {shipment_id} goes with a carrier; windows and notes are for "
                "own-fleet parcels"
            )
        values = {
            "window_start": as_utc(window_start) if window_start else None,
            "window_end": as_utc(window_end) if window_end else None,
            "note": (note or "").strip()[:500] or None,
            "updated_by": actor[:64],
            "updated_at": utcnow(),
        }
        exists = await conn.scalar(
            select(fleet_parcels.c.shipment_id).where(fleet_parcels.c.shipment_id == shipment_id)
        )
        if exists is None:
            await conn.execute(insert(fleet_parcels).values(shipment_id=shipment_id, **values))
        else:
            await conn.execute(
                update(fleet_parcels)
                .where(fleet_parcels.c.shipment_id == shipment_id)
                .values(**values)
            )
    return {
        "shipment_id": shipment_id,
        "window_start": values["window_start"],
        "window_end": values["window_end"],
        "note": values["note"],
    }


# -- keeping plans current ---------------------------------------------------------------


async def days_needing_replan(engine: AsyncEngine, today: date) -> list[date]:
    """Planned days from today on with parcels their plan neither routed nor listed."""
    found: list[date] = []
    async with engine.connect() as conn:
        days = (
            await conn.scalars(
                select(fleet_plans.c.day)
                .where(fleet_plans.c.day >= today)
                .group_by(fleet_plans.c.day)
                .order_by(fleet_plans.c.day)
            )
        ).all()
        for day in days:
            eligible = {r.id for r in await _eligible_rows(conn, day, today)}
            if not eligible:
                continue
            routed = set(
                (
                    await conn.scalars(
                        select(fleet_stops.c.shipment_id)
                        .join(fleet_routes, fleet_routes.c.id == fleet_stops.c.route_id)
                        .where(and_(fleet_routes.c.day == day, fleet_routes.c.status == "active"))
                    )
                ).all()
            )
            listed = await conn.scalar(
                select(fleet_plans.c.unassigned)
                .where(fleet_plans.c.day == day)
                .order_by(fleet_plans.c.version.desc())
                .limit(1)
            )
            known = routed | {str(u["shipment_id"]) for u in (listed or [])}
            if eligible - known:
                found.append(day)
    return found


@dataclass
class FleetReplanner:
    """Re-plans days whose plan misses parcels, every ``interval_s``; one named task.

    With several API processes the one holding the ``fleet-replanner`` lease does it.
    """

    engine: AsyncEngine
    config: PlanningConfig
    interval_s: float = 30.0
    rounds: int = 0
    replanned: list[date] = field(default_factory=list)
    _outage: Outage = field(
        default_factory=lambda: Outage("fleet re-planning", log, expected=OUTAGE_ERRORS)
    )
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    LEASE = "fleet-replanner"

    @property
    def failures(self) -> int:
        return self._outage.total

    async def run_once(self) -> list[date]:
        done: list[date] = []
        for day in await days_needing_replan(self.engine, self.config.today()):
            await plan_day(
                self.engine,
                self.config,
                day,
                actor="system:fleet",
                trigger="new_parcels",
                note="parcels added since the last plan",
            )
            done.append(day)
        self.rounds += 1
        self.replanned.extend(done)
        return done

    async def _rounds(self) -> None:
        await every(self.interval_s, self.run_once, self._outage, wait_first=True)

    async def __aenter__(self) -> Self:
        ttl = timedelta(seconds=max(60.0, 3 * self.interval_s + self.config.options.budget_s))
        lease = Lease(self.engine, self.LEASE, ttl=ttl, holder=new_id("fleet-"))
        await self._stack.enter_async_context(background(REPLANNER_TASK, lease.run(self._rounds)))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()
