"""One order's whole story in time order: state changes, shipments and tracking, proof of
delivery, sign-off, returns, claims, customer notices and the notifications sent about it.

Each entry is ``{"at", "kind", "summary", "data"}``; ``kind`` is one of ``state``,
``shipment``, ``tracking``, ``pod``, ``sign_off``, ``return``, ``claim``, ``notice``,
``notification``. Entries at the same instant keep the order in which they were written.

A notification stands where it last moved: when it was sent, or when it last failed
(``dead``, ``unconfirmed``, or ``pending`` for another try). A customer's view leaves
out notifications to staff and the channels' error texts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.errors import NotFound
from wcs.persistence.tables import (
    claims,
    customer_notices,
    notifications,
    order_corrections,
    order_events,
    orders,
    proofs_of_delivery,
    return_events,
    shipment_events,
    sign_offs,
)
from wcs.timeutil import as_utc

# Among entries written in the same instant, the cause comes before its effects.
_KIND_RANK = {
    "correction": -1,  # before the state change it causes
    "state": 0,
    "shipment": 1,
    "tracking": 1,
    "pod": 2,
    "sign_off": 3,
    "claim": 3,
    "return": 4,
    "notice": 5,
    "notification": 6,
}


def _entry(at: datetime, kind: str, summary: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"at": as_utc(at), "kind": kind, "summary": summary, "data": data}


def _notification_summary(r: Any, error: str | None) -> str:
    text = f"{r.kind} by {r.channel} to {r.audience}: {r.state}"
    if r.attempts > 1:
        text += f" after {r.attempts} attempts"
    if r.state != "sent" and error:
        text += f" ({error})"
    return text


async def order_timeline(
    engine: AsyncEngine, order_id: str, *, staff_view: bool = True
) -> list[dict[str, Any]]:
    entries: list[tuple[datetime, int, int, dict[str, Any]]] = []

    def add(at: datetime, kind: str, tiebreak: int, summary: str, data: dict[str, Any]) -> None:
        entries.append((as_utc(at), _KIND_RANK[kind], tiebreak, _entry(at, kind, summary, data)))

    async with engine.connect() as conn:
        exists = await conn.scalar(select(orders.c.id).where(orders.c.id == order_id))
        if exists is None:
            raise NotFound(f"order {order_id} does not exist", order_id=order_id)
        for r in await conn.execute(
            select(order_events).where(order_events.c.order_id == order_id)
        ):
            add(
                r.at,
                "state",
                r.seq,
                f"{r.from_state or 'new'} -> {r.to_state}" + (f": {r.reason}" if r.reason else ""),
                {
                    "seq": r.seq,
                    "from": r.from_state,
                    "to": r.to_state,
                    "actor": r.actor,
                    "reason": r.reason,
                },
            )
        for r in await conn.execute(
            select(order_corrections).where(order_corrections.c.order_id == order_id)
        ):
            add(
                r.at,
                "correction",
                r.id,
                f"corrected by {r.actor}: {r.reason} ({', '.join(sorted(r.changes))})",
                {"actor": r.actor, "reason": r.reason, "changes": r.changes},
            )
        for r in await conn.execute(
            select(shipment_events).where(shipment_events.c.order_id == order_id)
        ):
            if r.kind == "pod":
                continue  # shown by the proof of delivery entry below
            kind = "tracking" if r.kind == "tracking" else "shipment"
            text = f"{r.source} {r.status or r.kind}" if kind == "tracking" else r.kind
            if r.outcome == "refused":
                text += " (refused)"
            if r.note:
                text += f": {r.note}"
            add(
                r.at,
                kind,
                r.id,
                text,
                {
                    "shipment_id": r.shipment_id,
                    "source": r.source,
                    "event": r.kind,
                    "status": r.status,
                    "outcome": r.outcome,
                    "order_seq": r.order_seq,
                    "detail": r.detail,
                    "location": r.location,
                    "note": r.note,
                    "actor": r.actor,
                    "received_at": as_utc(r.received_at),
                },
            )
        for r in await conn.execute(
            select(proofs_of_delivery).where(proofs_of_delivery.c.order_id == order_id)
        ):
            images = [k for k in ("photo", "signature") if getattr(r, f"{k}_sha256")]
            add(
                r.delivered_at,
                "pod",
                r.id,
                f"delivered to {r.receiver_name} ({' and '.join(images)})",
                {
                    "shipment_id": r.shipment_id,
                    "courier_id": r.courier_id,
                    "receiver_name": r.receiver_name,
                    "content_sha256": r.content_sha256,
                    "photo_sha256": r.photo_sha256,
                    "signature_sha256": r.signature_sha256,
                    "lat": r.lat,
                    "lon": r.lon,
                },
            )
        for r in await conn.execute(select(sign_offs).where(sign_offs.c.order_id == order_id)):
            text = (
                f"customer signed off, rating {r.rating}/5"
                if r.kind == "customer"
                else "closed automatically"
            )
            add(
                r.at,
                "sign_off",
                0,
                text,
                {"kind": r.kind, "rating": r.rating, "comment": r.comment, "actor": r.actor},
            )
        for r in await conn.execute(
            select(return_events).where(return_events.c.order_id == order_id)
        ):
            add(
                r.at,
                "return",
                r.id,
                f"return {r.return_id} line {r.line_no}: {r.from_state or 'new'} -> "
                f"{r.to_state}" + (f" ({r.reason})" if r.reason else ""),
                {
                    "return_id": r.return_id,
                    "line_no": r.line_no,
                    "from": r.from_state,
                    "to": r.to_state,
                    "actor": r.actor,
                    "reason": r.reason,
                },
            )
        for r in await conn.execute(select(claims).where(claims.c.order_id == order_id)):
            add(
                r.created_at,
                "claim",
                0,
                f"claim {r.id} ({r.kind}) against {r.carrier}: {r.state}"
                + (
                    f", replacement order {r.replacement_order_id}"
                    if r.replacement_order_id
                    else ""
                ),
                {
                    "claim_id": r.id,
                    "shipment_id": r.shipment_id,
                    "state": r.state,
                    "replacement_order_id": r.replacement_order_id,
                },
            )
        for r in await conn.execute(
            select(customer_notices).where(customer_notices.c.order_id == order_id)
        ):
            add(
                r.created_at,
                "notice",
                r.id,
                f"notice to customer ({r.channel}): {r.message}",
                {"notice_kind": r.kind, "channel": r.channel, "sent": r.sent_at is not None},
            )
        shown = select(notifications).where(notifications.c.order_id == order_id)
        if not staff_view:
            shown = shown.where(notifications.c.audience == "customer")
        for r in await conn.execute(shown):
            # A channel's error text can name servers and other people's addresses.
            error = r.last_error if staff_view else None
            add(
                r.sent_at or r.updated_at,
                "notification",
                r.id,
                _notification_summary(r, error),
                {
                    "notification_id": r.id,
                    "notification_kind": r.kind,
                    "audience": r.audience,
                    "channel": r.channel,
                    "state": r.state,
                    "attempts": r.attempts,
                    "last_error": error,
                },
            )
    entries.sort(key=lambda e: (e[0], e[1], e[2]))
    return [e[3] for e in entries]
