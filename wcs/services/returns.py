"""After-sales returns (RMA): request, label, receipt, inspection, resolution (design §1 step 8).

Each returned order line follows ``wcs.domain.states.RETURN_TRANSITIONS``
(``return_requested -> return_in_transit -> return_received -> inspected ->
refunded | exchanged | rejected``); every line move is a ``return_events`` row, and
the order timeline shows them. The order itself keeps its state (``delivered`` or
``closed``); an open return only holds back the automatic close.

Decisions:

- A return may be requested once the order is delivered (or closed), per line, for
  at most the delivered quantity minus what earlier returns (not rejected) took.
- The return label is generated here, not booked with a carrier: it goes to our
  own returns desk, carries the RMA number (the return id) as a Code 128 barcode
  that the desk scans, and the customer drops it at any parcel shop.
- Restocking: lines graded ``resellable`` go back into stock when the return is
  resolved with a refund or an exchange (not when rejected: the goods then go back
  to the customer). They go to the ``returns``-zone location ``RETURNS`` (created
  on first use), not to their old pick face: stock there counts as on hand but is
  not promised to customers until someone puts it away to a pick location after a
  last look, so a unit still on the returns desk is never reserved for an order.
  Each restock is a ``stock_moves`` row of kind ``return``.
  ``refurbish`` and ``scrap`` lines are recorded with their grade only.
- An exchange submits a replacement order through the normal intake
  (``wcs.services.orders.submit_order`` with ``linked_order_id``), keyed
  ``exchange:<return id>``: it is reserved like any order, and resolving again after
  an interruption finds the same order instead of creating a second one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.contract.topics import Topics
from wcs.domain.delivery import ReturnWish, check_return, from_minor_units, return_label
from wcs.domain.orders import check_return_move
from wcs.domain.states import OrderState, ReturnState
from wcs.errors import Conflict, NotFound, ValidationFailed
from wcs.ids import new_id
from wcs.persistence.db import transaction
from wcs.persistence.inventory import availability
from wcs.persistence.orders import lock_order
from wcs.persistence.tables import (
    locations,
    order_lines,
    return_events,
    return_lines,
    returns,
    skus,
    stock,
    stock_moves,
)
from wcs.services.notices import add_notice
from wcs.services.orders import submit_order
from wcs.services.shipments import order_row
from wcs.services.tracking import replacement_order
from wcs.timeutil import as_utc, utcnow

S = OrderState
R = ReturnState
GRADES = ("resellable", "refurbish", "scrap")
RESOLUTIONS = ("refund", "exchange", "rejected")
RETURNABLE_STATES = (S.DELIVERED, S.CLOSED)
RETURNS_LOCATION = "RETURNS"
RETURNS_DESK_ADDRESS = ("Returns desk", "Warehouse returns department")
RESOLVED_STATE = {"refund": R.REFUNDED, "exchange": R.EXCHANGED, "rejected": R.REJECTED}


async def _lock_return(conn: AsyncConnection, return_id: str) -> Row[Any]:
    order_id = await conn.scalar(select(returns.c.order_id).where(returns.c.id == return_id))
    if order_id is None:
        raise NotFound(f"return {return_id} does not exist", return_id=return_id)
    await lock_order(conn, order_id)
    return (
        await conn.execute(select(returns).where(returns.c.id == return_id).with_for_update())
    ).one()


async def _lines(conn: AsyncConnection, return_id: str) -> list[Row[Any]]:
    return list(
        (
            await conn.execute(
                select(return_lines)
                .where(return_lines.c.return_id == return_id)
                .order_by(return_lines.c.line_no)
            )
        ).all()
    )


async def _move(
    conn: AsyncConnection,
    ret: Row[Any],
    lines: Sequence[Row[Any]],
    target: str,
    *,
    actor: str,
    reason: str,
    at: datetime,
    extra: Mapping[int, Mapping[str, Any]] | None = None,
) -> None:
    """Move every given line to ``target``; IllegalTransition names the first that cannot."""
    for line in lines:
        check_return_move(f"return {ret.id} line {line.line_no}", line.state, target)
    for line in lines:
        values = {"state": target, **((extra or {}).get(line.line_no, {}))}
        await conn.execute(update(return_lines).where(return_lines.c.id == line.id).values(values))
    await conn.execute(
        insert(return_events),
        [
            {
                "return_id": ret.id,
                "order_id": ret.order_id,
                "line_no": line.line_no,
                "from_state": line.state,
                "to_state": target,
                "actor": actor[:64],
                "reason": reason[:500],
                "at": at,
            }
            for line in lines
        ],
    )
    await conn.execute(update(returns).where(returns.c.id == ret.id).values(updated_at=at))


async def request_return(
    engine: AsyncEngine,
    topics: Topics,
    order_id: str,
    wishes: Sequence[ReturnWish],
    *,
    actor: str,
    returns_address: Sequence[str] = RETURNS_DESK_ADDRESS,
) -> str:
    """Open a return for some delivered lines; returns its id (the RMA number).
    ``returns_address`` is the warehouse's (``WCS_RETURNS__*``), printed on the label."""
    if not wishes:
        raise ValidationFailed("name at least one order line to return")
    async with transaction(engine) as conn:
        head = await lock_order(conn, order_id)
        if head.state not in RETURNABLE_STATES:
            raise Conflict(
                f"order {order_id} is {head.state}; a return can be requested once it is delivered",
                order_id=order_id,
            )
        ordered = {
            r.line_no: r
            for r in (
                await conn.execute(
                    select(
                        order_lines.c.id,
                        order_lines.c.line_no,
                        order_lines.c.sku,
                        order_lines.c.qty,
                    ).where(order_lines.c.order_id == order_id)
                )
            ).all()
        }
        taken = {
            int(line_no): int(qty)
            for line_no, qty in (
                await conn.execute(
                    select(return_lines.c.line_no, func.sum(return_lines.c.qty))
                    .join(returns, returns.c.id == return_lines.c.return_id)
                    .where(and_(returns.c.order_id == order_id, return_lines.c.state != R.REJECTED))
                    .group_by(return_lines.c.line_no)
                )
            ).all()
        }
        problems = check_return({n: r.qty for n, r in ordered.items()}, taken, wishes)
        if problems:
            raise ValidationFailed("; ".join(problems), errors=problems)
        order = await order_row(conn, order_id)
        return_id = new_id("rma_")
        now = utcnow()
        sender = [
            order.customer_name,
            order.line1,
            order.line2 or "",
            f"{order.postal_code} {order.city}",
            order.country,
        ]
        await conn.execute(
            insert(returns).values(
                id=return_id,
                order_id=order_id,
                requested_by=actor[:64],
                label_format="zpl",
                label_data=return_label(return_id, sender, returns_address),
                created_at=now,
                updated_at=now,
            )
        )
        await conn.execute(
            insert(return_lines),
            [
                {
                    "return_id": return_id,
                    "order_line_id": ordered[w.line_no].id,
                    "line_no": w.line_no,
                    "sku": ordered[w.line_no].sku,
                    "qty": w.qty,
                    "reason": w.reason[:500],
                    "state": R.RETURN_REQUESTED,
                }
                for w in wishes
            ],
        )
        await conn.execute(
            insert(return_events),
            [
                {
                    "return_id": return_id,
                    "order_id": order_id,
                    "line_no": w.line_no,
                    "from_state": None,
                    "to_state": R.RETURN_REQUESTED,
                    "actor": actor[:64],
                    "reason": w.reason[:500],
                    "at": now,
                }
                for w in wishes
            ],
        )
        await add_notice(
            conn,
            order_id,
            "return_label",
            f"Your return {return_id} is registered. Print the return label, stick it on "
            "the parcel and drop it at any parcel shop.",
            at=now,
        )
    return return_id


async def mark_in_transit(engine: AsyncEngine, return_id: str, *, actor: str) -> None:
    """The customer's parcel is on its way back (label scanned by the carrier)."""
    async with transaction(engine) as conn:
        ret = await _lock_return(conn, return_id)
        lines = await _lines(conn, return_id)
        await _move(
            conn, ret, lines, R.RETURN_IN_TRANSIT, actor=actor, reason="on its way", at=utcnow()
        )


async def mark_received(engine: AsyncEngine, return_id: str, *, actor: str) -> None:
    """The returns desk has the goods (sent back, or brought in person)."""
    async with transaction(engine) as conn:
        ret = await _lock_return(conn, return_id)
        lines = await _lines(conn, return_id)
        await _move(
            conn,
            ret,
            lines,
            R.RETURN_RECEIVED,
            actor=actor,
            reason="received at the returns desk",
            at=utcnow(),
        )


async def inspect_return(
    engine: AsyncEngine,
    return_id: str,
    *,
    grade: str | None,
    line_grades: Mapping[int, str] | None = None,
    note: str | None = None,
    actor: str,
) -> None:
    """Grade every line: ``grade`` for all, ``line_grades`` per line number overriding it."""
    line_grades = dict(line_grades or {})
    for value in [grade, *line_grades.values()]:
        if value is not None and value not in GRADES:
            raise ValidationFailed(f"grade {value!r} is unknown; use one of {', '.join(GRADES)}")
    async with transaction(engine) as conn:
        ret = await _lock_return(conn, return_id)
        lines = await _lines(conn, return_id)
        unknown = sorted(set(line_grades) - {line.line_no for line in lines})
        if unknown:
            raise ValidationFailed(f"return {return_id} has no line(s) {unknown}")
        grades = {line.line_no: line_grades.get(line.line_no, grade) for line in lines}
        missing = [n for n, g in grades.items() if g is None]
        if missing:
            raise ValidationFailed(
                f"no grade for line(s) {missing}; give 'grade' for all lines or one per line"
            )
        summary = ", ".join(f"line {n}: {g}" for n, g in grades.items())
        await _move(
            conn,
            ret,
            lines,
            R.INSPECTED,
            actor=actor,
            reason=f"graded {summary}" + (f" ({note})" if note else ""),
            at=utcnow(),
            extra={n: {"grade": g} for n, g in grades.items()},
        )
        if note:
            await conn.execute(update(returns).where(returns.c.id == return_id).values(note=note))


async def _restock(
    conn: AsyncConnection, ret: Row[Any], lines: Sequence[Row[Any]], *, actor: str, at: datetime
) -> dict[int, Mapping[str, Any]]:
    resellable = [line for line in lines if line.grade == "resellable"]
    if not resellable:
        return {}
    known = await conn.scalar(select(locations.c.code).where(locations.c.code == RETURNS_LOCATION))
    if known is None:
        await conn.execute(
            insert(locations).values(
                code=RETURNS_LOCATION, zone="returns", aisle=1, bay=1, level=0, updated_at=at
            )
        )
    for line in resellable:
        result = await conn.execute(
            update(stock)
            .where(and_(stock.c.sku == line.sku, stock.c.location == RETURNS_LOCATION))
            .values(on_hand=stock.c.on_hand + line.qty, updated_at=at)
        )
        if result.rowcount == 0:
            await conn.execute(
                insert(stock).values(
                    sku=line.sku,
                    location=RETURNS_LOCATION,
                    on_hand=line.qty,
                    reserved=0,
                    updated_at=at,
                )
            )
    await conn.execute(
        insert(stock_moves),
        [
            {
                "sku": line.sku,
                "location": RETURNS_LOCATION,
                "kind": "return",
                "qty": line.qty,
                "order_id": ret.order_id,
                "actor": actor[:64],
                "at": at,
            }
            for line in resellable
        ],
    )
    return {line.line_no: {"restocked_location": RETURNS_LOCATION} for line in resellable}


def _already(ret: Row[Any], lines: Sequence[Row[Any]], resolution: str) -> bool:
    """True when the return is already resolved this way (a repeated request)."""
    if ret.resolution is None:
        return False
    done = all(line.state == RESOLVED_STATE[ret.resolution] for line in lines)
    if ret.resolution != resolution:
        raise Conflict(
            f"return {ret.id} is already being resolved as {ret.resolution}; it cannot "
            f"become {resolution}",
            return_id=ret.id,
        )
    return done


async def resolve_return(
    engine: AsyncEngine,
    topics: Topics,
    return_id: str,
    resolution: str,
    *,
    actor: str,
    refund_minor: int | None = None,
    currency: str = "EUR",
    note: str | None = None,
) -> dict[str, Any]:
    """Refund (amount in cents), exchange (replacement order) or reject an inspected return."""
    if resolution not in RESOLUTIONS:
        raise ValidationFailed(
            f"resolution {resolution!r} is unknown; use one of {', '.join(RESOLUTIONS)}"
        )
    if resolution == "refund" and refund_minor is None:
        raise ValidationFailed("a refund needs its amount")
    if resolution != "refund" and refund_minor is not None:
        raise ValidationFailed(f"an amount is only given with a refund, not with {resolution}")
    target = RESOLVED_STATE[resolution]
    replacement_id: str | None = None
    if resolution == "exchange":
        replacement_id = await _exchange_order(engine, topics, return_id, actor=actor)
    async with transaction(engine) as conn:
        ret = await _lock_return(conn, return_id)
        lines = await _lines(conn, return_id)
        if ret.resolution is not None and _already(ret, lines, resolution):
            return await _view(conn, ret)
        now = utcnow()
        extra = (
            {}
            if resolution == "rejected"
            else await _restock(conn, ret, lines, actor=actor, at=now)
        )
        reason = {
            "refund": f"refund of {from_minor_units(refund_minor or 0)} {currency}",
            "exchange": f"replacement order {replacement_id}",
            "rejected": "return refused",
        }[resolution] + (f" ({note})" if note else "")
        await _move(conn, ret, lines, target, actor=actor, reason=reason, at=now, extra=extra)
        await conn.execute(
            update(returns)
            .where(returns.c.id == return_id)
            .values(
                resolution=resolution,
                refund_minor=refund_minor,
                currency=currency if resolution == "refund" else None,
                replacement_order_id=replacement_id,
                note=note or ret.note,
                updated_at=now,
            )
        )
        message = {
            "refund": f"Your return {return_id} is refunded: "
            f"{from_minor_units(refund_minor or 0)} {currency}.",
            "exchange": f"Your return {return_id} is exchanged; the replacement ships as "
            f"order {replacement_id}.",
            "rejected": f"Your return {return_id} could not be accepted"
            + (f": {note}" if note else "")
            + ". The goods will be sent back to you.",
        }[resolution]
        await add_notice(conn, ret.order_id, resolution, message, at=now)
        ret = (await conn.execute(select(returns).where(returns.c.id == return_id))).one()
        return await _view(conn, ret)


async def _exchange_order(
    engine: AsyncEngine, topics: Topics, return_id: str, *, actor: str
) -> str:
    """Claim the exchange, then submit the replacement order (idempotent on the return)."""
    async with transaction(engine) as conn:
        ret = await _lock_return(conn, return_id)
        lines = await _lines(conn, return_id)
        if ret.resolution is not None:
            _already(ret, lines, "exchange")  # raises when resolved another way
        else:
            for line in lines:
                check_return_move(f"return {ret.id} line {line.line_no}", line.state, R.EXCHANGED)
            # Claimed before the replacement exists, so a concurrent refund cannot also win.
            await conn.execute(
                update(returns).where(returns.c.id == return_id).values(resolution="exchange")
            )
        original = await order_row(conn, ret.order_id)
        # The variant the customer chose for a line, else the same item again.
        chosen = ret.exchange_skus or {}
        wanted = [(chosen.get(str(line.line_no), line.sku), line.qty) for line in lines]
    result = await submit_order(
        engine,
        topics,
        replacement_order(original, wanted, f"exchange-{return_id}"),
        idempotency_key=f"exchange:{return_id}",
        request_hash=f"exchange:{return_id}",
        actor=actor,
    )
    return result.order_id


async def _view(conn: AsyncConnection, ret: Row[Any]) -> dict[str, Any]:
    lines = await _lines(conn, ret.id)
    states = {line.state for line in lines}
    return {
        "id": ret.id,
        "order_id": ret.order_id,
        "customer_choice": ret.customer_choice,
        "exchange_skus": ret.exchange_skus,
        "state": states.pop() if len(states) == 1 else "mixed",
        "lines": [
            {
                "line_no": line.line_no,
                "sku": line.sku,
                "qty": line.qty,
                "reason": line.reason,
                "state": line.state,
                "grade": line.grade,
                "restocked_location": line.restocked_location,
            }
            for line in lines
        ],
        "label": {"format": ret.label_format, "data": ret.label_data},
        "resolution": ret.resolution,
        "refund": (
            {"amount": f"{from_minor_units(ret.refund_minor)}", "currency": ret.currency}
            if ret.refund_minor is not None
            else None
        ),
        "replacement_order_id": ret.replacement_order_id,
        "note": ret.note,
        "requested_by": ret.requested_by,
        "created_at": as_utc(ret.created_at),
        "updated_at": as_utc(ret.updated_at),
    }


async def get_return(engine: AsyncEngine, return_id: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        ret = (await conn.execute(select(returns).where(returns.c.id == return_id))).first()
        if ret is None:
            raise NotFound(f"return {return_id} does not exist", return_id=return_id)
        return await _view(conn, ret)


async def order_of_return(engine: AsyncEngine, return_id: str) -> str:
    async with engine.connect() as conn:
        order_id = await conn.scalar(select(returns.c.order_id).where(returns.c.id == return_id))
    if order_id is None:
        raise NotFound(f"return {return_id} does not exist", return_id=return_id)
    return str(order_id)


async def exchange_variants(engine: AsyncEngine, return_id: str) -> dict[int, list[dict[str, Any]]]:
    """Per returned line, the other variants of the same product that are in stock for
    its quantity (the customer may exchange for any of them)."""

    async with engine.connect() as conn:
        lines = await _lines(conn, return_id)
        found: dict[int, list[dict[str, Any]]] = {}
        for line in lines:
            product = await conn.scalar(select(skus.c.product).where(skus.c.sku == line.sku))
            if not product:
                found[line.line_no] = []
                continue
            others = (
                await conn.execute(
                    select(skus.c.sku, skus.c.name, skus.c.variant)
                    .where(and_(skus.c.product == product, skus.c.sku != line.sku))
                    .order_by(skus.c.sku)
                )
            ).all()
            stock = await availability(conn, [o.sku for o in others])
            found[line.line_no] = [
                {"sku": o.sku, "name": o.name, "variant": o.variant}
                for o in others
                if sum(a.available for a in stock.get(o.sku, [])) >= line.qty
            ]
    return found


async def choose_resolution(
    engine: AsyncEngine,
    return_id: str,
    choice: Literal["refund", "exchange"],
    variants: Mapping[int, str],
) -> dict[str, Any]:
    """Record what the customer wants: a refund, or an exchange (the same item, or per
    line another variant of the same product). Only before the return is resolved."""
    offered = await exchange_variants(engine, return_id) if choice == "exchange" else {}
    for line_no, sku in variants.items():
        if sku not in {v["sku"] for v in offered.get(line_no, [])}:
            raise ValidationFailed(f"{sku} is not a variant in stock for line {line_no}")
    async with transaction(engine) as conn:
        ret = await _lock_return(conn, return_id)
        if ret.resolution is not None:
            raise Conflict(f"return {return_id} is already resolved ({ret.resolution})")
        await conn.execute(
            update(returns)
            .where(returns.c.id == return_id)
            .values(
                customer_choice=choice,
                exchange_skus={str(k): v for k, v in variants.items()} or None,
                updated_at=utcnow(),
            )
        )
        ret = (await conn.execute(select(returns).where(returns.c.id == return_id))).one()
        return await _view(conn, ret)
