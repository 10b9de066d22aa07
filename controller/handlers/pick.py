"""Pick execution at pick-to-light stations (design §1 step 3).

A pick station works one batch at a time. The controller lights the slots of the
current stop (the lowest walking-order position with work left) with the quantity
to take; a PTL confirm or an item scan records units; the next stop lights when the
current one is done. Totes are bound to the batch's orders by scanning them first.

- Mispick: an item scan that matches no lit task is refused on the spot: nothing is
  recorded as picked, the expected slot blinks red and the mispick is counted.
- Short pick: a confirm with fewer units than asked. The missing units are written
  off the shelf (it did not hold them), the rest of the line is reserved elsewhere and
  appended to the batch; with no stock elsewhere the order goes to ``exception``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.context import BatchContext
from controller.handlers.common import (
    cached_sku_for_code,
    dead_letter_scan,
    is_tote,
    min_shelf_life_days,
    move,
    sku_for_item,
)
from controller.store import ALL_PICKED, FIRST_UNIT, AfterTask
from wcs.contract.payloads import ConfirmEvent, ScanEvent
from wcs.domain import pick_scan
from wcs.domain.pick_scan import ItemCode
from wcs.domain.reservation import LineDemand
from wcs.domain.states import OrderState
from wcs.persistence import inventory
from wcs.persistence.tables import (
    order_lines,
    pick_batches,
    pick_tasks,
    picked_units,
    reservations,
    stock,
    totes,
)

LIT = "lit"
DONE = ("done", "short", "cancelled")


def _with(row: Any, **changes: Any) -> SimpleNamespace:
    """A row with some columns changed (SQLAlchemy rows are read-only)."""
    values = dict(row._mapping) if hasattr(row, "_mapping") else dict(vars(row))
    values.update(changes)
    return SimpleNamespace(**values)


async def active_batch(ctx: BatchContext, station: str) -> str | None:
    value = await ctx.conn.scalar(
        select(pick_batches.c.id)
        .where(and_(pick_batches.c.station == station, pick_batches.c.state == "active"))
        .limit(1)
    )
    return str(value) if value is not None else None


async def idle_stations(engine: AsyncEngine, stations: list[str]) -> list[str]:
    """Stations with no active batch while open work waits (two cheap queries)."""
    async with engine.connect() as conn:
        busy = set(
            (
                await conn.scalars(
                    select(pick_batches.c.station).where(pick_batches.c.state == "active")
                )
            ).all()
        )
        candidates = [s for s in stations if s not in busy]
        if not candidates:
            return []
        waiting = (
            await conn.execute(
                select(pick_batches.c.station)
                .where(pick_batches.c.state == "open")
                .group_by(pick_batches.c.station)
            )
        ).all()
    queued = {row.station for row in waiting}
    if None in queued:
        return candidates  # unassigned batches: every idle station may take one
    return [s for s in candidates if s in queued]


async def resume_stalled(ctx: BatchContext) -> None:
    """Active batches with nothing lit: light their next stop, or close them.

    Their lit task ended outside the pick flow (its order was cancelled), so no event
    will move them on."""
    lit = select(pick_tasks.c.id).where(
        and_(pick_tasks.c.batch_id == pick_batches.c.id, pick_tasks.c.state == LIT)
    )
    stalled = (
        await ctx.conn.execute(
            select(pick_batches.c.id, pick_batches.c.station).where(
                and_(pick_batches.c.state == "active", ~exists(lit))
            )
        )
    ).all()
    for batch in stalled:
        left = await ctx.conn.scalar(
            select(func.count())
            .select_from(pick_tasks)
            .where(and_(pick_tasks.c.batch_id == batch.id, pick_tasks.c.state == "open"))
        )
        if left:
            await light_next(ctx, batch.id)
            continue
        await ctx.conn.execute(
            update(pick_batches).where(pick_batches.c.id == batch.id).values(state="done")
        )
        if batch.station:
            await activate_next(ctx, batch.station)


async def _hold_station(ctx: BatchContext, station: str) -> None:
    """Serialise batch activation per station until this transaction ends.

    Two controllers that both find a station idle would otherwise each lock a
    different open batch (``SKIP LOCKED``) and activate both there. Under the lock the
    second one's "is a batch active here?" sees the first one's committed answer.
    SQLite runs one writer at a time, so it needs none."""
    if ctx.conn.dialect.name == "postgresql":
        await ctx.conn.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(f"wcs:station:{station}", 0)))
        )


async def activate_next(ctx: BatchContext, station: str) -> str | None:
    """Give an idle station its next batch (oldest first) and light its first stop."""
    await _hold_station(ctx, station)
    if await active_batch(ctx, station):
        return None
    # Batches released without a floor file (API) have no station yet: any idle
    # station takes them, after its own.
    batch_id = await ctx.conn.scalar(
        select(pick_batches.c.id)
        .where(
            and_(
                or_(pick_batches.c.station == station, pick_batches.c.station.is_(None)),
                pick_batches.c.state == "open",
            )
        )
        .order_by(pick_batches.c.station.is_(None), pick_batches.c.created_at, pick_batches.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if batch_id is None:
        return None
    await ctx.conn.execute(
        update(pick_batches)
        .where(pick_batches.c.id == batch_id)
        .values(state="active", station=station)
    )
    await light_next(ctx, str(batch_id))
    return str(batch_id)


async def light_next(
    ctx: BatchContext, batch_id: str, stop: tuple[list[Any], set[int] | None] | None = None
) -> None:
    """Light every task of the current stop that is not lit yet (one task per slot).

    ``stop``: what the store's light_stop() answered, when the statement that
    finished the previous task asked it already."""
    rows, lit_now = stop if stop is not None else await ctx.store.light_stop(batch_id, ctx.now)
    if not rows:
        return
    if lit_now is not None:  # the store lit them by the same rule
        await _light_commands(ctx, [r for r in rows if r.id in lit_now])
        return
    stop = rows[0].seq
    busy = {(r.ptl_device, r.ptl_slot) for r in rows if r.state == LIT and r.ptl_device}
    to_light: list[Any] = []
    row: Any
    for row in rows:
        if row.seq != stop or row.state == LIT:
            continue
        if row.ptl_device is None:
            # Tasks planned without the floor file (API, re-pick) get their slot now.
            slot = ctx.floor.slot_of.get(row.location)
            if slot is not None:
                row = _with(row, ptl_device=slot[0], ptl_slot=slot[1])
                await ctx.conn.execute(
                    update(pick_tasks)
                    .where(pick_tasks.c.id == row.id)
                    .values(ptl_device=slot[0], ptl_slot=slot[1])
                )
        key = (row.ptl_device, row.ptl_slot)
        if row.ptl_device and key in busy:
            continue  # that slot shows another order's units; this one lights after
        busy.add(key)
        to_light.append(row)
    if not to_light:
        return
    await ctx.store.mark_lit([r.id for r in to_light], ctx.now)
    await _light_commands(ctx, to_light)


async def _light_commands(ctx: BatchContext, rows: list[Any]) -> None:
    for row in rows:
        if row.ptl_device and row.ptl_slot is not None:
            await ctx.command(
                row.ptl_device,
                "light",
                subject=row.order_id,
                slot=row.ptl_slot,
                qty=row.qty - row.qty_picked,
                color="green",
            )


def cached_sku(ctx: BatchContext, code: str) -> str | None:
    """The SKU of an item code if the cache knows it (no query); never for a tote."""
    if is_tote(ctx, code):
        return None
    return cached_sku_for_code(ctx, code)


async def handle_scan(ctx: BatchContext, device_id: str, station: str, event: ScanEvent) -> None:
    task = ctx.taken.pop(id(event), None)  # taken ahead with the batch's other scans
    item: ItemCode | None = None  # none for a batched take: plain codes only
    if task is None:
        taken = await _take(ctx, device_id, station, event)
        if taken is None:
            return
        task, item = taken
    ctx.record(
        "pick",
        order_id=task.order_id,
        device_id=device_id,
        station=station,
        sku=task.sku,
        qty=1,
        location=task.location,
        **_label_data(item),
    )
    if item is not None and item.traced:
        await _record_unit(ctx, task, item, device_id, station)
    left = task.qty - task.qty_picked
    if left <= 0:
        await finish_task(ctx, task, device_id, station)
    elif task.ptl_device and task.ptl_slot is not None:
        # The display counts down so the picker sees what is still to take.
        await ctx.command(
            task.ptl_device,
            "light",
            subject=task.order_id,
            slot=task.ptl_slot,
            qty=left,
            color="green",
        )


async def _take(
    ctx: BatchContext, device_id: str, station: str, event: ScanEvent
) -> tuple[Any, ItemCode] | None:
    """One unit for an item scan; None if it was a tote or was refused (handled here)."""
    if is_tote(ctx, event.code):
        await bind_tote(ctx, device_id, station, event.code)
        return None
    # --- GS1 item data: GTIN match, lot and dates, shelf life (wcs.domain.pick_scan) ---
    item = pick_scan.read_item(event.code, event.symbology)
    if isinstance(item, pick_scan.Refused):
        batch_id = await active_batch(ctx, station)
        await mispick(
            ctx, device_id, station, batch_id, event.code, None, item.reason, kind="unit_refused"
        )
        dead_letter_scan(ctx, device_id, event, item.reason)
        return None
    sku = await sku_for_item(ctx, item)
    if sku is not None and item.use_by is not None:
        too_old = pick_scan.shelf_life_refusal(
            item.use_by, ctx.now.date(), await min_shelf_life_days(ctx, sku)
        )
        if too_old is not None:
            batch_id = await active_batch(ctx, station)
            await mispick(
                ctx, device_id, station, batch_id, event.code, sku, too_old, kind="unit_refused"
            )
            return None
    # --- end of GS1 item data ---
    task = (
        await ctx.store.take_unit(station, sku, ctx.now, ctx.topics, ctx.actor)
        if sku is not None
        else None
    )
    if task is None:
        # The slow path only runs for refusals: find out why, to say it precisely.
        batch_id = await active_batch(ctx, station)
        reason = "item does not match a lit slot"
        if batch_id is not None and sku is not None:
            waiting = await ctx.conn.scalar(
                select(pick_tasks.c.order_id)
                .where(
                    and_(
                        pick_tasks.c.batch_id == batch_id,
                        pick_tasks.c.state == LIT,
                        pick_tasks.c.sku == sku,
                    )
                )
                .limit(1)
            )
            if waiting is not None:
                reason = f"scan a tote for order {waiting} first"
        await mispick(ctx, device_id, station, batch_id, event.code, sku, reason)
        return None
    return task, item


def _label_data(item: ItemCode | None) -> dict[str, Any]:
    """What the unit's GS1 label said, for the pick's record (nothing for plain codes)."""
    if item is None:
        return {}
    found = {"gtin": item.gtin, "lot": item.lot, "serial": item.serial}
    if item.use_by is not None:
        found["use_by"] = item.use_by.isoformat()
    return {k: v for k, v in found.items() if v is not None}


async def _record_unit(
    ctx: BatchContext, task: Any, item: ItemCode, device_id: str, station: str
) -> None:
    """A unit with a lot, a date or a serial: kept for traceability (recalls)."""
    await ctx.conn.execute(
        insert(picked_units).values(
            at=ctx.now,
            order_id=task.order_id,
            sku=task.sku,
            gtin=item.gtin,
            lot=item.lot,
            use_by=item.use_by,
            serial=item.serial,
            station=station,
            device_id=device_id,
        )
    )


async def handle_confirm(
    ctx: BatchContext, device_id: str, station: str | None, event: ConfirmEvent
) -> None:
    task = (
        await ctx.conn.execute(
            select(pick_tasks)
            .where(
                and_(
                    pick_tasks.c.ptl_device == device_id,
                    pick_tasks.c.ptl_slot == event.slot,
                    pick_tasks.c.state == LIT,
                )
            )
            .order_by(pick_tasks.c.seq, pick_tasks.c.id)
            .limit(1)
            .with_for_update()
        )
    ).first()
    if task is None:
        ctx.record("stray_confirm", ok=False, device_id=device_id, station=station, slot=event.slot)
        return
    remaining = task.qty - task.qty_picked
    units = min(event.qty, remaining)
    if units > 0:
        counted = await record_units(ctx, task, units, device_id, station, finish=False)
        if counted is task:
            return  # refused (no tote for the order yet): the task stays lit, nothing moves
        task = counted
    if event.qty < remaining:
        await short_pick(ctx, task, remaining - event.qty, device_id, station)
    else:
        await finish_task(ctx, task, device_id, station)


async def bind_tote(ctx: BatchContext, device_id: str, station: str, code: str) -> None:
    """Bind a scanned tote to the next order of the station's batch that has none."""
    holder = (
        await ctx.conn.execute(select(totes.c.order_id, totes.c.state).where(totes.c.code == code))
    ).first()
    if holder is not None and holder.order_id is not None and holder.state != "free":
        ctx.record("tote_busy", ok=False, device_id=device_id, station=station, tote=code)
        return
    batch_id = await active_batch(ctx, station)
    if batch_id is None:
        ctx.record("tote_no_batch", ok=False, device_id=device_id, station=station, tote=code)
        return
    bound = select(totes.c.order_id).where(
        and_(totes.c.order_id.is_not(None), totes.c.state != "free")
    )
    order_id = await ctx.conn.scalar(
        select(pick_tasks.c.order_id)
        .where(and_(pick_tasks.c.batch_id == batch_id, pick_tasks.c.order_id.not_in(bound)))
        .group_by(pick_tasks.c.order_id)
        .order_by(func.min(pick_tasks.c.id))
        .limit(1)
    )
    if order_id is None:
        ctx.record("tote_not_needed", ok=False, device_id=device_id, station=station, tote=code)
        return
    values = {"order_id": order_id, "state": "picking", "station": station, "updated_at": ctx.now}
    if holder is None:
        await ctx.conn.execute(insert(totes).values(code=code, **values))
    else:
        await ctx.conn.execute(update(totes).where(totes.c.code == code).values(**values))
    ctx.record("tote_bound", order_id=order_id, device_id=device_id, station=station, tote=code)


async def _has_tote(ctx: BatchContext, order_id: str) -> bool:
    value = await ctx.conn.scalar(
        select(totes.c.code)
        .where(and_(totes.c.order_id == order_id, totes.c.state == "picking"))
        .limit(1)
    )
    return value is not None


async def mispick(
    ctx: BatchContext,
    device_id: str,
    station: str,
    batch_id: str | None,
    code: str,
    sku: str | None,
    reason: str = "item does not match a lit slot",
    *,
    kind: str = "mispick",  # "unit_refused": the right item, but not a unit to ship
) -> None:
    ctx.record(
        kind,
        ok=False,
        device_id=device_id,
        station=station,
        code=code[:64],
        sku=sku,
        reason=reason,
    )
    if batch_id is None:
        return
    lit = (
        await ctx.conn.execute(
            select(
                pick_tasks.c.ptl_device,
                pick_tasks.c.ptl_slot,
                pick_tasks.c.qty,
                pick_tasks.c.qty_picked,
            ).where(and_(pick_tasks.c.batch_id == batch_id, pick_tasks.c.state == LIT))
        )
    ).all()
    for row in lit:
        if row.ptl_device and row.ptl_slot is not None:
            await ctx.command(
                row.ptl_device,
                "light",
                slot=row.ptl_slot,
                qty=row.qty - row.qty_picked,
                color="red",
                blink=True,
            )


async def record_units(
    ctx: BatchContext,
    task: Any,
    units: int,
    device_id: str,
    station: str | None,
    *,
    finish: bool = True,
) -> Any:
    """Count picked units on a task; returns the updated row."""
    if not await _has_tote(ctx, task.order_id):
        await mispick(
            ctx,
            device_id,
            station or "",
            task.batch_id,
            task.sku,
            task.sku,
            reason=f"scan a tote for order {task.order_id} first",
        )
        return task
    picked = task.qty_picked + units
    await ctx.conn.execute(
        update(pick_tasks)
        .where(pick_tasks.c.id == task.id)
        .values(qty_picked=picked, updated_at=ctx.now)
    )
    ctx.record(
        "pick",
        order_id=task.order_id,
        device_id=device_id,
        station=station,
        sku=task.sku,
        qty=units,
        location=task.location,
    )
    await _started(ctx, task.order_id)
    updated = _with(task, qty_picked=picked)
    if finish and picked >= task.qty:
        await finish_task(ctx, updated, device_id, station)
    return updated


async def _started(ctx: BatchContext, order_id: str) -> None:
    # A no-op unless the order is still pick_planned (its first unit).
    await ctx.store.advance(
        ctx.topics,
        order_id,
        OrderState.PICK_PLANNED,
        OrderState.PICKING,
        ctx.actor,
        FIRST_UNIT,
        ctx.now,
    )


async def finish_task(ctx: BatchContext, task: Any, device_id: str, station: str | None) -> None:
    """Units leave the shelf for the tote: stock and reservation follow, light moves on."""
    picked = task.qty_picked
    if picked >= task.qty:
        left = await ctx.store.complete_task(task, ctx.now, ctx.topics, ctx.actor)
        ctx.stock_move(task.sku, task.location, "pick", -picked, task.order_id)
    else:
        await ctx.conn.execute(
            update(pick_tasks)
            .where(pick_tasks.c.id == task.id)
            .values(state="short", updated_at=ctx.now)
        )
        if picked > 0:
            await ctx.conn.execute(
                update(stock)
                .where(and_(stock.c.sku == task.sku, stock.c.location == task.location))
                .values(
                    on_hand=stock.c.on_hand - picked,
                    reserved=stock.c.reserved - picked,
                    updated_at=ctx.now,
                )
            )
            ctx.stock_move(task.sku, task.location, "pick", -picked, task.order_id)
            await ctx.conn.execute(
                update(order_lines)
                .where(order_lines.c.id == task.line_id)
                .values(qty_picked=order_lines.c.qty_picked + picked)
            )
        await _split_reservation(ctx, task, picked)
        left = await ctx.store.work_left(task.batch_id, task.order_id)
    if task.ptl_device and task.ptl_slot is not None:
        await ctx.command(task.ptl_device, "clear", slot=task.ptl_slot)
    await _after_task(ctx, task.batch_id, task.order_id, station, left)


async def _split_reservation(ctx: BatchContext, task: Any, picked: int) -> None:
    """The reservation of a task becomes ``picked`` for the units now in the tote."""
    if picked >= task.qty:
        await ctx.conn.execute(
            update(reservations)
            .where(reservations.c.id == task.reservation_id)
            .values(state="picked")
        )
        return
    # Short: the picked part is in the tote, the missing part no longer exists here.
    await ctx.conn.execute(
        update(reservations)
        .where(reservations.c.id == task.reservation_id)
        .values(qty=picked, state="picked" if picked else "released")
    )


async def _after_task(
    ctx: BatchContext, batch_id: str, order_id: str, station: str | None, left: AfterTask
) -> None:
    if not left.order_picked and not left.order_left and left.order_state == OrderState.PICKING:
        moved = await ctx.store.advance(
            ctx.topics,
            order_id,
            OrderState.PICKING,
            OrderState.PICKED,
            ctx.actor,
            ALL_PICKED,
            ctx.now,
        )
        if moved is not None:
            await ctx.store.move_totes(order_id, "picking", "to_qc", ctx.now)
    if left.batch_left:
        await light_next(ctx, batch_id, left.next_stop)
        return
    await ctx.conn.execute(
        update(pick_batches).where(pick_batches.c.id == batch_id).values(state="done")
    )
    if station:
        await activate_next(ctx, station)


async def short_pick(
    ctx: BatchContext, task: Any, missing: int, device_id: str, station: str | None
) -> None:
    """The shelf held fewer units than the system thought: fix stock, re-plan the rest."""
    ctx.record(
        "short_pick",
        ok=False,
        order_id=task.order_id,
        device_id=device_id,
        station=station,
        sku=task.sku,
        location=task.location,
        missing=missing,
    )
    # The missing units were reserved here but do not exist: take them off the books.
    await ctx.conn.execute(
        update(stock)
        .where(and_(stock.c.sku == task.sku, stock.c.location == task.location))
        .values(
            on_hand=stock.c.on_hand - missing,
            reserved=stock.c.reserved - missing,
            updated_at=ctx.now,
        )
    )
    ctx.stock_move(task.sku, task.location, "shortage", -missing, task.order_id)
    plan = await inventory.reserve(
        ctx.conn, task.order_id, [LineDemand(task.line_id, task.sku, missing)]
    )
    if not plan.complete:
        await ctx.alert(
            "short_pick",
            "warning",
            f"order {task.order_id}: {missing} x {task.sku} missing at {task.location} and "
            "no stock elsewhere; the order goes to the exception lane",
            task.order_id,
        )
        await _to_exception(ctx, task.order_id, f"short pick of {task.sku}, no stock elsewhere")
        await finish_task(ctx, task, device_id, station)
        return
    new_ids = (
        await ctx.conn.scalars(
            select(reservations.c.id)
            .where(
                and_(
                    reservations.c.order_id == task.order_id,
                    reservations.c.state == "active",
                    reservations.c.line_id == task.line_id,
                )
            )
            .order_by(reservations.c.id)
        )
    ).all()
    seq = await ctx.conn.scalar(
        select(func.max(pick_tasks.c.seq)).where(pick_tasks.c.batch_id == task.batch_id)
    )
    for alloc, reservation_id in zip(
        plan.allocations, new_ids[-len(plan.allocations) :], strict=True
    ):
        slot = ctx.floor.slot_of.get(alloc.location)
        await ctx.conn.execute(
            insert(pick_tasks).values(
                batch_id=task.batch_id,
                seq=(seq or 0) + 1,
                order_id=task.order_id,
                line_id=task.line_id,
                reservation_id=reservation_id,
                sku=alloc.sku,
                location=alloc.location,
                qty=alloc.qty,
                qty_picked=0,
                state="open",
                ptl_device=slot[0] if slot else None,
                ptl_slot=slot[1] if slot else None,
                updated_at=ctx.now,
            )
        )
    # The replacement tasks exist before this one closes, so the order is not
    # mistaken for complete and the batch lights them in turn.
    await finish_task(ctx, task, device_id, station)


async def _to_exception(ctx: BatchContext, order_id: str, reason: str) -> None:
    await ctx.conn.execute(
        update(pick_tasks)
        .where(and_(pick_tasks.c.order_id == order_id, pick_tasks.c.state.in_(("open", LIT))))
        .values(state="cancelled", updated_at=ctx.now)
    )
    await move(ctx, order_id, OrderState.EXCEPTION, reason)
    await ctx.conn.execute(
        update(totes)
        .where(and_(totes.c.order_id == order_id, totes.c.state == "picking"))
        .values(state="exception", updated_at=ctx.now)
    )
