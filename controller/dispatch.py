"""Which handler an inbound message goes to, by topic kind, event kind and station."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from controller.context import BatchContext
from controller.handlers import conveyor, devices, pack, pick, qc
from wcs.contract.payloads import (
    Ack,
    ArrivalEvent,
    ConfirmEvent,
    DeviceStatus,
    ScanEvent,
    WeightEvent,
)
from wcs.contract.topics import TopicInfo


@dataclass
class Inbound:
    """One MQTT message on its way through the controller."""

    topic: str
    info: TopicInfo
    payload: Any  # the parsed contract model
    raw: bytes
    mid: int
    generation: int  # MQTT connection it arrived on (acks only go back on the same one)
    received: float

    @property
    def device_id(self) -> str:
        assert self.info.device_id is not None
        return self.info.device_id

    @property
    def inbox_key(self) -> str | None:
        msg_id = getattr(self.payload, "msg_id", None)
        return f"{self.device_id}/{msg_id}" if msg_id else None


Take = tuple[str, str, ScanEvent]  # station, SKU, the scan


def take_runs(ctx: BatchContext, items: Sequence[Inbound]) -> dict[int, list[Take]]:
    """Runs of item scans whose units can be taken in one statement each, by the
    index in ``items`` where each run starts.

    ``items`` come in the batch's lock order (by station). A pick station's single
    event in the batch qualifies; a station with several events, a tote or a code not
    in the SKU cache does not and ends the run (it goes one by one as usual). Taking
    rows of stations past it ahead of it would break the lock order that keeps two
    controllers from deadlocking."""
    if not ctx.store.batched_takes:
        return {}
    per_station = Counter(
        station.id for item in items if (station := ctx.floor.station_of.get(item.device_id))
    )
    runs: dict[int, list[Take]] = {}
    run: list[Take] = []
    for n, item in enumerate([*items, None]):
        take = _qualifying(ctx, item, per_station) if item is not None else None
        if take is not None:
            run.append(take)
            continue
        if len(run) >= 2:  # a single one is one statement either way
            runs[n - len(run)] = run
        run = []
    return runs


def _qualifying(ctx: BatchContext, item: Inbound, per_station: Counter[str]) -> Take | None:
    event = item.payload
    station = ctx.floor.station_of.get(item.device_id)
    if (
        not isinstance(event, ScanEvent)
        or station is None
        or station.kind != "pick"
        or per_station[station.id] != 1
    ):
        return None
    sku = pick.cached_sku(ctx, event.code)
    return (station.id, sku, event) if sku is not None else None


async def take_run(ctx: BatchContext, run: list[Take]) -> None:
    """Take a run's units; each scan's handler then finds its unit in ``ctx.taken``."""
    taken = await ctx.store.take_units(
        [(station, sku) for station, sku, _ in run], ctx.now, ctx.topics, ctx.actor
    )
    for (_, _, event), task in zip(run, taken, strict=True):
        ctx.taken[id(event)] = task


async def dispatch(ctx: BatchContext, item: Inbound) -> None:
    device_id = item.device_id
    payload = item.payload
    if isinstance(payload, DeviceStatus):
        await devices.handle_status(ctx, device_id, payload)
        return
    if isinstance(payload, Ack):
        await devices.handle_ack(ctx, device_id, payload)
        return
    station = ctx.floor.station_of.get(device_id)
    if isinstance(payload, ConfirmEvent):
        await pick.handle_confirm(ctx, device_id, station.id if station else None, payload)
    elif isinstance(payload, ArrivalEvent):
        await conveyor.handle_arrival(ctx, device_id, payload)
    elif isinstance(payload, WeightEvent):
        if station is None or station.kind != "pack":
            ctx.record("weight_no_station", ok=False, device_id=device_id, grams=payload.grams)
            return
        await pack.handle_weight(ctx, device_id, station, payload)
    elif isinstance(payload, ScanEvent):
        if station is None:
            ctx.record("scan_no_station", ok=False, device_id=device_id, code=payload.code[:64])
        elif station.kind == "pick":
            await pick.handle_scan(ctx, device_id, station.id, payload)
        elif station.kind == "qc":
            await qc.handle_scan(ctx, device_id, station.id, payload)
        elif station.kind == "pack":
            await pack.handle_scan(ctx, device_id, station, payload.code, payload.symbology)
        else:
            ctx.record("scan_ignored", ok=False, device_id=device_id, station=station.id)
