"""Packing (design §1 step 5): carton, weight check, SSCC label, confirmation scan.

A tote scanned at a pack station opens a package: the carton is chosen from the
items, the expected weight is items + carton, and the station's scale is asked for a
stable weight. Within tolerance a GS1-128 SSCC label is printed on the station's
printer (its backup when the printer is faulted or fails the job; with both gone the
station is marked down and an alert raised). Scanning the printed SSCC confirms the
parcel: ``packed`` plus an outbound document. Outside tolerance the tote goes back to
QC with an alert.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, insert, select, update

from controller.context import BatchContext
from controller.handlers.common import is_tote, move, order_state
from wcs.contract.payloads import WeightEvent
from wcs.domain import gs1
from wcs.domain.gs1 import sscc
from wcs.domain.packing import Item, check_weight, choose_carton, items_weight, shipping_label_zpl
from wcs.domain.states import OrderState
from wcs.errors import ValidationFailed
from wcs.floor import Station, printer_dpi
from wcs.ids import new_id
from wcs.persistence.tables import counters, order_lines, orders, packages, skus, totes
from wcs.services import qc


async def _items(ctx: BatchContext, order_id: str) -> list[Item]:
    rows = await ctx.conn.execute(
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
    return [Item(r.sku, r.qty, r.weight_g, (r.length_mm, r.width_mm, r.height_mm)) for r in rows]


async def handle_scan(
    ctx: BatchContext, device_id: str, station: Station, code: str, symbology: str | None = None
) -> None:
    if is_tote(ctx, code):
        await start_packing(ctx, device_id, station, code)
        return
    # The SSCC wherever it stands in the label's element strings (with or without AIM
    # identifier, FNC1 or parentheses); a GS1 code that is wrong says why.
    read = gs1.read(code, symbology)
    if not isinstance(read, gs1.Gs1Scan) or read.sscc is None:
        reason = read.reason if isinstance(read, gs1.Gs1Refusal) else "not an SSCC"
        ctx.record(
            "pack_unknown_scan",
            ok=False,
            device_id=device_id,
            station=station.id,
            code=code[:64],
            reason=reason,
        )
        return
    await confirm_label(ctx, device_id, station, read.sscc)


async def start_packing(ctx: BatchContext, device_id: str, station: Station, tote: str) -> None:
    order_id = await ctx.conn.scalar(
        select(totes.c.order_id).where(and_(totes.c.code == tote, totes.c.state != "free"))
    )
    state = await order_state(ctx, order_id) if order_id else None
    if order_id is None or state != OrderState.QC_PASSED:
        ctx.record(
            "pack_unexpected_tote",
            ok=False,
            order_id=order_id,
            device_id=device_id,
            station=station.id,
            tote=tote,
            state=state,
        )
        return
    items = await _items(ctx, order_id)
    try:
        carton = choose_carton(items)
    except ValidationFailed as exc:
        await ctx.alert("no_carton", "warning", f"order {order_id}: {exc.message}", order_id)
        await move(ctx, order_id, OrderState.PACKING, "at pack station")
        return
    expected = items_weight(items) + carton.tare_g
    await move(ctx, order_id, OrderState.PACKING, f"at pack station {station.id}")
    package_id = new_id("p")
    await ctx.conn.execute(
        insert(packages).values(
            id=package_id,
            order_id=order_id,
            station=station.id,
            carton=carton.code,
            expected_g=expected,
            state="weighing",
            created_at=ctx.now,
            updated_at=ctx.now,
        )
    )
    await ctx.conn.execute(
        update(totes)
        .where(totes.c.code == tote)
        .values(state="packing", station=station.id, updated_at=ctx.now)
    )
    if station.scale:
        await ctx.command(station.scale, "weigh", subject=package_id)
    ctx.record(
        "pack_start",
        order_id=order_id,
        device_id=device_id,
        station=station.id,
        carton=carton.code,
        expected_g=round(expected, 1),
    )


async def handle_weight(
    ctx: BatchContext, device_id: str, station: Station, event: WeightEvent
) -> None:
    if not event.stable:
        return  # dynamic readings are for the display, not for the check
    package = (
        await ctx.conn.execute(
            select(packages)
            .where(and_(packages.c.station == station.id, packages.c.state == "weighing"))
            .order_by(packages.c.created_at.desc())
            .limit(1)
            .with_for_update()
        )
    ).first()
    if package is None:
        ctx.record(
            "weight_unexpected",
            ok=False,
            device_id=device_id,
            station=station.id,
            grams=event.grams,
        )
        return
    pack = ctx.settings.pack
    check = check_weight(
        package.expected_g,
        event.grams,
        tolerance_pct=pack.weight_tolerance_pct,
        tolerance_min_g=pack.weight_tolerance_min_g,
    )
    if not check.ok:
        await ctx.conn.execute(
            update(packages)
            .where(packages.c.id == package.id)
            .values(measured_g=event.grams, state="rejected", updated_at=ctx.now)
        )
        ctx.record(
            "weight_mismatch",
            ok=False,
            order_id=package.order_id,
            device_id=device_id,
            station=station.id,
            expected_g=round(check.expected_g, 1),
            measured_g=event.grams,
            tolerance_g=round(check.tolerance_g, 1),
        )
        await ctx.alert(
            "weight_mismatch",
            "warning",
            f"order {package.order_id} at {station.id}: scale shows {event.grams:.0f} g, expected "
            f"{check.expected_g:.0f} g +/- {check.tolerance_g:.0f} g; tote goes back to QC",
            station.id,
        )
        await move(ctx, package.order_id, OrderState.PICKED, "weight mismatch, back to QC")
        # The earlier pass no longer holds: QC counts and judges the order afresh.
        await qc.open_check(ctx.conn, package.order_id, None, ctx.actor)
        await ctx.conn.execute(
            update(totes)
            .where(and_(totes.c.order_id == package.order_id, totes.c.state == "packing"))
            .values(state="to_qc", updated_at=ctx.now)
        )
        return
    ctx.record(
        "weight_ok",
        order_id=package.order_id,
        device_id=device_id,
        station=station.id,
        expected_g=round(check.expected_g, 1),
        measured_g=event.grams,
    )
    number = await _next_sscc(ctx)
    await ctx.conn.execute(
        update(packages)
        .where(packages.c.id == package.id)
        .values(measured_g=event.grams, sscc=number, state="labelling", updated_at=ctx.now)
    )
    await print_label(ctx, station, package.id, exclude=())


async def _next_sscc(ctx: BatchContext) -> str:
    """Serials from a database counter: unique across processes and restarts."""
    result = await ctx.conn.execute(
        update(counters)
        .where(counters.c.name == "sscc")
        .values(value=counters.c.value + 1)
        .returning(counters.c.value)
    )
    value = result.scalar()
    if value is None:
        await ctx.conn.execute(insert(counters).values(name="sscc", value=1))
        value = 1
    return sscc(0, ctx.settings.pack.gs1_company_prefix, int(value))


async def print_label(
    ctx: BatchContext, station: Station, package_id: str, *, exclude: tuple[str, ...]
) -> bool:
    """Send the label to the first usable printer of the station; False when none is."""
    package = (await ctx.conn.execute(select(packages).where(packages.c.id == package_id))).one()
    order = (await ctx.conn.execute(select(orders).where(orders.c.id == package.order_id))).one()
    printers = [p for p in ctx.floor.station_printers(station) if p not in exclude]
    printer = next((p for p in printers if ctx.floor.usable(p)), None)
    if printer is None:
        ctx.down_stations.add(station.id)
        await ctx.alert(
            "pack_station_down",
            "critical",
            f"pack station {station.id}: no working printer "
            f"({', '.join(ctx.floor.station_printers(station)) or 'none configured'}); "
            "totes are sent to other stations until a printer is back",
            station.id,
        )
        ctx.record("station_down", ok=False, station=station.id, reason="no printer")
        return False
    pack = ctx.settings.pack
    zpl = shipping_label_zpl(
        sscc18=package.sscc,
        order_id=order.id,
        ship_to=[
            order.customer_name,
            order.line1,
            f"{order.postal_code} {order.city}",
            order.country,
        ],
        carrier="pending",
        weight_g=package.measured_g or package.expected_g,
        carton=package.carton,
        # The GS1 logistic label at this printer's resolution (wcs.domain.labels).
        dpi=printer_dpi(ctx.floor.floor, printer),
        ship_from=pack.ship_from,
        company_prefix_length=len(pack.gs1_company_prefix),
    )
    await ctx.command(printer, "print", subject=package_id, zpl=zpl, job_id=package.sscc)
    await ctx.conn.execute(
        update(packages)
        .where(packages.c.id == package_id)
        .values(printer=printer, updated_at=ctx.now)
    )
    return True


async def handle_print_ack(
    ctx: BatchContext, package_id: str, printer: str, ok: bool, error: str | None
) -> None:
    package = (await ctx.conn.execute(select(packages).where(packages.c.id == package_id))).first()
    if package is None or package.state != "labelling":
        return
    if ok:
        await ctx.conn.execute(
            update(packages)
            .where(packages.c.id == package_id)
            .values(state="awaiting_scan", updated_at=ctx.now)
        )
        ctx.record(
            "label_printed", order_id=package.order_id, device_id=printer, station=package.station
        )
        return
    ctx.record(
        "print_failed",
        ok=False,
        order_id=package.order_id,
        device_id=printer,
        station=package.station,
        error=error,
    )
    await ctx.alert(
        "printer_fault",
        "warning",
        f"printer {printer} failed a label ({error or 'no reason given'}); "
        "trying the station's backup printer",
        printer,
    )
    station = ctx.floor.floor.station(package.station)
    await print_label(ctx, station, package_id, exclude=(printer,))


async def confirm_label(ctx: BatchContext, device_id: str, station: Station, number: str) -> None:
    package = (
        await ctx.conn.execute(select(packages).where(packages.c.sscc == number).with_for_update())
    ).first()
    if package is None or package.state not in ("labelling", "awaiting_scan"):
        ctx.record("label_unknown", ok=False, device_id=device_id, station=station.id, sscc=number)
        return
    order = (await ctx.conn.execute(select(orders).where(orders.c.id == package.order_id))).one()
    document: dict[str, Any] = {
        "sscc": number,
        "order_id": order.id,
        "external_id": order.external_id,
        "carton": package.carton,
        "weight_g": package.measured_g,
        "ship_to": {"city": order.city, "postal_code": order.postal_code, "country": order.country},
        "service": order.service,
        "packed_at": ctx.now.isoformat(),
        "station": station.id,
    }
    await ctx.conn.execute(
        update(packages)
        .where(packages.c.id == package.id)
        .values(state="packed", document=document, updated_at=ctx.now)
    )
    if await move(ctx, order.id, OrderState.PACKED, f"label {number} scanned"):
        ctx.record(
            "packed", order_id=order.id, device_id=device_id, station=station.id, sscc=number
        )
    # The parcel travels on by its label; the tote is free for the next order.
    await ctx.conn.execute(
        update(totes)
        .where(totes.c.order_id == order.id)
        .values(state="free", order_id=None, station=None, updated_at=ctx.now)
    )
