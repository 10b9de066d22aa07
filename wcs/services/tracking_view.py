"""What the customer's tracking page shows: the parcel, its order's stages, the
carrier's events, the promise (ETA or the courier's window), the proof of delivery,
and for a delay, a failed attempt or damage what happens next.

No personal data beyond what the holder of the tracking number should see: the
destination city and country, never a name, street, phone or e-mail; the proof is
the photo of the parcel at the door (not the signature or the receiver's name),
behind a link that expires within the hour.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.domain.states import OrderState
from wcs.persistence.tables import fleet_stops, order_events, proofs_of_delivery, shipments
from wcs.services.tracking import public_tracking
from wcs.timeutil import as_utc

S = OrderState

# The customer's journey: each stage is reached with the first of its states.
STAGES: tuple[tuple[str, frozenset[str]], ...] = (
    ("ordered", frozenset({S.RECEIVED})),
    ("preparing", frozenset({S.RESERVED, S.PICK_PLANNED, S.PICKING, S.PICKED, S.QC_PASSED})),
    ("packed", frozenset({S.PACKED, S.ALLOCATED})),
    ("shipped", frozenset({S.SHIPPED})),
    ("in_transit", frozenset({S.IN_TRANSIT, S.DELAYED})),
    ("out_for_delivery", frozenset({S.OUT_FOR_DELIVERY})),
    ("delivered", frozenset({S.DELIVERED, S.CLOSED})),
)
# Statuses whose page explains what went wrong and what happens next.
TROUBLE = frozenset({"delayed", "delivery_failed", "damaged"})


async def tracking_view(engine: AsyncEngine, tracking_no: str) -> dict[str, Any]:
    """The page's data; ``NotFound`` for an unknown number."""
    public = await public_tracking(engine, tracking_no)
    async with engine.connect() as conn:
        ship = (
            await conn.execute(
                select(shipments.c.id, shipments.c.order_id, shipments.c.own_fleet).where(
                    shipments.c.tracking_no == tracking_no
                )
            )
        ).one()
        events = (
            await conn.execute(
                select(order_events.c.to_state, order_events.c.at)
                .where(order_events.c.order_id == ship.order_id)
                .order_by(order_events.c.seq)
            )
        ).all()
        stop = (
            await conn.execute(
                select(fleet_stops.c.window_start, fleet_stops.c.window_end, fleet_stops.c.eta)
                .where(and_(fleet_stops.c.shipment_id == ship.id, fleet_stops.c.outcome.is_(None)))
                .order_by(fleet_stops.c.id.desc())
                .limit(1)
            )
        ).first()
        proof = (
            await conn.execute(
                select(
                    proofs_of_delivery.c.delivered_at,
                    proofs_of_delivery.c.photo_path,
                ).where(proofs_of_delivery.c.shipment_id == ship.id)
            )
        ).first()
    reached: dict[str, datetime] = {}
    for e in events:
        for stage, states in STAGES:
            if e.to_state in states and stage not in reached:
                reached[stage] = as_utc(e.at)
    current = max((i for i, (s, _) in enumerate(STAGES) if s in reached), default=0)
    stages = [
        {"key": key, "at": reached.get(key), "done": i <= current, "current": i == current}
        for i, (key, _) in enumerate(STAGES)
    ]
    window = None
    if stop is not None and public["status"] == "out_for_delivery":
        start, end = stop.window_start or stop.eta, stop.window_end
        window = {"start": as_utc(start) if start else None, "end": as_utc(end) if end else None}
    return {
        **public,
        "order_id": ship.order_id,
        "shipment_id": ship.id,
        "stages": stages,
        "trouble": public["status"] if public["status"] in TROUBLE else None,
        "window": window,
        "proof": (
            None
            if proof is None
            else {"delivered_at": as_utc(proof.delivered_at), "photo": bool(proof.photo_path)}
        ),
    }


async def proof_photo(engine: AsyncEngine, shipment_id: str) -> tuple[str, str] | None:
    """The stored photo's path and type for a shipment's proof, if it has one."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(proofs_of_delivery.c.photo_path, proofs_of_delivery.c.photo_type).where(
                    proofs_of_delivery.c.shipment_id == shipment_id
                )
            )
        ).first()
    if row is None or not row.photo_path:
        return None
    return str(row.photo_path), str(row.photo_type or "jpeg")
