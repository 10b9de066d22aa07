"""Device status reports and command acknowledgements."""

from __future__ import annotations

from sqlalchemy import select, update

from controller.context import BatchContext
from controller.handlers import pack
from controller.index import DeviceLive
from wcs.contract.payloads import Ack, DeviceStatus
from wcs.persistence.tables import device_commands
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
