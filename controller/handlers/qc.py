"""Scans at a QC bench: a tote opens the count for its order, items are counted."""

from __future__ import annotations

from sqlalchemy import and_, select, update

from controller.context import BatchContext
from controller.handlers.common import dead_letter_scan, is_tote, order_state, sku_for_item
from wcs.contract.payloads import ScanEvent
from wcs.domain.pick_scan import Refused, read_item
from wcs.domain.states import OrderState
from wcs.persistence.tables import totes
from wcs.services import qc


async def handle_scan(ctx: BatchContext, device_id: str, station: str, event: ScanEvent) -> None:
    if is_tote(ctx, event.code):
        order_id = await ctx.conn.scalar(
            select(totes.c.order_id).where(
                and_(totes.c.code == event.code, totes.c.state != "free")
            )
        )
        state = await order_state(ctx, order_id) if order_id else None
        if order_id is None or state != OrderState.PICKED:
            ctx.record(
                "qc_unexpected_tote",
                ok=False,
                order_id=order_id,
                device_id=device_id,
                station=station,
                tote=event.code,
                state=state,
            )
            return
        await qc.open_check(ctx.conn, order_id, station, ctx.actor)
        await ctx.conn.execute(
            update(totes)
            .where(totes.c.code == event.code)
            .values(state="qc", station=station, updated_at=ctx.now)
        )
        ctx.record("qc_start", order_id=order_id, device_id=device_id, station=station)
        return
    order_id = await qc.current_check(ctx.conn, station)
    if order_id is None:
        ctx.record(
            "qc_no_tote", ok=False, device_id=device_id, station=station, code=event.code[:64]
        )
        return
    # A GS1 label that is wrong is no count either way: scan the unit again.
    item = read_item(event.code, event.symbology)
    if isinstance(item, Refused):
        ctx.record(
            "qc_scan_refused",
            ok=False,
            order_id=order_id,
            device_id=device_id,
            station=station,
            code=event.code[:64],
            reason=item.reason,
        )
        dead_letter_scan(ctx, device_id, event, item.reason)
        return
    sku = await sku_for_item(ctx, item)
    await qc.count_item(
        ctx.conn,
        ctx.topics,
        order_id,
        sku,
        event.code,
        actor=ctx.actor,
        require_operator=ctx.settings.controller.qc_require_operator,
    )
