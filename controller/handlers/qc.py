"""Scans at a QC bench: a tote opens the count for its order, items are counted."""

from __future__ import annotations

from sqlalchemy import and_, select, update

from controller.context import BatchContext
from controller.handlers.common import is_tote, order_state, sku_for_code
from wcs.contract.payloads import ScanEvent
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
    sku = await sku_for_code(ctx, event.code)
    await qc.count_item(
        ctx.conn,
        ctx.topics,
        order_id,
        sku,
        event.code,
        actor=ctx.actor,
        require_operator=ctx.settings.controller.qc_require_operator,
    )
