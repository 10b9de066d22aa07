"""Quality control (design §1 step 4): count by scans, packaging and appearance by the
QC operator; fail -> re-pick or damage write-off.

Shared by the controller (scans at the QC station) and the API (the operator's
result and the resolution of a failure), so both decide the same way.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.contract.topics import Topics
from wcs.domain.geometry import Location, layouts_for
from wcs.domain.routing import route
from wcs.domain.states import OrderState
from wcs.errors import IllegalTransition, NotFound, ValidationFailed
from wcs.ids import new_id
from wcs.persistence import inventory
from wcs.persistence.db import transaction
from wcs.persistence.orders import lock_order, transition
from wcs.persistence.tables import (
    activity,
    locations,
    order_lines,
    pick_batches,
    pick_tasks,
    qc_checks,
    reservations,
    stock,
    stock_moves,
    totes,
)
from wcs.timeutil import utcnow


async def expected_counts(conn: AsyncConnection, order_id: str) -> dict[str, int]:
    rows = await conn.execute(
        select(order_lines.c.sku, order_lines.c.qty).where(order_lines.c.order_id == order_id)
    )
    return {r.sku: int(r.qty) for r in rows}


async def open_check(conn: AsyncConnection, order_id: str, station: str | None, actor: str) -> None:
    """Start (or restart) the count for an order arriving at a QC bench."""
    now = utcnow()
    exists = await conn.scalar(select(qc_checks.c.order_id).where(qc_checks.c.order_id == order_id))
    values: dict[str, Any] = {
        "station": station,
        "scanned": {},
        "packaging_ok": None,
        "appearance_ok": None,
        "result": None,
        "note": None,
        "photo": None,
        "photo_sha256": None,
        "updated_at": now,
    }
    if exists is None:
        await conn.execute(insert(qc_checks).values(order_id=order_id, **values))
    else:
        await conn.execute(
            update(qc_checks).where(qc_checks.c.order_id == order_id).values(**values)
        )


async def current_check(conn: AsyncConnection, station: str) -> str | None:
    value = await conn.scalar(
        select(qc_checks.c.order_id)
        .where(and_(qc_checks.c.station == station, qc_checks.c.result.is_(None)))
        .order_by(qc_checks.c.updated_at.desc())
        .limit(1)
    )
    return str(value) if value is not None else None


async def count_item(
    conn: AsyncConnection,
    topics: Topics,
    order_id: str,
    sku: str | None,
    code: str,
    *,
    actor: str,
    require_operator: bool,
) -> str:
    """Count one scanned item; returns 'counting', 'passed' or 'failed'."""
    row = (
        await conn.execute(
            select(qc_checks).where(qc_checks.c.order_id == order_id).with_for_update()
        )
    ).first()
    if row is None:
        raise NotFound(f"no QC check is open for order {order_id}")
    expected = await expected_counts(conn, order_id)
    scanned = dict(row.scanned or {})
    if sku is None or sku not in expected:
        return await _finish(
            conn, topics, order_id, False, f"item {code[:40]} is not in the order", actor
        )
    scanned[sku] = scanned.get(sku, 0) + 1
    await conn.execute(
        update(qc_checks)
        .where(qc_checks.c.order_id == order_id)
        .values(scanned=scanned, updated_at=utcnow())
    )
    if scanned[sku] > expected[sku]:
        return await _finish(
            conn,
            topics,
            order_id,
            False,
            f"{scanned[sku]} x {sku} counted, order has {expected[sku]}",
            actor,
        )
    return await evaluate(conn, topics, order_id, actor=actor, require_operator=require_operator)


async def evaluate(
    conn: AsyncConnection, topics: Topics, order_id: str, *, actor: str, require_operator: bool
) -> str:
    row = (await conn.execute(select(qc_checks).where(qc_checks.c.order_id == order_id))).first()
    if row is None:
        raise NotFound(f"no QC check is open for order {order_id}")
    if row.result is not None:
        return str(row.result)
    if row.packaging_ok is False or row.appearance_ok is False:
        what = "packaging" if row.packaging_ok is False else "appearance"
        return await _finish(conn, topics, order_id, False, f"{what} not acceptable", actor)
    if (row.scanned or {}) != await expected_counts(conn, order_id):
        return "counting"
    if require_operator and (row.packaging_ok is None or row.appearance_ok is None):
        return "counting"
    return await _finish(conn, topics, order_id, True, "count complete", actor)


async def _finish(
    conn: AsyncConnection, topics: Topics, order_id: str, passed: bool, reason: str, actor: str
) -> str:
    now = utcnow()
    result = "passed" if passed else "failed"
    await conn.execute(
        update(qc_checks)
        .where(qc_checks.c.order_id == order_id)
        .values(result=result, note=reason, updated_at=now)
    )
    await transition(
        conn,
        topics,
        order_id,
        OrderState.QC_PASSED if passed else OrderState.QC_FAILED,
        actor=actor,
        reason=reason,
    )
    await conn.execute(
        insert(activity).values(
            at=now,
            kind="qc_pass" if passed else "qc_fail",
            ok=passed,
            order_id=order_id,
            detail={"reason": reason},
        )
    )
    await conn.execute(
        update(totes)
        .where(and_(totes.c.order_id == order_id, totes.c.state.in_(("to_qc", "qc"))))
        .values(state="qc" if passed else "exception", updated_at=now)
    )
    return result


async def record_operator_result(
    engine: AsyncEngine,
    topics: Topics,
    order_id: str,
    *,
    packaging_ok: bool,
    appearance_ok: bool,
    note: str | None,
    actor: str,
    require_operator: bool,
    photo: tuple[str, str] | None = None,
) -> str:
    """``photo``: (path under the data directory, SHA-256) of the operator's photo."""
    async with transaction(engine) as conn:
        return await operator_result_in(
            conn,
            topics,
            order_id,
            packaging_ok=packaging_ok,
            appearance_ok=appearance_ok,
            note=note,
            actor=actor,
            require_operator=require_operator,
            photo=photo,
        )


async def operator_result_in(
    conn: AsyncConnection,
    topics: Topics,
    order_id: str,
    *,
    packaging_ok: bool,
    appearance_ok: bool,
    note: str | None,
    actor: str,
    require_operator: bool,
    photo: tuple[str, str] | None = None,
) -> str:
    """The verdict for an order that is on no QC bench (its tote not scanned yet): it
    is kept on the order's check, which its bench then counts against. ``photo``:
    (path under the data directory, SHA-256) of the operator's photo."""
    head = await lock_order(conn, order_id)
    if head.state != OrderState.PICKED:
        raise IllegalTransition(
            order_id, head.state, "qc_passed", "QC results are for picked orders"
        )
    result = await conn.execute(
        select(qc_checks.c.order_id, qc_checks.c.result).where(qc_checks.c.order_id == order_id)
    )
    check = result.first()
    if check is None or check.result is not None:
        # No check yet, or one from an earlier pass (the order came back to QC):
        # this verdict starts a fresh one.
        await open_check(conn, order_id, None, actor)
    await conn.execute(
        update(qc_checks)
        .where(qc_checks.c.order_id == order_id)
        .values(
            packaging_ok=packaging_ok,
            appearance_ok=appearance_ok,
            note=note,
            updated_at=utcnow(),
            **({"photo": photo[0], "photo_sha256": photo[1]} if photo else {}),
        )
    )
    return await evaluate(conn, topics, order_id, actor=actor, require_operator=require_operator)


async def attach_photo(conn: AsyncConnection, order_id: str, photo: tuple[str, str]) -> None:
    """The operator's photo (path under the data directory, SHA-256) with the order's check."""
    await conn.execute(
        update(qc_checks)
        .where(qc_checks.c.order_id == order_id)
        .values(photo=photo[0], photo_sha256=photo[1])
    )


async def resolve_failure(
    engine: AsyncEngine, topics: Topics, order_id: str, *, action: str, actor: str
) -> str:
    async with transaction(engine) as conn:
        return await resolve_in(conn, topics, order_id, action=action, actor=actor)


async def resolve_in(
    conn: AsyncConnection, topics: Topics, order_id: str, *, action: str, actor: str
) -> str:
    """After a QC failure: ``repick`` (units back to their shelves, order picked anew)
    or ``write_off`` (units damaged, written off; order to exception)."""
    if action not in ("repick", "write_off"):
        raise ValidationFailed("action must be 'repick' or 'write_off'")
    now = utcnow()
    head = await lock_order(conn, order_id)
    if head.state != OrderState.QC_FAILED:
        raise IllegalTransition(
            order_id,
            head.state,
            "picking" if action == "repick" else "exception",
            "only a failed QC can be resolved",
        )
    picked = (
        await conn.execute(
            select(reservations).where(
                and_(reservations.c.order_id == order_id, reservations.c.state == "picked")
            )
        )
    ).all()
    kind = "restock" if action == "repick" else "writeoff"
    for r in picked:
        if action == "repick":
            await conn.execute(
                update(stock)
                .where(and_(stock.c.sku == r.sku, stock.c.location == r.location))
                .values(on_hand=stock.c.on_hand + r.qty, updated_at=now)
            )
        await conn.execute(
            insert(stock_moves).values(
                sku=r.sku,
                location=r.location,
                kind=kind,
                qty=r.qty if action == "repick" else 0,
                order_id=order_id,
                actor=actor,
                at=now,
            )
        )
    await conn.execute(
        update(reservations)
        .where(and_(reservations.c.order_id == order_id, reservations.c.state == "picked"))
        .values(state="restocked" if action == "repick" else "written_off")
    )
    await conn.execute(
        update(order_lines).where(order_lines.c.order_id == order_id).values(qty_picked=0)
    )
    await conn.execute(
        update(totes)
        .where(totes.c.order_id == order_id)
        .values(state="free", order_id=None, updated_at=now)
    )
    if action == "write_off":
        await transition(
            conn,
            topics,
            order_id,
            OrderState.EXCEPTION,
            actor=actor,
            reason="QC failed, units written off as damaged",
        )
        return "exception"
    demand = await inventory.order_demand(conn, order_id)
    # A re-pick goes straight back to the floor: face stock only.
    plan = await inventory.reserve(conn, order_id, demand, zones=(inventory.PICKABLE_ZONE,))
    if not plan.complete:
        await transition(
            conn,
            topics,
            order_id,
            OrderState.EXCEPTION,
            actor=actor,
            reason="QC failed and no stock to pick again",
        )
        return "exception"
    await _replan(conn, order_id, now)
    await transition(
        conn, topics, order_id, OrderState.PICKING, actor=actor, reason="re-pick after QC"
    )
    return "picking"


async def _replan(conn: AsyncConnection, order_id: str, now: Any) -> None:
    """A batch of its own for the re-pick, on the pick station of the original batch,
    routed optimally through the locations now reserved."""
    previous = (
        await conn.execute(
            select(pick_batches.c.station, pick_batches.c.wave_id)
            .join(pick_tasks, pick_tasks.c.batch_id == pick_batches.c.id)
            .where(pick_tasks.c.order_id == order_id)
            .limit(1)
        )
    ).first()
    active = (
        await conn.execute(
            select(
                reservations.c.id,
                reservations.c.line_id,
                reservations.c.sku,
                reservations.c.qty,
                locations.c.code,
                locations.c.aisle,
                locations.c.bay,
                locations.c.level,
                locations.c.zone,
            )
            .join(locations, locations.c.code == reservations.c.location)
            .where(and_(reservations.c.order_id == order_id, reservations.c.state == "active"))
        )
    ).all()
    places = [Location(r.code, r.aisle, r.bay, r.level, r.zone) for r in active]
    layouts = layouts_for(places)
    rank: dict[str, int] = {}
    distance = 0.0
    for zone, layout in layouts.items():
        walk = route(layout, [p for p in places if p.zone == zone])
        distance += walk.distance_m
        for code in walk.codes:
            rank.setdefault(code, len(rank))
    batch_id = new_id("b")
    await conn.execute(
        insert(pick_batches).values(
            id=batch_id,
            wave_id=previous.wave_id if previous else None,
            station=previous.station if previous else None,
            state="open",
            zone=",".join(sorted(layouts)),
            distance_m=distance,
            stops=sorted(rank, key=rank.__getitem__),
            created_at=now,
        )
    )
    await conn.execute(
        update(pick_tasks)
        .where(and_(pick_tasks.c.order_id == order_id, pick_tasks.c.state.in_(("open", "lit"))))
        .values(state="cancelled", updated_at=now)
    )
    await conn.execute(
        insert(pick_tasks),
        [
            {
                "batch_id": batch_id,
                "seq": rank.get(r.code, len(rank)),
                "order_id": order_id,
                "line_id": r.line_id,
                "reservation_id": r.id,
                "sku": r.sku,
                "location": r.code,
                "qty": r.qty,
                "qty_picked": 0,
                "state": "open",
                "ptl_device": None,  # the controller resolves slots when it lights them
                "ptl_slot": None,
                "updated_at": now,
            }
            for r in active
        ],
    )
