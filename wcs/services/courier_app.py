"""The courier's day from the phone: the route in order, start it, deliver, fail a stop.

Everything goes through the delivery services other channels use, so the order, the
shipment history and the customer notices move exactly as they do for the API:

- **Start** locks the route (a re-plan never takes parcels out of a van that left)
  and reports every handed-over parcel ``out_for_delivery``
  (``wcs.services.tracking.record_tracking``).
- **Delivered** is the proof-of-delivery upload (``wcs.services.pod.record_pod``):
  the same checks on the photo, the same storage and hash, the order moves to
  ``delivered``. A parcel the courier did not report out for delivery first (no
  start tapped, or a second attempt) is reported so just before.
- **Failed attempt** is a courier status ``delivery_failed`` with the reason; the
  customer gets the notice the tracking service writes, and the stop's outcome keeps
  the parcel out of today's re-plans, so the next day's plan takes it - unless the
  courier **tries again** the same day (``retry_stop``): the stop is open again as
  its next attempt, and goes out for delivery again when delivered or failed.
- **Start** is refused while any parcel of the route is still at the dock, naming
  them: a courier must not drive off without them. The route's times then run from
  the real start (``live_times``), and again from each stop done.

A courier only ever acts on stops of their own active route; anything else is
answered as not found, so stop ids of other couriers reveal nothing. Event ids are
derived from the stop (``courier:<id>:<what>:<stop>``), so a phone repeating a
request on a flaky network has no second effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.contract.topics import Topics
from wcs.errors import Conflict, NotFound, ValidationFailed
from wcs.persistence.db import transaction
from wcs.persistence.tables import fleet_routes, fleet_stops, shipments
from wcs.services.fleet_plans import active_route_ids, route_views
from wcs.services.pod import PodImage, PodResult, PodSubmission, record_pod
from wcs.services.tracking import TrackingUpdate, record_tracking
from wcs.timeutil import utcnow

# Statuses from which the courier's "on my way to you" applies.
BEFORE_DOOR: tuple[str, ...] = ("shipped", "in_transit", "delivery_failed", "delayed")

# Why a door stayed closed; the page shows them translated, the record keeps English.
FAILURE_REASONS: dict[str, str] = {
    "not_home": "nobody home",
    "refused": "refused by the recipient",
    "address_not_found": "address not found",
    "no_access": "no access to the building",
    "other": "other",
}


@dataclass(frozen=True, slots=True)
class StopRef:
    stop_id: int
    route_id: str
    shipment_id: str
    order_id: str
    outcome: str | None
    shipment_status: str
    attempt: int = 1


async def my_route(engine: AsyncEngine, courier_id: str, day: date) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        ids = await active_route_ids(conn, day, courier_id)
        found = await route_views(conn, ids[:1])
    return found[0] if found else None


async def _stop(engine: AsyncEngine, courier_id: str, stop_id: int) -> StopRef:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(
                    fleet_stops.c.id,
                    fleet_stops.c.route_id,
                    fleet_stops.c.shipment_id,
                    fleet_stops.c.order_id,
                    fleet_stops.c.outcome,
                    shipments.c.status,
                    fleet_stops.c.attempt,
                )
                .join(fleet_routes, fleet_routes.c.id == fleet_stops.c.route_id)
                .join(shipments, shipments.c.id == fleet_stops.c.shipment_id)
                .where(
                    and_(
                        fleet_stops.c.id == stop_id,
                        fleet_routes.c.courier_id == courier_id,
                        fleet_routes.c.status == "active",
                    )
                )
            )
        ).first()
    if row is None:
        raise NotFound(f"stop {stop_id} is not on your route today", stop_id=stop_id)
    return StopRef(
        row.id, row.route_id, row.shipment_id, row.order_id, row.outcome, row.status, row.attempt
    )


def _nth(attempt: int) -> str:
    # Event keys of a second attempt differ from the first's (the first stays deduplicated).
    return "" if attempt <= 1 else f":{attempt}"


def _actor(courier_id: str) -> str:
    return f"courier:{courier_id}"


async def _on_the_way(engine: AsyncEngine, topics: Topics, courier_id: str, stop: StopRef) -> None:
    if stop.shipment_status == "booked":
        raise Conflict(
            f"parcel {stop.shipment_id} has not been handed over to you yet; collect it at "
            "the dock (the dispatcher scans the handover)",
            shipment_id=stop.shipment_id,
        )
    if stop.shipment_status not in BEFORE_DOOR:
        return
    outcome = await record_tracking(
        engine,
        topics,
        stop.shipment_id,
        TrackingUpdate(
            source="courier",
            status="out_for_delivery",
            actor=_actor(courier_id),
            event_key=f"{_actor(courier_id)}:out:{stop.stop_id}{_nth(stop.attempt)}",
        ),
    )
    if outcome.outcome == "refused":
        raise Conflict(outcome.message or "the parcel cannot go out for delivery now")


async def _set_outcome(stop_id: int, engine: AsyncEngine, outcome: str, note: str | None) -> None:
    async with transaction(engine) as conn:
        await conn.execute(
            update(fleet_stops)
            .where(and_(fleet_stops.c.id == stop_id, fleet_stops.c.outcome.is_(None)))
            .values(outcome=outcome, outcome_at=utcnow(), outcome_note=note)
        )


async def start_route(
    engine: AsyncEngine, topics: Topics, courier_id: str, route_id: str
) -> dict[str, int]:
    """Lock the route and report its handed-over parcels out for delivery."""
    async with transaction(engine) as conn:
        row = (
            await conn.execute(
                select(fleet_routes)
                .where(
                    and_(
                        fleet_routes.c.id == route_id,
                        fleet_routes.c.courier_id == courier_id,
                        fleet_routes.c.status == "active",
                    )
                )
                .with_for_update()
            )
        ).first()
        if row is None:
            raise NotFound(f"route {route_id} is not your route today", route_id=route_id)
        missing = (
            await conn.execute(
                select(fleet_stops.c.seq, shipments.c.tracking_no)
                .join(shipments, shipments.c.id == fleet_stops.c.shipment_id)
                .where(
                    and_(
                        fleet_stops.c.route_id == route_id,
                        fleet_stops.c.outcome.is_(None),
                        shipments.c.status.in_(("pending", "booked")),
                    )
                )
                .order_by(fleet_stops.c.seq)
            )
        ).all()
        if missing:
            raise NotHandedOver([(int(m.seq), str(m.tracking_no or "")) for m in missing])
        now = utcnow()
        values: dict[str, Any] = {}
        if row.started_at is None:
            values["started_at"] = now
        if row.locked_at is None:
            values |= {"locked_at": now, "locked_by": _actor(courier_id)}
        if values:
            await conn.execute(
                update(fleet_routes).where(fleet_routes.c.id == route_id).values(**values)
            )
        stop_ids = (
            await conn.scalars(
                select(fleet_stops.c.id)
                .where(and_(fleet_stops.c.route_id == route_id, fleet_stops.c.outcome.is_(None)))
                .order_by(fleet_stops.c.seq)
            )
        ).all()
    counts = {"out_for_delivery": 0}
    for stop_id in stop_ids:
        stop = await _stop(engine, courier_id, stop_id)
        await _on_the_way(engine, topics, courier_id, stop)
        counts["out_for_delivery"] += 1
    return counts


class NotHandedOver(Conflict):
    """The route cannot start: parcels are still at the dock (stop number, tracking no)."""

    def __init__(self, missing: list[tuple[int, str]]) -> None:
        listed = ", ".join(f"stop {seq} ({tracking})" for seq, tracking in missing)
        super().__init__(
            f"{len(missing)} parcel(s) not handed over yet: {listed}; collect them at the "
            "dock (the dispatcher scans the handover), then start"
        )
        self.missing = missing


async def retry_stop(engine: AsyncEngine, courier_id: str, stop_id: int) -> int:
    """Try a failed stop again the same day: it is open again as its next attempt.
    Returns the attempt number."""
    stop = await _stop(engine, courier_id, stop_id)
    if stop.outcome != "failed":
        raise Conflict(
            f"stop {stop_id} is {'delivered' if stop.outcome else 'still open'}; only a failed "
            "attempt can be tried again"
        )
    async with transaction(engine) as conn:
        await conn.execute(
            update(fleet_stops)
            .where(and_(fleet_stops.c.id == stop_id, fleet_stops.c.outcome == "failed"))
            .values(
                outcome=None,
                outcome_at=None,
                outcome_note=None,
                attempt=fleet_stops.c.attempt + 1,
            )
        )
    return stop.attempt + 1


def live_times(
    stops: list[dict[str, Any]], depart_at: datetime, started_at: datetime | None, now: datetime
) -> dict[int, datetime]:
    """Expected arrival per open stop once the route has started: the plan's times
    moved by how far the real day is from the plan, measured at the real start and
    again at each stop done (the latest one counts), and never in the past (a courier
    running late pushes every later stop). Empty before the start: the plan's times
    stand."""
    if started_at is None:
        return {}
    real, planned = started_at, depart_at
    for stop in stops:
        done_at = stop.get("outcome_at")
        if stop.get("outcome") and done_at is not None and done_at >= real:
            real, planned = done_at, stop["eta"]
    shift = real - planned
    open_stops = [s for s in stops if not s.get("outcome")]
    if not open_stops:
        return {}
    late = max(timedelta(0), now - (open_stops[0]["eta"] + shift))
    return {int(s["id"]): s["eta"] + shift + late for s in open_stops}


async def deliver(
    engine: AsyncEngine,
    topics: Topics,
    courier_id: str,
    stop_id: int,
    *,
    receiver_name: str,
    photo: PodImage | None,
    pod_dir: Path,
    signature: PodImage | None = None,
    delivered_at: datetime | None = None,
) -> PodResult:
    stop = await _stop(engine, courier_id, stop_id)
    if stop.outcome == "failed":
        raise Conflict(
            f"stop {stop_id} is recorded as a failed attempt; try it again first, or the "
            "parcel comes on the next plan"
        )
    submission = PodSubmission(
        receiver_name=receiver_name,
        delivered_at=delivered_at or utcnow(),
        photo=photo,
        signature=signature,
    )
    if stop.outcome is None:
        await _on_the_way(engine, topics, courier_id, stop)
    result = await record_pod(
        engine, topics, stop.shipment_id, submission, courier_id=courier_id, pod_dir=pod_dir
    )
    await _set_outcome(stop_id, engine, "delivered", f"received by {receiver_name.strip()}")
    return result


async def fail(
    engine: AsyncEngine,
    topics: Topics,
    courier_id: str,
    stop_id: int,
    *,
    reason: str,
    detail: str = "",
) -> str:
    """A failed attempt; returns the order's state afterwards."""
    if reason not in FAILURE_REASONS:
        raise ValidationFailed(
            f"unknown reason {reason!r}; choose one of {', '.join(FAILURE_REASONS)}"
        )
    detail = detail.strip()[:300]
    if reason == "other" and not detail:
        raise ValidationFailed("say what happened when the reason is 'other'")
    stop = await _stop(engine, courier_id, stop_id)
    if stop.outcome == "delivered":
        raise Conflict(f"stop {stop_id} is already delivered")
    text = FAILURE_REASONS[reason] + (f": {detail}" if detail else "")
    if stop.outcome is None:
        await _on_the_way(engine, topics, courier_id, stop)
    outcome = await record_tracking(
        engine,
        topics,
        stop.shipment_id,
        TrackingUpdate(
            source="courier",
            status="delivery_failed",
            actor=_actor(courier_id),
            event_key=f"{_actor(courier_id)}:failed:{stop.stop_id}{_nth(stop.attempt)}",
            detail=text,
        ),
    )
    if outcome.outcome == "refused":
        raise Conflict(outcome.message or "the failed attempt could not be recorded")
    await _set_outcome(stop_id, engine, "failed", text)
    return outcome.order_state
