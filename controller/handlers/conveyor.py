"""Divert decisions for totes and parcels arriving at a conveyor point."""

from __future__ import annotations

from sqlalchemy import and_, func, select, update

from controller.context import BatchContext
from controller.handlers.common import order_state
from wcs.contract.payloads import ArrivalEvent
from wcs.domain.conveyor import PackStation, decide_lane
from wcs.domain.gs1 import sscc_in
from wcs.persistence.tables import packages, totes

TOTE_STATE_FOR_LANE = {"qc": "to_qc", "pack": "to_pack", "outbound": "to_outbound"}


async def station_loads(ctx: BatchContext) -> dict[str, int]:
    rows = await ctx.conn.execute(
        select(totes.c.station, func.count())
        .where(totes.c.state.in_(("to_pack", "packing")))
        .group_by(totes.c.station)
    )
    return {str(station): int(n) for station, n in rows if station}


async def handle_arrival(ctx: BatchContext, device_id: str, event: ArrivalEvent) -> None:
    diverter = ctx.floor.diverters.get(device_id)
    if diverter is None:
        ctx.record("arrival_not_diverter", ok=False, device_id=device_id, code=event.tote)
        return
    order_id: str | None = None
    is_parcel = False
    tote = (
        await ctx.conn.execute(
            select(totes.c.order_id, totes.c.state).where(totes.c.code == event.tote)
        )
    ).first()
    if tote is not None and tote.order_id and tote.state != "free":
        order_id = tote.order_id
    else:
        sscc = sscc_in(event.tote)
        if sscc:
            order_id = await ctx.conn.scalar(
                select(packages.c.order_id).where(
                    and_(packages.c.sscc == sscc, packages.c.state == "packed")
                )
            )
            is_parcel = order_id is not None
    state = await order_state(ctx, order_id) if order_id else None
    loads = await station_loads(ctx)
    stations = [
        PackStation(
            s.id, ctx.floor.pack_station_available(s, ctx.down_stations), loads.get(s.id, 0)
        )
        for s in ctx.floor.pack_stations()
    ]
    decision = decide_lane(
        state, stations, lambda lane, st: diverter.lane_for(lane, st) is not None
    )
    await ctx.command(
        device_id,
        "route",
        subject=order_id or event.tote,
        tote=event.tote,
        lane=decision.lane,
        station=decision.station,
    )
    if not is_parcel and tote is not None:
        await ctx.conn.execute(
            update(totes)
            .where(totes.c.code == event.tote)
            .values(
                state=TOTE_STATE_FOR_LANE.get(decision.lane, "exception"),
                station=decision.station,
                updated_at=ctx.now,
            )
        )
    ctx.record(
        "route",
        ok=decision.lane != "exception",
        order_id=order_id,
        device_id=device_id,
        station=decision.station,
        tote=event.tote,
        lane=decision.lane,
        reason=decision.reason,
        point=event.point,
    )
