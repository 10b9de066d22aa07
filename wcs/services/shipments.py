"""Shipments: carrier allocation and booking, courier assignment, handover (design §1 step 6).

Allocation (``allocate_order``) runs when an order is ``packed``; the controller calls
it, and a dispatcher can do or redo it by hand. It takes three short transactions
around one network call, because a database lock must never be held while a carrier
is slow or retrying:

1. plan: lock the order, choose carrier and service (``wcs.domain.carriers``), and
   write a ``pending`` shipment row. A pending shipment left by an earlier attempt
   with the same carrier, service and parcel is reused, so its id - the carrier's
   ``Idempotency-Key`` - stays the same and a retry after a timeout is answered with
   the booking the carrier already made instead of a second one.
2. book with the carrier (``CarrierClient``: timeouts, 5xx and 429 retried with
   backoff). Own-fleet parcels are "booked" here: tracking number and label are ours.
3. confirm: lock again, store tracking number, label and cost, and move the order
   ``packed -> allocated`` through ``wcs.persistence.orders.transition``.

A failed booking leaves the shipment ``pending`` with ``last_error`` and raises an
alert (``carrier_booking_failed``); calling again retries with the same key.

Rebooking an allocated order (``rebook=True``, dispatcher) books a new shipment
first and only then retires the old one and cancels its booking at the carrier, so
the order is never left without a label. The order stays ``allocated``; the change
is in the shipment log and the order timeline.

Every non-own-fleet carrier is reached through ``settings.carrier_url`` (a carrier
gateway in production, the fake carrier in tests); the carrier id chosen by the
rules travels with each request's client.

Own-fleet shipments need a courier (``assign_courier``) before handover. A carrier
shipment may also get one when the carrier's last-mile drivers use our courier app
for proof of delivery.
"""

from __future__ import annotations

import logging
import secrets
import ssl
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Self, cast

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.carriers.client import Booking, CarrierClient, Recipient, RetryPolicy, ShipmentRequest
from wcs.carriers.rules import load_rules
from wcs.contract.topics import Topics
from wcs.domain.carriers import (
    CarrierOption,
    CarrierRules,
    Destination,
    Parcel,
    Service,
    choose_carrier,
)
from wcs.domain.delivery import Item, delivery_due, estimate_parcel, own_fleet_label
from wcs.domain.states import OrderState
from wcs.errors import (
    CarrierError,
    Conflict,
    IllegalTransition,
    NoCarrierAvailable,
    NotFound,
    ValidationFailed,
)
from wcs.ids import new_id
from wcs.persistence.db import transaction
from wcs.persistence.orders import OrderHead, lock_order, raise_alert, transition
from wcs.persistence.tables import order_lines, orders, shipment_events, shipments, skus
from wcs.settings import Settings
from wcs.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)

S = OrderState

# Shipment statuses that are the order's one live parcel.
LIVE: tuple[str, ...] = (
    "booked",
    "shipped",
    "in_transit",
    "out_for_delivery",
    "delivered",
    "delivery_failed",
    "delayed",
    "damaged",
)
IN_FLIGHT: tuple[str, ...] = (
    "shipped",
    "in_transit",
    "out_for_delivery",
    "delivery_failed",
    "delayed",
)


class CarrierDesk:
    """The carrier rules and one booking client per carrier; ``async with`` closes them."""

    def __init__(
        self,
        rules: CarrierRules,
        base_url: str,
        *,
        api_key: str | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 5.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.rules = rules
        self._base_url = base_url
        self._api_key = api_key
        self._retry = retry
        self._timeout_s = timeout_s
        self._tls = tls
        self._clients: dict[str, CarrierClient] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> CarrierDesk:
        return cls(
            load_rules(settings.carrier_rules_path),
            settings.carrier_url,
            tls=settings.carrier_tls.context(),
        )

    def client(self, carrier: str) -> CarrierClient:
        found = self._clients.get(carrier)
        if found is None:
            found = CarrierClient(
                self._base_url,
                carrier=carrier,
                api_key=self._api_key,
                retry=self._retry,
                timeout_s=self._timeout_s,
                tls=self._tls,
            )
            self._clients[carrier] = found
        return found

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


@dataclass(frozen=True, slots=True)
class Allocation:
    shipment_id: str
    order_id: str
    carrier: str
    service: str
    own_fleet: bool
    tracking_no: str
    # True when the order already had this booking and nothing new was booked.
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class _Plan:
    shipment_id: str
    order_id: str
    carrier: str
    carrier_name: str
    service: Service
    own_fleet: bool
    cost: Decimal
    currency: str
    weight_g: float
    dims_mm: tuple[int, int, int]
    recipient: Recipient


# -- helpers shared by the delivery services -------------------------------------------------


async def lock_shipment(conn: AsyncConnection, shipment_id: str) -> tuple[OrderHead, Row[Any]]:
    """Lock the shipment's order, then the shipment (always in that order: no deadlocks)."""
    order_id = await conn.scalar(select(shipments.c.order_id).where(shipments.c.id == shipment_id))
    if order_id is None:
        raise NotFound(f"shipment {shipment_id} does not exist", shipment_id=shipment_id)
    head = await lock_order(conn, order_id)
    row = (
        await conn.execute(select(shipments).where(shipments.c.id == shipment_id).with_for_update())
    ).one()
    return head, row


async def log_shipment_event(
    conn: AsyncConnection,
    *,
    shipment_id: str,
    order_id: str,
    source: str,
    kind: str,
    outcome: str,
    actor: str,
    status: str | None = None,
    order_seq: int | None = None,
    detail: str | None = None,
    location: str | None = None,
    note: str | None = None,
    event_key: str | None = None,
    at: datetime | None = None,
) -> None:
    now = utcnow()
    await conn.execute(
        insert(shipment_events).values(
            shipment_id=shipment_id,
            order_id=order_id,
            event_key=event_key,
            source=source,
            kind=kind,
            status=status,
            outcome=outcome,
            order_seq=order_seq,
            detail=detail,
            location=location,
            note=note,
            actor=actor[:64],
            at=at or now,
            received_at=now,
        )
    )


async def order_row(conn: AsyncConnection, order_id: str) -> Row[Any]:
    row = (await conn.execute(select(orders).where(orders.c.id == order_id))).first()
    if row is None:
        raise NotFound(f"order {order_id} does not exist", order_id=order_id)
    return row


async def live_shipment(conn: AsyncConnection, order_id: str) -> Row[Any] | None:
    """The order's booked-or-later shipment, if any."""
    return (
        await conn.execute(
            select(shipments)
            .where(and_(shipments.c.order_id == order_id, shipments.c.status.in_(LIVE)))
            .order_by(shipments.c.created_at.desc())
            .limit(1)
        )
    ).first()


async def _pending_shipment(conn: AsyncConnection, order_id: str) -> Row[Any] | None:
    return (
        await conn.execute(
            select(shipments)
            .where(and_(shipments.c.order_id == order_id, shipments.c.status == "pending"))
            .order_by(shipments.c.created_at.desc())
            .limit(1)
        )
    ).first()


async def _estimate(conn: AsyncConnection, order_id: str) -> Parcel:
    rows = await conn.execute(
        select(
            order_lines.c.qty,
            skus.c.weight_g,
            skus.c.length_mm,
            skus.c.width_mm,
            skus.c.height_mm,
        )
        .join(skus, skus.c.sku == order_lines.c.sku)
        .where(order_lines.c.order_id == order_id)
    )
    items = [Item(r.weight_g, (r.length_mm, r.width_mm, r.height_mm), r.qty) for r in rows]
    return estimate_parcel(items)


def _recipient(order: Row[Any]) -> Recipient:
    return Recipient(
        name=order.customer_name,
        line1=order.line1,
        line2=order.line2,
        city=order.city,
        postal_code=order.postal_code,
        country=order.country,
        phone=order.phone,
        email=order.email,
    )


def _pick_option(
    rules: CarrierRules,
    order: Row[Any],
    parcel: Parcel,
    carrier: str | None,
    exclude: Collection[str],
) -> tuple[CarrierOption, list[str]]:
    destination = Destination(order.country, order.postal_code)
    choice = choose_carrier(
        rules, destination, parcel, cast(Service, order.service), exclude=exclude
    )
    if carrier is None:
        return choice.chosen, list(choice.reasons)
    for option in choice.eligible:
        if option.carrier == carrier:
            return option, [f"dispatcher chose {option.describe()}"]
    why = [r.describe() for r in choice.rejected if r.carrier == carrier]
    eligible = ", ".join(sorted({o.carrier for o in choice.eligible}))
    raise NoCarrierAvailable(
        f"carrier {carrier!r} cannot take order {order.id}: "
        + ("; ".join(why) if why else "not in the carrier rules")
        + f". Eligible: {eligible}",
        order_id=order.id,
    )


def _same_booking(row: Row[Any], option: CarrierOption, parcel: Parcel) -> bool:
    return (
        row.carrier == option.carrier
        and row.service == option.service
        and row.weight_g == round(parcel.weight_g, 1)
        and (row.length_mm, row.width_mm, row.height_mm) == _dims(parcel)
    )


def _dims(parcel: Parcel) -> tuple[int, int, int]:
    a, b, c = parcel.sorted_dims
    return round(a), round(b), round(c)


def _plan_from_row(row: Row[Any], order: Row[Any]) -> _Plan:
    return _Plan(
        shipment_id=row.id,
        order_id=row.order_id,
        carrier=row.carrier,
        carrier_name=row.carrier_name,
        service=cast(Service, row.service),
        own_fleet=bool(row.own_fleet),
        cost=Decimal(row.cost_minor or 0) / 100,
        currency=row.currency or "EUR",
        weight_g=row.weight_g,
        dims_mm=(row.length_mm, row.width_mm, row.height_mm),
        recipient=_recipient(order),
    )


def _allocation(row: Row[Any], *, replayed: bool) -> Allocation:
    return Allocation(
        shipment_id=row.id,
        order_id=row.order_id,
        carrier=row.carrier,
        service=row.service,
        own_fleet=bool(row.own_fleet),
        tracking_no=row.tracking_no or "",
        replayed=replayed,
    )


# -- allocation ------------------------------------------------------------------------------


async def allocate_order(
    engine: AsyncEngine,
    topics: Topics,
    order_id: str,
    *,
    desk: CarrierDesk,
    actor: str,
    parcel: Parcel | None = None,
    carrier: str | None = None,
    exclude: Collection[str] = (),
    rebook: bool = False,
) -> Allocation:
    """Choose a carrier, book it once, store tracking number and label: packed -> allocated.

    ``parcel`` is the measured parcel (scale weight, carton size); without it the
    parcel is estimated from the SKUs. ``carrier`` forces one eligible carrier,
    ``exclude`` leaves carriers out (e.g. one that is down). An allocated order
    answers its existing booking (``replayed``) unless ``rebook`` is set.

    Raises NoCarrierAvailable, CarrierUnavailable (retry later: the same shipment
    will not be booked twice), CarrierRejected, IllegalTransition.
    """
    planned = await _plan(engine, order_id, desk.rules, actor, parcel, carrier, exclude, rebook)
    if isinstance(planned, Allocation):
        return planned
    try:
        booking = await _book(desk, planned)
    except CarrierError as exc:
        await _booking_failed(engine, topics, planned, exc)
        raise
    return await _confirm(engine, topics, desk, planned, booking, actor)


async def _plan(
    engine: AsyncEngine,
    order_id: str,
    rules: CarrierRules,
    actor: str,
    parcel: Parcel | None,
    carrier: str | None,
    exclude: Collection[str],
    rebook: bool,
) -> _Plan | Allocation:
    async with transaction(engine) as conn:
        head = await lock_order(conn, order_id)
        current = await live_shipment(conn, order_id)
        if head.state == S.ALLOCATED:
            if current is not None and not rebook:
                return _allocation(current, replayed=True)
        elif head.state != S.PACKED:
            detail = (
                "the parcel has left the warehouse; rebooking is no longer possible"
                if current is not None and current.status != "booked"
                else "only a packed order gets a carrier"
            )
            raise IllegalTransition(order_id, head.state, S.ALLOCATED, detail)
        order = await order_row(conn, order_id)
        parcel = parcel or await _estimate(conn, order_id)
        option, reasons = _pick_option(rules, order, parcel, carrier, exclude)
        pending = await _pending_shipment(conn, order_id)
        if pending is not None and _same_booking(pending, option, parcel):
            return _plan_from_row(pending, order)
        now = utcnow()
        if pending is not None:
            await conn.execute(
                update(shipments)
                .where(shipments.c.id == pending.id)
                .values(status="cancelled", updated_at=now)
            )
            await log_shipment_event(
                conn,
                shipment_id=pending.id,
                order_id=order_id,
                source="dispatcher",
                kind="cancelled",
                outcome="recorded",
                actor=actor,
                note=f"unfinished booking with {pending.carrier} replaced by {option.carrier}",
            )
        shipment_id = new_id("shp_")
        length, width, height = _dims(parcel)
        await conn.execute(
            insert(shipments).values(
                id=shipment_id,
                order_id=order_id,
                status="pending",
                carrier=option.carrier,
                carrier_name=option.carrier_name,
                service=option.service,
                own_fleet=option.own_fleet,
                weight_g=round(parcel.weight_g, 1),
                length_mm=length,
                width_mm=width,
                height_mm=height,
                cost_minor=int(option.cost * 100),
                currency=option.currency,
                choice=reasons,
                created_by=actor[:64],
                created_at=now,
                updated_at=now,
            )
        )
        row = (await conn.execute(select(shipments).where(shipments.c.id == shipment_id))).one()
        return _plan_from_row(row, order)


def _own_fleet_booking(plan: _Plan) -> Booking:
    # Random digits: the tracking number is public, so it must not be guessable in sequence.
    tracking_no = f"OF{secrets.randbelow(10**12):012d}"
    r = plan.recipient
    address = [r.name, r.line1, r.line2 or "", f"{r.postal_code} {r.city}", r.country]
    return Booking(
        shipment_id=plan.shipment_id,
        tracking_no=tracking_no,
        carrier=plan.carrier,
        service=plan.service,
        label_format="zpl",
        label_data=own_fleet_label(tracking_no, plan.service, address),
        cost=plan.cost,
        currency=plan.currency,
    )


async def _book(desk: CarrierDesk, plan: _Plan) -> Booking:
    if plan.own_fleet:
        return _own_fleet_booking(plan)
    request = ShipmentRequest(
        shipment_id=plan.shipment_id,
        service=plan.service,
        weight_g=plan.weight_g,
        dims_mm=(float(plan.dims_mm[0]), float(plan.dims_mm[1]), float(plan.dims_mm[2])),
        recipient=plan.recipient,
    )
    return await desk.client(plan.carrier).book(request)


async def _booking_failed(
    engine: AsyncEngine, topics: Topics, plan: _Plan, exc: CarrierError
) -> None:
    async with transaction(engine) as conn:
        await conn.execute(
            update(shipments)
            .where(and_(shipments.c.id == plan.shipment_id, shipments.c.status == "pending"))
            .values(last_error=exc.message, updated_at=utcnow())
        )
        await raise_alert(
            conn,
            topics,
            code="carrier_booking_failed",
            severity="warning",
            message_text=(
                f"order {plan.order_id}: booking shipment {plan.shipment_id} with "
                f"{plan.carrier} failed: {exc.message}. Allocate again "
                f"(POST /api/v1/orders/{plan.order_id}/allocate), or exclude that carrier"
            ),
            subject=plan.order_id,
        )


async def _confirm(
    engine: AsyncEngine,
    topics: Topics,
    desk: CarrierDesk,
    plan: _Plan,
    booking: Booking,
    actor: str,
) -> Allocation:
    retired: Row[Any] | None = None
    voided = False
    async with transaction(engine) as conn:
        head, row = await lock_shipment(conn, plan.shipment_id)
        if row.status != "pending":
            if row.status == "cancelled":
                raise Conflict(
                    f"shipment {plan.shipment_id} of order {plan.order_id} was replaced by "
                    "another allocation while it was being booked; read the order's shipment",
                    order_id=plan.order_id,
                )
            return _allocation(row, replayed=True)  # a concurrent call finished it first
        now = utcnow()
        order_seq: int | None = None
        if head.state == S.PACKED:
            event = await transition(
                conn,
                topics,
                plan.order_id,
                S.ALLOCATED,
                actor=actor,
                reason=f"{plan.carrier_name} {plan.service}, tracking {booking.tracking_no}",
                at=now,
            )
            order_seq = event.seq
        elif head.state == S.ALLOCATED:
            # A rebooking (or an allocated order that had no booking yet): this one wins.
            retired = await live_shipment(conn, plan.order_id)
            if retired is not None:
                await conn.execute(
                    update(shipments)
                    .where(shipments.c.id == retired.id)
                    .values(status="cancelled", updated_at=now)
                )
                await log_shipment_event(
                    conn,
                    shipment_id=retired.id,
                    order_id=plan.order_id,
                    source="dispatcher",
                    kind="cancelled",
                    outcome="recorded",
                    actor=actor,
                    note=f"replaced by shipment {plan.shipment_id} ({plan.carrier})",
                )
        else:
            voided = True
        await conn.execute(
            update(shipments)
            .where(shipments.c.id == plan.shipment_id)
            .values(
                status="cancelled" if voided else "booked",
                tracking_no=booking.tracking_no,
                label_format=booking.label_format,
                label_data=booking.label_data,
                cost_minor=int(booking.cost * 100),
                currency=booking.currency,
                last_error=None,
                booked_at=now,
                updated_at=now,
            )
        )
        await log_shipment_event(
            conn,
            shipment_id=plan.shipment_id,
            order_id=plan.order_id,
            source="dispatcher",
            kind="cancelled" if voided else "booked",
            outcome="recorded" if voided or order_seq is None else "applied",
            actor=actor,
            order_seq=order_seq,
            note=(
                f"order became {head.state} during booking; booking voided"
                if voided
                else f"{plan.carrier_name} {plan.service}, tracking {booking.tracking_no}"
                + (" (carrier replayed an earlier booking)" if booking.replayed else "")
            ),
        )
    if voided:
        if not plan.own_fleet:
            await _cancel_at_carrier(
                engine, topics, desk, plan.order_id, plan.carrier, booking.tracking_no
            )
        raise IllegalTransition(plan.order_id, head.state, S.ALLOCATED, "booking voided")
    if retired is not None and not retired.own_fleet and retired.tracking_no:
        await _cancel_at_carrier(
            engine, topics, desk, plan.order_id, retired.carrier, retired.tracking_no
        )
    return Allocation(
        shipment_id=plan.shipment_id,
        order_id=plan.order_id,
        carrier=plan.carrier,
        service=plan.service,
        own_fleet=plan.own_fleet,
        tracking_no=booking.tracking_no,
    )


async def _cancel_at_carrier(
    engine: AsyncEngine,
    topics: Topics,
    desk: CarrierDesk,
    order_id: str,
    carrier: str,
    tracking_no: str,
) -> None:
    """Void a booking we no longer use; a failure is an alert, not the caller's error."""
    try:
        await desk.client(carrier).cancel(tracking_no)
    except (CarrierError, NotFound, Conflict) as exc:
        async with transaction(engine) as conn:
            await raise_alert(
                conn,
                topics,
                code="carrier_cancel_failed",
                severity="warning",
                message_text=(
                    f"order {order_id}: could not cancel unused booking {tracking_no} "
                    f"with {carrier}: {exc.message}. Void the label with the carrier by hand"
                ),
                subject=order_id,
            )


async def void_cancelled_bookings(
    engine: AsyncEngine, topics: Topics, desk: CarrierDesk
) -> list[str]:
    """Cancel the carrier bookings of orders cancelled after allocation; returns shipment ids.

    Order cancellation (``wcs.services.orders.cancel_order``) releases stock but knows
    nothing of carriers; an unused label left booked is billed by some carriers.
    """
    async with engine.connect() as conn:
        found = (
            await conn.scalars(
                select(shipments.c.id)
                .join(orders, orders.c.id == shipments.c.order_id)
                .where(and_(shipments.c.status == "booked", orders.c.state == S.CANCELLED))
                .limit(200)
            )
        ).all()
    voided: list[str] = []
    for shipment_id in found:
        async with transaction(engine) as conn:
            head, row = await lock_shipment(conn, shipment_id)
            if row.status != "booked" or head.state != S.CANCELLED:
                continue
            await conn.execute(
                update(shipments)
                .where(shipments.c.id == shipment_id)
                .values(status="cancelled", updated_at=utcnow())
            )
            await log_shipment_event(
                conn,
                shipment_id=shipment_id,
                order_id=row.order_id,
                source="system",
                kind="cancelled",
                outcome="recorded",
                actor="system:housekeeping",
                note="order cancelled; booking voided",
            )
        if not row.own_fleet and row.tracking_no:
            await _cancel_at_carrier(
                engine, topics, desk, row.order_id, row.carrier, row.tracking_no
            )
        voided.append(shipment_id)
    return voided


# -- courier and handover --------------------------------------------------------------------


async def assign_courier(
    engine: AsyncEngine, shipment_id: str, courier_id: str, *, actor: str
) -> None:
    """Give the shipment to a courier (or to another one while it is still on the way)."""
    courier_id = courier_id.strip()
    if not courier_id:
        raise ValidationFailed("courier_id is empty; give the courier's id from their token")
    async with transaction(engine) as conn:
        _, row = await lock_shipment(conn, shipment_id)
        if row.status in ("delivered", "cancelled", "damaged"):
            raise Conflict(
                f"shipment {shipment_id} is {row.status}; a courier can no longer take it",
                shipment_id=shipment_id,
            )
        await conn.execute(
            update(shipments)
            .where(shipments.c.id == shipment_id)
            .values(courier_id=courier_id, updated_at=utcnow())
        )
        previous = f" (was {row.courier_id})" if row.courier_id else ""
        await log_shipment_event(
            conn,
            shipment_id=shipment_id,
            order_id=row.order_id,
            source="dispatcher",
            kind="courier",
            outcome="recorded",
            actor=actor,
            note=f"assigned to courier {courier_id}{previous}",
        )


async def handover(engine: AsyncEngine, topics: Topics, shipment_id: str, *, actor: str) -> int:
    """The parcel leaves the dock with its carrier or courier: allocated -> shipped.

    Returns the order event's seq.
    """
    async with transaction(engine) as conn:
        _, row = await lock_shipment(conn, shipment_id)
        if row.status != "booked":
            raise Conflict(
                f"shipment {shipment_id} is {row.status}; only a booked shipment can be "
                "handed over" + (" (it already was)" if row.status in LIVE else ""),
                shipment_id=shipment_id,
            )
        if row.own_fleet and not row.courier_id:
            raise Conflict(
                f"own-fleet shipment {shipment_id} has no courier; assign one first "
                f"(PUT /api/v1/shipments/{shipment_id}/courier)",
                shipment_id=shipment_id,
            )
        now = utcnow()
        who = f"courier {row.courier_id}" if row.own_fleet else row.carrier_name
        event = await transition(
            conn, topics, row.order_id, S.SHIPPED, actor=actor, reason=f"handed to {who}", at=now
        )
        await conn.execute(
            update(shipments)
            .where(shipments.c.id == shipment_id)
            .values(
                status="shipped",
                shipped_at=now,
                delivery_due=delivery_due(row.service, now),
                updated_at=now,
            )
        )
        await log_shipment_event(
            conn,
            shipment_id=shipment_id,
            order_id=row.order_id,
            source="dispatcher",
            kind="handover",
            status="shipped",
            outcome="applied",
            order_seq=event.seq,
            actor=actor,
            note=f"handed to {who}",
            at=now,
        )
        return event.seq


# -- views -----------------------------------------------------------------------------------


def shipment_view(row: Row[Any], order: Row[Any] | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": row.id,
        "order_id": row.order_id,
        "status": row.status,
        "carrier": row.carrier,
        "carrier_name": row.carrier_name,
        "service": row.service,
        "own_fleet": bool(row.own_fleet),
        "tracking_no": row.tracking_no,
        "courier_id": row.courier_id,
        "parcel": {
            "weight_g": row.weight_g,
            "dims_mm": [row.length_mm, row.width_mm, row.height_mm],
        },
        "cost": (
            {"amount": f"{Decimal(row.cost_minor) / 100:.2f}", "currency": row.currency}
            if row.cost_minor is not None
            else None
        ),
        "label": ({"format": row.label_format, "data": row.label_data} if row.label_data else None),
        "choice": list(row.choice or []),
        "last_error": row.last_error,
        "delivery_due": as_utc(row.delivery_due) if row.delivery_due else None,
        "created_at": as_utc(row.created_at),
        "booked_at": as_utc(row.booked_at) if row.booked_at else None,
        "shipped_at": as_utc(row.shipped_at) if row.shipped_at else None,
        "delivered_at": as_utc(row.delivered_at) if row.delivered_at else None,
    }
    if order is not None:
        view["deliver_to"] = {
            "name": order.customer_name,
            "phone": order.phone,
            "line1": order.line1,
            "line2": order.line2,
            "city": order.city,
            "postal_code": order.postal_code,
            "country": order.country,
            "lat": order.lat,
            "lon": order.lon,
        }
    return view


async def get_shipment(engine: AsyncEngine, shipment_id: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = (await conn.execute(select(shipments).where(shipments.c.id == shipment_id))).first()
        if row is None:
            raise NotFound(f"shipment {shipment_id} does not exist", shipment_id=shipment_id)
        order = await order_row(conn, row.order_id)
    return shipment_view(row, order)


@dataclass(frozen=True, slots=True)
class Parties:
    """Who may see a shipment besides staff: its courier and the order's customer."""

    shipment_id: str
    order_id: str
    courier_id: str | None
    customer_ref: str | None


async def shipment_parties(engine: AsyncEngine, shipment_id: str) -> Parties:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(shipments.c.order_id, shipments.c.courier_id, orders.c.customer_ref)
                .join(orders, orders.c.id == shipments.c.order_id)
                .where(shipments.c.id == shipment_id)
            )
        ).first()
    if row is None:
        raise NotFound(f"shipment {shipment_id} does not exist", shipment_id=shipment_id)
    return Parties(shipment_id, row.order_id, row.courier_id, row.customer_ref)


async def list_shipments(
    engine: AsyncEngine,
    *,
    courier_id: str | None = None,
    order_id: str | None = None,
    statuses: Sequence[str] | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Newest first. ``courier_id`` restricts to one courier's shipments."""
    conditions = []
    if courier_id is not None:
        conditions.append(shipments.c.courier_id == courier_id)
    if order_id is not None:
        conditions.append(shipments.c.order_id == order_id)
    if statuses:
        conditions.append(shipments.c.status.in_(list(statuses)))
    query = (
        select(shipments)
        .order_by(shipments.c.created_at.desc(), shipments.c.id.desc())
        .limit(limit)
    )
    if conditions:
        query = query.where(and_(*conditions))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
        order_ids = sorted({r.order_id for r in rows})
        by_id = {
            o.id: o
            for o in (await conn.execute(select(orders).where(orders.c.id.in_(order_ids)))).all()
        }
    return [shipment_view(r, by_id.get(r.order_id)) for r in rows]
