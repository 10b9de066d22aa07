"""Customer service corrects an order kept in ``exception`` (design §1 step 1).

A correction changes the contact, the address and/or the lines, says why, and is
checked by the same rules as intake (``wcs.domain.intake.examine``): a correction
that still fails them is refused whole and changes nothing. One that passes moves
the order ``exception -> validated`` and on, as intake would: ``reserved``, or
``backordered`` with replenishment requests. The correction (who, why, every field
before and after) is kept in ``order_corrections`` and shown in the order's
timeline; the order's ``order_invalid`` alert is resolved by it.

Only an order that never held stock can be corrected: one that went to exception
from the floor (a short pick, a damage write-off) has units in totes and is
re-picked or cancelled there instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.contract.topics import Topics
from wcs.domain.intake import IntakeLine, IntakeOrder, examine
from wcs.domain.states import OrderState
from wcs.errors import Conflict, NotFound, ValidationFailed
from wcs.persistence import inventory
from wcs.persistence.db import transaction
from wcs.persistence.orders import close_alerts_about, transition
from wcs.persistence.tables import (
    order_corrections,
    order_lines,
    orders,
    replenishment_requests,
    reservations,
    skus,
)
from wcs.services.order_views import get_order
from wcs.timeutil import as_utc, utcnow

CONTACT_FIELDS = ("customer_name", "phone", "email")
ADDRESS_FIELDS = ("line1", "line2", "city", "postal_code", "country")


class CorrectionRefused(ValidationFailed):
    """The corrected order still fails the intake checks; ``errors`` says which."""

    code = "correction_invalid"

    def __init__(self, order_id: str, problems: Sequence[str]) -> None:
        super().__init__(
            f"order {order_id} is not changed: the correction still fails the checks: "
            + "; ".join(problems),
            order_id=order_id,
        )
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class Correction:
    """What to change (None: keep) and why."""

    reason: str
    customer: Mapping[str, str | None] | None = None  # name, phone, email
    address: Mapping[str, str | None] | None = None  # line1, line2, city, postal_code, country
    lines: Sequence[tuple[str, int]] | None = None


def _merged(row: Any, correction: Correction) -> dict[str, Any]:
    values = {f: getattr(row, f) for f in (*CONTACT_FIELDS, *ADDRESS_FIELDS)}
    if correction.customer is not None:
        renames = {"name": "customer_name", "phone": "phone", "email": "email"}
        for key, value in correction.customer.items():
            values[renames[key]] = value
    if correction.address is not None:
        values.update(correction.address)
    values["country"] = str(values["country"]).upper()
    return values


async def correct_order(
    engine: AsyncEngine, topics: Topics, order_id: str, correction: Correction, *, actor: str
) -> dict[str, Any]:
    reason = correction.reason.strip()
    if not reason:
        raise ValidationFailed("say why the order is corrected (reason)")
    if correction.customer is None and correction.address is None and correction.lines is None:
        raise ValidationFailed("a correction changes the customer, the address or the lines")
    now = utcnow()
    async with transaction(engine) as conn:
        row = (
            await conn.execute(select(orders).where(orders.c.id == order_id).with_for_update())
        ).first()
        if row is None:
            raise NotFound(f"order {order_id} does not exist", order_id=order_id)
        if row.state != OrderState.EXCEPTION:
            raise Conflict(
                f"order {order_id} is {row.state}: only an order in exception is corrected "
                "(cancel it instead, or change it on the floor)",
                order_id=order_id,
            )
        held = await conn.scalar(
            select(func.count())
            .select_from(reservations)
            .where(reservations.c.order_id == order_id)
        )
        if held:
            raise Conflict(
                f"order {order_id} went to exception on the floor with stock already taken; "
                "re-pick or cancel it there",
                order_id=order_id,
            )
        old_lines = [
            (r.sku, int(r.qty))
            for r in await conn.execute(
                select(order_lines.c.sku, order_lines.c.qty)
                .where(order_lines.c.order_id == order_id)
                .order_by(order_lines.c.line_no)
            )
        ]
        new_lines = list(correction.lines) if correction.lines is not None else old_lines
        values = _merged(row, correction)
        wanted = sorted({sku for sku, _ in new_lines})
        known = set((await conn.scalars(select(skus.c.sku).where(skus.c.sku.in_(wanted)))).all())
        examined = examine(
            IntakeOrder(
                external_id=row.external_id,
                customer_name=str(values["customer_name"] or ""),
                phone=values["phone"],
                email=values["email"],
                line1=str(values["line1"] or ""),
                city=str(values["city"] or ""),
                postal_code=str(values["postal_code"] or ""),
                country=str(values["country"] or ""),
                lines=[IntakeLine(sku, qty) for sku, qty in new_lines],
            ),
            known,
        )
        if examined.problems:
            raise CorrectionRefused(order_id, examined.problems)
        values["phone"], values["email"] = examined.phone, examined.email
        changes: dict[str, Any] = {
            field: [getattr(row, field), values[field]]
            for field in (*CONTACT_FIELDS, *ADDRESS_FIELDS)
            if getattr(row, field) != values[field]
        }
        if new_lines != old_lines:
            changes["lines"] = [[list(x) for x in old_lines], [list(x) for x in new_lines]]
            await conn.execute(delete(order_lines).where(order_lines.c.order_id == order_id))
            await conn.execute(
                insert(order_lines),
                [
                    {"order_id": order_id, "line_no": n, "sku": sku, "qty": qty, "qty_picked": 0}
                    for n, (sku, qty) in enumerate(new_lines, start=1)
                ],
            )
        if not changes:
            raise ValidationFailed(
                "the correction changes nothing; the order stays in exception", order_id=order_id
            )
        await conn.execute(
            insert(order_corrections).values(
                order_id=order_id,
                actor=actor[:64],
                reason=reason[:1000],
                changes=changes,
                from_state=row.state,
                to_state=OrderState.VALIDATED,
                at=now,
            )
        )
        await conn.execute(
            update(orders)
            .where(orders.c.id == order_id)
            .values(
                **{f: values[f] for f in (*CONTACT_FIELDS, *ADDRESS_FIELDS)}, exception_reason=None
            )
        )
        await transition(
            conn,
            topics,
            order_id,
            OrderState.VALIDATED,
            actor=actor,
            reason=f"corrected by customer service: {reason[:300]}",
            at=now,
        )
        plan = await inventory.reserve(conn, order_id, await inventory.order_demand(conn, order_id))
        if plan.complete:
            await transition(
                conn, topics, order_id, OrderState.RESERVED, actor=actor, reason="stock reserved"
            )
        else:
            short = ", ".join(f"{s.sku} short {s.missing}" for s in plan.shortages)
            await transition(
                conn,
                topics,
                order_id,
                OrderState.BACKORDERED,
                actor=actor,
                reason=f"shortage: {short}",
            )
            await conn.execute(
                insert(replenishment_requests),
                [
                    {
                        "sku": s.sku,
                        "qty": s.missing,
                        "order_id": order_id,
                        "state": "open",
                        "created_at": now,
                    }
                    for s in plan.shortages
                ],
            )
        await close_alerts_about(
            conn, order_id, resolved_by=f"order corrected by {actor}", codes=["order_invalid"]
        )
    return await get_order(engine, order_id)


async def corrections_of(engine: AsyncEngine, order_id: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(order_corrections)
            .where(and_(order_corrections.c.order_id == order_id))
            .order_by(order_corrections.c.id)
        )
        return [
            {
                "id": r.id,
                "actor": r.actor,
                "reason": r.reason,
                "changes": r.changes,
                "from": r.from_state,
                "to": r.to_state,
                "at": as_utc(r.at),
            }
            for r in rows
        ]
