"""Device status reports and command acknowledgements."""

from __future__ import annotations

from sqlalchemy import and_, select, update

from controller.context import BatchContext
from controller.handlers import pack
from controller.index import DeviceLive
from wcs.contract.payloads import Ack, DeviceStatus
from wcs.persistence.tables import device_commands, pick_tasks
from wcs.services.devices import record_device_status


async def handle_status(ctx: BatchContext, device_id: str, status: DeviceStatus) -> None:
    ctx.floor.live[device_id] = DeviceLive(status.state, status.detail)
    station = ctx.floor.station_of.get(device_id)
    if status.state == "online" and station is not None:
        # A station marked down for want of a printer comes back with its printer.
        ctx.down_stations.discard(station.id)
    changed = await record_device_status(
        ctx.conn,
        device_id,
        status.kind,
        status.zone,
        status.state,
        status.detail,
        at=status.ts,
        station=station.id if station else None,
    )
    if changed:
        ctx.record(
            "device_fault" if status.state == "fault" else f"device_{status.state}",
            ok=status.state == "online",
            device_id=device_id,
            station=station.id if station else None,
            detail=status.detail,
        )
    if status.state == "online" and ctx.floor.kind.get(device_id) == "ptl":
        await show_panel(ctx, device_id)


async def show_panel(ctx: BatchContext, device_id: str) -> None:
    """Put the panel's whole picture back: what is lit now, and nothing else.

    A panel whose driver (re)connects may show anything: a restarted driver or panel
    shows nothing, one that was unreachable missed the lights and clears sent
    meanwhile (drivers keep clean sessions, so nothing is queued for them), and
    lights are re-sent only with the next event at that station - which the picker,
    looking at a dark or stale panel, cannot produce. Status ``online`` is published
    on every (re)connection, so this is the moment to repaint.
    """
    rows = (
        await ctx.conn.execute(
            select(pick_tasks.c.ptl_slot, pick_tasks.c.qty, pick_tasks.c.qty_picked)
            .where(and_(pick_tasks.c.ptl_device == device_id, pick_tasks.c.state == "lit"))
            .order_by(pick_tasks.c.seq, pick_tasks.c.id)
        )
    ).all()
    lit: dict[int, int] = {}
    for row in rows:
        if row.ptl_slot is not None:
            lit.setdefault(row.ptl_slot, row.qty - row.qty_picked)
    slots = sorted({slot for device, slot in ctx.floor.location_of if device == device_id})
    for slot in slots:
        if slot in lit:
            await ctx.command(device_id, "light", slot=slot, qty=lit[slot], color="green")
        else:
            await ctx.command(device_id, "clear", slot=slot)


async def handle_ack(ctx: BatchContext, device_id: str, ack: Ack) -> None:
    command = (
        await ctx.conn.execute(
            select(
                device_commands.c.name, device_commands.c.subject, device_commands.c.acked_at
            ).where(device_commands.c.cmd_id == ack.cmd_id)
        )
    ).first()
    if command is None:
        # Lights and clears are not logged (the next event re-sends them); only a
        # failure of one is worth a record.
        if not ack.ok:
            ctx.record(
                "command_failed", ok=False, device_id=device_id, cmd_id=ack.cmd_id, error=ack.error
            )
        return
    if command.acked_at is not None:
        return  # a repeated ack: the first one already had its effect
    await ctx.conn.execute(
        update(device_commands)
        .where(device_commands.c.cmd_id == ack.cmd_id)
        .values(acked_at=ctx.now, ok=ack.ok, error=ack.error)
    )
    if not ack.ok:
        ctx.record(
            f"{command.name}_failed",
            ok=False,
            device_id=device_id,
            error=ack.error,
            subject=command.subject,
        )
    if command.name == "print" and command.subject:
        await pack.handle_print_ack(ctx, command.subject, device_id, ack.ok, ack.error)
