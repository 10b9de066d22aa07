"""What the floor's owner reads: a station's state when it takes the station over, and
the few facts a decision needs that no station holds (who a scanned tote belongs to,
what an order contains, how loaded the pack stations are).

Every read runs in the batch's transaction after the unit has flushed, so it sees
what the batch decided before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from controller.stations import FloorPlan, StationSpec
from wcs.domain.conveyor import PackStation as PackLoad
from wcs.domain.floor import pack, pick, qc
from wcs.domain.floor.machines import BatchState, PackageState, TaskState, ToteState
from wcs.domain.gs1 import sscc, sscc_in
from wcs.domain.packing import Item
from wcs.domain.reservation import LineDemand
from wcs.domain.states import OrderState
from wcs.persistence import inventory
from wcs.persistence.tables import (
    counters,
    device_commands,
    devices,
    order_lines,
    orders,
    packages,
    pick_batches,
    pick_tasks,
    qc_checks,
    reservations,
    sku_gtins,
    skus,
    stations,
    totes,
)

OPEN_TASKS = (TaskState.OPEN, TaskState.LIT)


# --- a pick station -------------------------------------------------------------------


def _task(row: Any, plan: FloorPlan) -> pick.Task:
    panel, slot = row.ptl_device, row.ptl_slot
    if panel is None:
        # Tasks planned without the floor file (API, re-pick) get their slot here.
        panel, slot = plan.location_of.get(row.location, (None, None))
    return pick.Task(
        id=int(row.id),
        seq=int(row.seq),
        order_id=row.order_id,
        line_id=int(row.line_id),
        reservation_id=int(row.reservation_id),
        sku=row.sku,
        location=row.location,
        qty=int(row.qty),
        picked=int(row.qty_picked),
        state=TaskState(row.state),
        panel=panel,
        slot=slot,
    )


async def _batch_view(conn: AsyncConnection, batch_id: str, plan: FloorPlan) -> pick.BatchStarted:
    rows = (
        await conn.execute(
            select(pick_tasks)
            .where(and_(pick_tasks.c.batch_id == batch_id, pick_tasks.c.state.in_(OPEN_TASKS)))
            .order_by(pick_tasks.c.seq, pick_tasks.c.id)
        )
    ).all()
    tasks = tuple(_task(r, plan) for r in rows)
    order_ids = sorted({t.order_id for t in tasks})
    sku_ids = sorted({t.sku for t in tasks})
    codes = await item_codes(conn, sku_ids)
    shelf_life: dict[str, int] = {}
    held: dict[str, str] = {}
    started: set[str] = set()
    if sku_ids:
        shelf_life = {
            r.sku: int(r.days)
            for r in await conn.execute(
                select(skus.c.sku, skus.c.min_shelf_life_days.label("days")).where(
                    and_(skus.c.sku.in_(sku_ids), skus.c.min_shelf_life_days.is_not(None))
                )
            )
        }
    if order_ids:
        for row in await conn.execute(
            select(totes.c.code, totes.c.order_id).where(
                and_(totes.c.order_id.in_(order_ids), totes.c.state == ToteState.PICKING)
            )
        ):
            held.setdefault(row.order_id, row.code)
        started = set(
            (
                await conn.scalars(
                    select(orders.c.id).where(
                        and_(orders.c.id.in_(order_ids), orders.c.state == OrderState.PICKING)
                    )
                )
            ).all()
        )
    return pick.BatchStarted(batch_id, tasks, codes, held, frozenset(started), shelf_life)


async def item_codes(conn: AsyncConnection, sku_ids: Iterable[str]) -> dict[str, str]:
    """Every code a unit of these SKUs may be scanned by -> its SKU: the SKU code, its
    barcode as entered, and its GTINs (GTIN-14)."""
    wanted = list(sku_ids)
    codes: dict[str, str] = {}
    if not wanted:
        return codes
    for row in await conn.execute(select(skus.c.sku, skus.c.barcode).where(skus.c.sku.in_(wanted))):
        codes[row.sku] = row.sku
        if row.barcode:
            codes[row.barcode] = row.sku
    for row in await conn.execute(
        select(sku_gtins.c.gtin, sku_gtins.c.sku).where(sku_gtins.c.sku.in_(wanted))
    ):
        codes[row.gtin] = row.sku
    return codes


async def load_pick(
    conn: AsyncConnection, spec: StationSpec, plan: FloorPlan, shelf_life_days: int = 7
) -> pick.PickStation:
    state = pick.PickStation(spec.id, slots=spec.slots, shelf_life_days=shelf_life_days)
    batch_id = await conn.scalar(
        select(pick_batches.c.id)
        .where(and_(pick_batches.c.station == spec.id, pick_batches.c.state == BatchState.ACTIVE))
        .order_by(pick_batches.c.created_at)
        .limit(1)
    )
    if batch_id is None:
        return state
    view = await _batch_view(conn, str(batch_id), plan)
    return pick.PickStation(
        spec.id,
        slots=spec.slots,
        batch=view.batch,
        tasks=tuple(sorted(view.tasks, key=lambda t: (t.seq, t.id))),
        totes=view.totes,
        codes=view.codes,
        started=view.started,
        shelf_life=view.shelf_life,
        shelf_life_days=shelf_life_days,
    )


async def next_batch(
    conn: AsyncConnection, station: str, plan: FloorPlan
) -> pick.BatchStarted | None:
    """The station's next open batch (its own first, then unassigned ones), oldest first."""
    batch_id = await conn.scalar(
        select(pick_batches.c.id)
        .where(
            and_(
                or_(pick_batches.c.station == station, pick_batches.c.station.is_(None)),
                pick_batches.c.state == BatchState.OPEN,
            )
        )
        .order_by(pick_batches.c.station.is_(None), pick_batches.c.created_at, pick_batches.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if batch_id is None:
        return None
    return await _batch_view(conn, str(batch_id), plan)


async def tote_holder(conn: AsyncConnection, code: str) -> tuple[str | None, str | None]:
    """The order a tote is bound to (None when free or unknown) and its state."""
    row = (
        await conn.execute(select(totes.c.order_id, totes.c.state).where(totes.c.code == code))
    ).first()
    if row is None or row.order_id is None or row.state == ToteState.FREE:
        return None, None
    return str(row.order_id), str(row.state)


async def reallocate(
    conn: AsyncConnection, batch_id: str, ask: Any, plan: FloorPlan, now: datetime
) -> pick.Reallocated | pick.NoStock:
    """Reserve a short task's missing units elsewhere and plan them as new tasks."""
    # Face stock only: the picker is at the faces now (reserve units would wait a move).
    result = await inventory.reserve(
        conn,
        ask.order_id,
        [LineDemand(ask.line_id, ask.sku, ask.qty)],
        zones=(inventory.PICKABLE_ZONE,),
    )
    if not result.complete:
        return pick.NoStock(ask.task_id)
    new_ids = (
        await conn.scalars(
            select(reservations.c.id)
            .where(
                and_(
                    reservations.c.order_id == ask.order_id,
                    reservations.c.state == "active",
                    reservations.c.line_id == ask.line_id,
                )
            )
            .order_by(reservations.c.id)
        )
    ).all()
    tasks: list[pick.Task] = []
    for alloc, reservation_id in zip(
        result.allocations, new_ids[-len(result.allocations) :], strict=True
    ):
        panel, slot = plan.location_of.get(alloc.location, (None, None))
        task_id = (
            await conn.execute(
                insert(pick_tasks)
                .values(
                    batch_id=batch_id,
                    seq=0,  # the station places it (after the last stop) and saves it
                    order_id=ask.order_id,
                    line_id=ask.line_id,
                    reservation_id=reservation_id,
                    sku=alloc.sku,
                    location=alloc.location,
                    qty=alloc.qty,
                    qty_picked=0,
                    state=TaskState.OPEN,
                    ptl_device=panel,
                    ptl_slot=slot,
                    updated_at=now,
                )
                .returning(pick_tasks.c.id)
            )
        ).scalar_one()
        tasks.append(
            pick.Task(
                int(task_id),
                0,
                ask.order_id,
                ask.line_id,
                int(reservation_id),
                alloc.sku,
                alloc.location,
                alloc.qty,
                panel=panel,
                slot=slot,
            )
        )
    return pick.Reallocated(ask.task_id, tuple(tasks))


# --- a QC bench -----------------------------------------------------------------------


async def _expected(conn: AsyncConnection, order_id: str) -> dict[str, int]:
    expected: dict[str, int] = {}
    for row in await conn.execute(
        select(order_lines.c.sku, order_lines.c.qty).where(order_lines.c.order_id == order_id)
    ):
        expected[row.sku] = expected.get(row.sku, 0) + int(row.qty)
    return expected


async def order_state(conn: AsyncConnection, order_id: str | None) -> str | None:
    if order_id is None:
        return None
    value = await conn.scalar(select(orders.c.state).where(orders.c.id == order_id))
    return str(value) if value is not None else None


async def tote_at_bench(conn: AsyncConnection, device: str, code: str) -> qc.ToteAtBench:
    order_id, _ = await tote_holder(conn, code)
    state = await order_state(conn, order_id)
    if order_id is None or state != OrderState.PICKED:
        return qc.ToteAtBench(device, code, order_id, state, {}, {})
    expected = await _expected(conn, order_id)
    return qc.ToteAtBench(device, code, order_id, state, expected, await item_codes(conn, expected))


async def load_qc(conn: AsyncConnection, spec: StationSpec, require_operator: bool) -> qc.QcBench:
    row = (
        await conn.execute(
            select(qc_checks)
            .where(and_(qc_checks.c.station == spec.id, qc_checks.c.result.is_(None)))
            .order_by(qc_checks.c.updated_at.desc())
            .limit(1)
        )
    ).first()
    bench = qc.QcBench(spec.id, require_operator=require_operator)
    if row is None:
        return bench
    expected = await _expected(conn, row.order_id)
    check = qc.Check(
        row.order_id,
        expected,
        await item_codes(conn, expected),
        dict(row.scanned or {}),
        row.packaging_ok,
        row.appearance_ok,
        row.note,
    )
    return qc.QcBench(spec.id, require_operator=require_operator, check=check)


# --- a pack station -------------------------------------------------------------------


async def _destination(conn: AsyncConnection, order_id: str) -> pack.Destination | None:
    o = (await conn.execute(select(orders).where(orders.c.id == order_id))).first()
    if o is None:
        return None
    return pack.Destination(
        o.external_id, o.customer_name, o.line1, o.city, o.postal_code, o.country, o.service
    )


async def tote_at_pack(
    conn: AsyncConnection, device: str, code: str, package_id: str
) -> pack.ToteAtPack:
    order_id, _ = await tote_holder(conn, code)
    state = await order_state(conn, order_id)
    if order_id is None or state != OrderState.QC_PASSED:
        return pack.ToteAtPack(device, code, order_id, state, (), None, package_id)
    rows = await conn.execute(
        select(
            order_lines.c.sku,
            order_lines.c.qty,
            skus.c.weight_g,
            skus.c.length_mm,
            skus.c.width_mm,
            skus.c.height_mm,
        )
        .join(skus, skus.c.sku == order_lines.c.sku)
        .where(order_lines.c.order_id == order_id)
    )
    items = tuple(
        Item(r.sku, r.qty, r.weight_g, (r.length_mm, r.width_mm, r.height_mm)) for r in rows
    )
    return pack.ToteAtPack(
        device, code, order_id, state, items, await _destination(conn, order_id), package_id
    )


async def load_pack(
    conn: AsyncConnection, spec: StationSpec, tolerance: pack.Tolerance, label: pack.LabelSetup
) -> pack.PackStation:
    station = spec.station
    assert station is not None
    printers = tuple(p for p in (station.printer, station.backup_printer) if p)
    watched = [*spec.devices, *spec.borrowed]
    down_devices = frozenset(
        (
            await conn.scalars(
                select(devices.c.id).where(
                    and_(devices.c.id.in_(watched), devices.c.state != "online")
                )
            )
        ).all()
    )
    down = bool(await conn.scalar(select(stations.c.down).where(stations.c.id == spec.id)))
    rows = (
        await conn.execute(
            select(packages)
            .where(
                and_(
                    packages.c.station == spec.id,
                    packages.c.state.in_(
                        (PackageState.WEIGHING, PackageState.LABELLING, PackageState.AWAITING_SCAN)
                    ),
                )
            )
            .order_by(packages.c.created_at)
        )
    ).all()
    open_packages: list[pack.Package] = []
    for r in rows:
        to = await _destination(conn, r.order_id)
        if to is None:
            continue
        open_packages.append(
            pack.Package(
                r.id,
                r.order_id,
                r.carton,
                float(r.expected_g),
                to,
                r.measured_g,
                r.sscc,
                r.printer,
                PackageState(r.state),
            )
        )
    return pack.PackStation(
        spec.id,
        scale=station.scale,
        printers=printers,
        tolerance=tolerance,
        label=label,
        packages=tuple(open_packages),
        down_devices=down_devices,
        down=down,
    )


async def next_sscc(conn: AsyncConnection, company_prefix: str) -> str:
    """Serials from a database counter: unique across processes and restarts."""
    result = await conn.execute(
        update(counters)
        .where(counters.c.name == "sscc")
        .values(value=counters.c.value + 1)
        .returning(counters.c.value)
    )
    value = result.scalar()
    if value is None:
        await conn.execute(insert(counters).values(name="sscc", value=1))
        value = 1
    return sscc(0, company_prefix, int(value))


# --- a conveyor point -----------------------------------------------------------------


async def arrival_facts(
    conn: AsyncConnection, code: str, plan: FloorPlan
) -> tuple[str | None, str | None, bool, list[PackLoad]]:
    """The order of an arriving tote (or parcel, by its SSCC), its state, whether it is
    a known tote, and the pack stations' availability and load."""
    order_id: str | None = None
    tote = False
    row = (
        await conn.execute(select(totes.c.order_id, totes.c.state).where(totes.c.code == code))
    ).first()
    if row is not None and row.order_id and row.state != ToteState.FREE:
        order_id, tote = str(row.order_id), True
    else:
        number = sscc_in(code)
        if number:
            value = await conn.scalar(
                select(packages.c.order_id).where(
                    and_(packages.c.sscc == number, packages.c.state == "packed")
                )
            )
            order_id = str(value) if value is not None else None
    state = await order_state(conn, order_id)
    loads: dict[str, int] = {
        str(st): int(n)
        for st, n in await conn.execute(
            select(totes.c.station, func.count())
            .where(totes.c.state.in_((ToteState.TO_PACK, ToteState.PACKING)))
            .group_by(totes.c.station)
        )
        if st
    }
    specs = [s for s in plan.specs.values() if s.kind == "pack" and s.station is not None]
    if not specs:
        return order_id, state, tote, []
    down = set(
        (
            await conn.scalars(
                select(stations.c.id).where(
                    and_(stations.c.id.in_([s.id for s in specs]), stations.c.down)
                )
            )
        ).all()
    )
    needed = {d for s in specs for d in _pack_devices(s)}
    states = {
        r.id: r.state
        for r in await conn.execute(
            select(devices.c.id, devices.c.state).where(devices.c.id.in_(needed))
        )
    }

    def usable(device: str | None) -> bool:
        # Online, or never heard of (a floor without status reports still works).
        return device is not None and states.get(device, "online") == "online"

    result: list[PackLoad] = []
    for s in specs:
        st = s.station
        assert st is not None
        available = (
            s.id not in down
            and usable(st.scale)
            and usable(st.scanner)
            and any(usable(p) for p in (st.printer, st.backup_printer) if p)
        )
        result.append(PackLoad(s.id, available, loads.get(s.id, 0)))
    return order_id, state, tote, result


def _pack_devices(spec: StationSpec) -> list[str]:
    st = spec.station
    assert st is not None
    return [d for d in (st.scale, st.scanner, st.printer, st.backup_printer) if d]


# --- acknowledgements -----------------------------------------------------------------


async def pending_commands(
    conn: AsyncConnection, devices_: Iterable[str], since: datetime
) -> dict[str, tuple[str, str, str | None]]:
    """Logged commands to these devices still waiting for their ack: cmd_id -> (device,
    name, subject)."""
    rows = await conn.execute(
        select(
            device_commands.c.cmd_id,
            device_commands.c.device_id,
            device_commands.c.name,
            device_commands.c.subject,
        ).where(
            and_(
                device_commands.c.device_id.in_(list(devices_)),
                device_commands.c.acked_at.is_(None),
                device_commands.c.created_at >= since,
            )
        )
    )
    return {r.cmd_id: (r.device_id, r.name, r.subject) for r in rows}
