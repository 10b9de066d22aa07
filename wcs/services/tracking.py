"""Tracking: carrier webhooks and courier status updates drive the order (design §1 step 7).

Every event received is written to ``shipment_events``, whatever it does:

- ``applied``: it moved the order (``wcs.persistence.orders.transition``).
- ``unchanged``: the order is already in that state (a second hub scan "in_transit");
  kept for the timeline, answered 200.
- ``refused``: the state machine does not allow it from the order's state (e.g.
  "delivered" after "delayed" without "out_for_delivery"); kept with the reason and
  answered 409 so the sender knows it was not applied.
- ``recorded``: a status we do not map to an order state; kept, answered 200.

An event with an id (the carrier's ``event_id``, or a courier app's) has one effect:
a repeat answers what the first delivery did and changes nothing. Events for one
order are serialised by the order's row lock, so two deliveries of the same event
at the same moment cannot both apply.

Contingencies, in the same transaction as the event:

- ``delayed`` (the carrier says it will miss its promise) and, from the periodic
  sweep, any parcel not delivered by its promise (``delivery_due``): one alert
  ``delivery_delayed`` per shipment and a customer notice.
- ``delivery_failed``: a customer notice (another attempt follows).
- ``damaged``: a claim against the carrier, an alert and a customer notice; then
  (after commit) a replacement order linked to the original is submitted through
  the normal intake, and the original goes ``damaged -> closed``. If that second
  step is interrupted, the sweep completes open claims.

The public tracking view shows statuses, times and the carrier's location (a hub
or town; a courier's typed location is left out) with fixed wording, and the
destination city and country: never names, phone numbers, e-mail, street, or the
free text of carrier or courier.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.contract.topics import Topics
from wcs.domain.delivery import delivery_due, public_text, target_state
from wcs.domain.states import OrderState
from wcs.errors import Conflict, IllegalTransition, NotFound, ValidationFailed
from wcs.ids import new_id
from wcs.persistence.db import transaction
from wcs.persistence.orders import lock_order, raise_alert, transition
from wcs.persistence.tables import claims, order_lines, shipment_events, shipments
from wcs.services.notices import add_notice
from wcs.services.orders import NewOrder, submit_order
from wcs.services.shipments import IN_FLIGHT, lock_shipment, log_shipment_event, order_row
from wcs.timeutil import as_utc, rfc3339, utcnow

log = logging.getLogger(__name__)

S = OrderState
DETAIL_MAX = 500


@dataclass(frozen=True, slots=True)
class TrackingUpdate:
    """One status report about a shipment, from a carrier, a courier or a dispatcher."""

    source: str  # carrier, courier, dispatcher
    status: str
    actor: str
    at: datetime | None = None  # when it happened, per the sender
    event_key: str | None = None  # "<sender>:<sender's event id>"; repeats have no effect
    detail: str | None = None
    location: str | None = None
    tracking_no: str | None = None  # as the sender has it; must be the shipment's


@dataclass(frozen=True, slots=True)
class TrackingOutcome:
    shipment_id: str
    order_id: str
    outcome: str  # applied, unchanged, refused, recorded
    order_state: str
    duplicate: bool = False
    message: str | None = None
    claim_id: str | None = None


async def record_tracking(
    engine: AsyncEngine, topics: Topics, shipment_id: str, update_: TrackingUpdate
) -> TrackingOutcome:
    """Record one event and apply it if the state machine allows; see the module doc."""
    for attempt in range(2):
        try:
            outcome = await _record(engine, topics, shipment_id, update_)
            break
        except IntegrityError:
            # The same event id committed by a concurrent delivery: answer as a repeat.
            if attempt == 1 or update_.event_key is None:
                raise
    if outcome.claim_id is not None and not outcome.duplicate:
        await reship_claim(engine, topics, outcome.claim_id, actor=update_.actor)
    return outcome


async def _record(
    engine: AsyncEngine, topics: Topics, shipment_id: str, upd: TrackingUpdate
) -> TrackingOutcome:
    async with transaction(engine) as conn:
        head, ship = await lock_shipment(conn, shipment_id)
        if upd.tracking_no is not None and upd.tracking_no != ship.tracking_no:
            raise ValidationFailed(
                f"event is for tracking number {upd.tracking_no}, but shipment {shipment_id} "
                f"has {ship.tracking_no or 'none yet'}",
                shipment_id=shipment_id,
            )
        if upd.event_key is not None:
            seen = (
                await conn.execute(
                    select(shipment_events).where(shipment_events.c.event_key == upd.event_key)
                )
            ).first()
            if seen is not None:
                if seen.shipment_id != shipment_id:
                    raise Conflict(
                        f"event {upd.event_key} was already received for shipment "
                        f"{seen.shipment_id}, not {shipment_id}",
                        shipment_id=shipment_id,
                    )
                return TrackingOutcome(
                    shipment_id, ship.order_id, seen.outcome, head.state, True, seen.note
                )
        target = target_state(upd.status)
        now = utcnow()
        # Stored as UTC: SQLite would otherwise keep the wall time and drop the offset.
        happened = as_utc(upd.at) if upd.at else now
        outcome, note, seq = "recorded", None, None
        claim_id: str | None = None
        state = head.state
        if ship.status in ("pending", "cancelled"):
            outcome = "refused"
            note = (
                f"shipment {shipment_id} is {ship.status}; the order's live shipment is "
                "another one (or none yet)"
            )
        elif target is None:
            note = f"status {upd.status!r} has no order state; kept for the record"
        elif head.state == target:
            outcome, note = "unchanged", f"order already {target}"
        else:
            reason = f"{upd.source} reports {upd.status}"
            if upd.detail:
                reason += f": {upd.detail}"
            try:
                event = await transition(
                    conn, topics, ship.order_id, target, actor=upd.actor, reason=reason, at=now
                )
            except IllegalTransition as exc:
                outcome, note = "refused", exc.message
            else:
                outcome, seq, state = "applied", event.seq, target
                claim_id = await _effects(conn, topics, ship, upd, now, happened)
        await log_shipment_event(
            conn,
            shipment_id=shipment_id,
            order_id=ship.order_id,
            source=upd.source,
            kind="tracking",
            status=upd.status,
            outcome=outcome,
            order_seq=seq,
            detail=(upd.detail or None) and upd.detail[:DETAIL_MAX],
            location=upd.location,
            note=note,
            actor=upd.actor,
            event_key=upd.event_key,
            at=happened,
        )
        return TrackingOutcome(
            shipment_id, ship.order_id, outcome, state, False, note, claim_id=claim_id
        )


async def _effects(
    conn: AsyncConnection,
    topics: Topics,
    ship: Row[Any],
    upd: TrackingUpdate,
    now: datetime,
    happened: datetime,
) -> str | None:
    """What an applied status does besides the order state; returns a new claim's id."""
    values: dict[str, Any] = {"status": upd.status, "updated_at": now}
    claim_id: str | None = None
    if upd.status == "shipped" and ship.shipped_at is None:
        values |= {"shipped_at": now, "delivery_due": delivery_due(ship.service, now)}
    elif upd.status == "delivered":
        values["delivered_at"] = happened
    elif upd.status == "delayed" and ship.delay_alerted_at is None:
        await _delay_alert(conn, topics, ship, "the carrier reports a delay", now)
        values["delay_alerted_at"] = now
    elif upd.status == "delivery_failed":
        await add_notice(
            conn,
            ship.order_id,
            "delivery_failed",
            f"We could not deliver your parcel {ship.tracking_no} today"
            + (f" ({upd.detail[:200]})" if upd.detail else "")
            + ". We will try again; track it with this number.",
            at=now,
        )
    elif upd.status == "damaged":
        claim_id = await _open_claim(conn, topics, ship, upd, now)
    await conn.execute(update(shipments).where(shipments.c.id == ship.id).values(**values))
    return claim_id


async def _delay_alert(
    conn: AsyncConnection, topics: Topics, ship: Row[Any], why: str, now: datetime
) -> None:
    due = rfc3339(as_utc(ship.delivery_due)) if ship.delivery_due else "unknown"
    await raise_alert(
        conn,
        topics,
        code="delivery_delayed",
        severity="warning",
        message_text=(
            f"order {ship.order_id}: shipment {ship.id} ({ship.carrier_name}, tracking "
            f"{ship.tracking_no}) is late: {why}; it was promised by {due}. The customer "
            "has been sent a notice; chase the carrier if it does not move"
        ),
        subject=ship.order_id,
        at=now,
    )
    await add_notice(
        conn,
        ship.order_id,
        "delivery_delayed",
        f"Your parcel {ship.tracking_no} is running late. We are on it with "
        f"{ship.carrier_name} and will keep you posted; sorry for the wait.",
        at=now,
    )


async def _open_claim(
    conn: AsyncConnection, topics: Topics, ship: Row[Any], upd: TrackingUpdate, now: datetime
) -> str:
    claim_id = new_id("clm_")
    await conn.execute(
        insert(claims).values(
            id=claim_id,
            order_id=ship.order_id,
            shipment_id=ship.id,
            kind="damaged",
            carrier=ship.carrier,
            state="open",
            detail=(upd.detail or None) and upd.detail[:DETAIL_MAX],
            created_at=now,
            updated_at=now,
        )
    )
    await raise_alert(
        conn,
        topics,
        code="parcel_damaged",
        severity="warning",
        message_text=(
            f"order {ship.order_id}: {ship.carrier_name} reports shipment {ship.id} "
            f"(tracking {ship.tracking_no}) damaged; claim {claim_id} opened and a "
            "replacement order is being sent"
        ),
        subject=ship.order_id,
        at=now,
    )
    await add_notice(
        conn,
        ship.order_id,
        "reshipment",
        f"Your parcel {ship.tracking_no} was damaged on its way to you. We are sending "
        "a replacement at no cost; you will get its tracking number soon.",
        at=now,
    )
    return claim_id


async def reship_claim(engine: AsyncEngine, topics: Topics, claim_id: str, *, actor: str) -> str:
    """Send a replacement for a damaged parcel and close the original; returns its order id.

    Safe to call again: the replacement is submitted with the key ``reship:<claim>``.
    """
    async with engine.connect() as conn:
        claim = (await conn.execute(select(claims).where(claims.c.id == claim_id))).first()
        if claim is None:
            raise NotFound(f"claim {claim_id} does not exist", claim_id=claim_id)
        if claim.replacement_order_id:
            return str(claim.replacement_order_id)
        original = await order_row(conn, claim.order_id)
        lines = (
            await conn.execute(
                select(order_lines.c.sku, order_lines.c.qty)
                .where(order_lines.c.order_id == claim.order_id)
                .order_by(order_lines.c.line_no)
            )
        ).all()
    result = await submit_order(
        engine,
        topics,
        replacement_order(original, [(r.sku, r.qty) for r in lines], f"reship-{claim_id}"),
        idempotency_key=f"reship:{claim_id}",
        request_hash=f"reship:{claim_id}",
        actor=actor,
    )
    async with transaction(engine) as conn:
        head = await lock_order(conn, claim.order_id)
        current = (
            await conn.execute(select(claims).where(claims.c.id == claim_id).with_for_update())
        ).one()
        if current.replacement_order_id:
            return str(current.replacement_order_id)
        now = utcnow()
        await conn.execute(
            update(claims)
            .where(claims.c.id == claim_id)
            .values(state="reshipped", replacement_order_id=result.order_id, updated_at=now)
        )
        if head.state == S.DAMAGED:
            await transition(
                conn,
                topics,
                claim.order_id,
                S.CLOSED,
                actor=actor,
                reason=f"claim {claim_id} filed, reshipped as order {result.order_id}",
                at=now,
            )
    return result.order_id


def replacement_order(original: Row[Any], lines: list[tuple[str, int]], tag: str) -> NewOrder:
    """A new order to the same customer and address, linked to the original."""
    return NewOrder(
        external_id=f"{original.external_id}/{tag}"[:128],
        customer_name=original.customer_name,
        phone=original.phone,
        email=original.email,
        line1=original.line1,
        line2=original.line2,
        city=original.city,
        postal_code=original.postal_code,
        country=original.country,
        lines=lines,
        priority=min(9, original.priority + 1),  # the customer has waited once already
        service=original.service,
        lat=original.lat,
        lon=original.lon,
        customer_ref=original.customer_ref,
        linked_order_id=original.id,
    )


# -- periodic checks -------------------------------------------------------------------------


async def flag_late_deliveries(engine: AsyncEngine, topics: Topics, now: datetime) -> list[str]:
    """Alert (once per shipment) on parcels past their delivery promise; returns their ids."""
    async with engine.connect() as conn:
        late = (
            await conn.scalars(
                select(shipments.c.id)
                .where(
                    and_(
                        shipments.c.status.in_(IN_FLIGHT),
                        shipments.c.delivery_due < now,
                        shipments.c.delay_alerted_at.is_(None),
                    )
                )
                .order_by(shipments.c.delivery_due)
                .limit(500)
            )
        ).all()
    flagged: list[str] = []
    for shipment_id in late:
        async with transaction(engine) as conn:
            _, ship = await lock_shipment(conn, shipment_id)
            if ship.delay_alerted_at is not None or ship.status not in IN_FLIGHT:
                continue
            await _delay_alert(conn, topics, ship, "no delivery by its promised time", now)
            await conn.execute(
                update(shipments).where(shipments.c.id == shipment_id).values(delay_alerted_at=now)
            )
            flagged.append(shipment_id)
    return flagged


async def complete_open_claims(engine: AsyncEngine, topics: Topics) -> list[str]:
    """Finish reshipments that were interrupted after their claim was opened."""
    async with engine.connect() as conn:
        open_ids = (
            await conn.scalars(
                select(claims.c.id).where(
                    and_(claims.c.state == "open", claims.c.replacement_order_id.is_(None))
                )
            )
        ).all()
    done = []
    for claim_id in open_ids:
        done.append(await reship_claim(engine, topics, claim_id, actor="system:claims"))
    return done


# -- public view -----------------------------------------------------------------------------

PUBLIC_KINDS = ("booked", "handover", "tracking", "pod")


async def public_tracking(engine: AsyncEngine, tracking_no: str) -> dict[str, Any]:
    """What anyone holding the tracking number may see: no personal data."""
    async with engine.connect() as conn:
        ship = (
            await conn.execute(select(shipments).where(shipments.c.tracking_no == tracking_no))
        ).first()
        if ship is None:
            raise NotFound(f"no shipment with tracking number {tracking_no}")
        order = await order_row(conn, ship.order_id)
        rows = (
            await conn.execute(
                select(
                    shipment_events.c.kind,
                    shipment_events.c.source,
                    shipment_events.c.status,
                    shipment_events.c.location,
                    shipment_events.c.at,
                )
                .where(
                    and_(
                        shipment_events.c.shipment_id == ship.id,
                        shipment_events.c.kind.in_(PUBLIC_KINDS),
                        shipment_events.c.outcome.in_(("applied", "unchanged", "recorded")),
                    )
                )
                .order_by(shipment_events.c.at, shipment_events.c.id)
            )
        ).all()
    events = []
    for r in rows:
        status = r.status or ("booked" if r.kind == "booked" else None)
        if status is None:
            continue
        events.append(
            {
                "status": status,
                "text": public_text(status),
                "at": as_utc(r.at),
                # A carrier names its hubs; a courier's or dispatcher's location is
                # whatever they typed (a street, a neighbour's name): never public.
                "location": r.location if r.source == "carrier" else None,
            }
        )
    return {
        "tracking_no": ship.tracking_no,
        "carrier": ship.carrier_name,
        "service": ship.service,
        "status": ship.status,
        "text": public_text(ship.status),
        "destination": {"city": order.city, "country": order.country},
        "delivery_due": as_utc(ship.delivery_due) if ship.delivery_due else None,
        "delivered_at": as_utc(ship.delivered_at) if ship.delivered_at else None,
        "events": events,
    }
