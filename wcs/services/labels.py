"""Labels printed outside a station's own events: the carrier's label once an order is
booked, and a reprint when a label is damaged.

- :func:`print_carrier_label`: after a booking, the carrier's own label (ZPL, or a PDF
  for printers with PDF Direct) goes to the floor's outbound station printer when
  there is one, else to the printer of the pack station where the parcel was packed
  (its backup when the first is not online). The parcel leaves with two labels: our
  GS1 logistic label (SSCC) and the carrier's (its tracking barcode).
- :func:`reprint_label`: the parcel's GS1 logistic label again (same SSCC), or its
  carrier label, to its station's printer or one named.

Each job is a ``cmd/print`` written to the outbox in the same transaction as its
command log row (its ack is matched there) and an activity row; a label that cannot
be printed (no printer online) raises ``label_not_printed`` for a supervisor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import and_, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.contract.payloads import PrintCommand
from wcs.contract.topics import Topics
from wcs.domain.packing import shipping_label_zpl
from wcs.errors import Conflict, NotFound, ValidationFailed
from wcs.floor import Floor, PrinterDevice, printer_dpi
from wcs.ids import new_id
from wcs.persistence.db import transaction
from wcs.persistence.orders import raise_alert
from wcs.persistence.outbox import OutboxMessage, enqueue
from wcs.persistence.tables import activity, device_commands, devices, orders, packages, shipments
from wcs.settings import PackSettings
from wcs.timeutil import utcnow

Which = Literal["sscc", "carrier"]


@dataclass(frozen=True, slots=True)
class LabelJob:
    kind: Which
    printer: str
    cmd_id: str
    order_id: str
    job_id: str  # the SSCC, or the carrier's tracking number


def choose_printer(candidates: Sequence[str], states: Mapping[str, str]) -> str | None:
    """The first candidate online, or never heard of (a floor without status reports)."""
    for printer in dict.fromkeys(candidates):
        if states.get(printer, "online") == "online":
            return printer
    return None


def carrier_label_printers(floor: Floor, pack_station: str | None) -> list[str]:
    """Where a carrier label goes: the outbound stations' printers, then the pack
    station's own and its backup."""
    found: list[str] = []
    for station in floor.stations:
        if station.kind == "outbound":
            found += [p for p in (station.printer, station.backup_printer) if p]
    found += pack_station_printers(floor, pack_station)
    return found


def pack_station_printers(floor: Floor, station_id: str | None) -> list[str]:
    for station in floor.stations:
        if station.id == station_id:
            return [p for p in (station.printer, station.backup_printer) if p]
    return []


async def print_carrier_label(
    engine: AsyncEngine, topics: Topics, floor: Floor, order_id: str, *, actor: str
) -> LabelJob | None:
    """Print the booked order's carrier label; None when it has no label (own fleet
    without one, or a booking without a label) or no printer is online (alerted)."""
    async with transaction(engine) as conn:
        shipment = await _shipment(conn, order_id)
        if shipment is None or not shipment.label_data:
            return None
        package = await _package(conn, order_id=order_id)
        candidates = carrier_label_printers(floor, package.station if package else None)
        return await _send(
            conn,
            topics,
            "carrier",
            order_id,
            shipment.tracking_no or shipment.id,
            candidates,
            _carrier_document(shipment),
            actor,
        )


async def reprint_label(
    engine: AsyncEngine,
    topics: Topics,
    floor: Floor,
    pack: PackSettings,
    sscc: str,
    *,
    which: Which = "sscc",
    printer: str | None = None,
    actor: str,
) -> LabelJob:
    """Print a packed parcel's label again: the GS1 logistic label or the carrier's."""
    if printer is not None and not any(
        d.id == printer and isinstance(d, PrinterDevice) for d in floor.devices
    ):
        raise ValidationFailed(f"{printer!r} is not a printer on this floor")
    async with transaction(engine) as conn:
        package = await _package(conn, sscc=sscc)
        if package is None:
            raise NotFound(f"no parcel has SSCC {sscc}")
        candidates = [printer] if printer else pack_station_printers(floor, package.station)
        if which == "carrier":
            shipment = await _shipment(conn, package.order_id)
            if shipment is None or not shipment.label_data:
                raise Conflict(f"parcel {sscc} has no carrier label yet: it is not booked")
            candidates = [printer] if printer else carrier_label_printers(floor, package.station)
            document = _carrier_document(shipment)
            job_id = shipment.tracking_no or shipment.id
        else:
            order = (
                await conn.execute(select(orders).where(orders.c.id == package.order_id))
            ).one()
            shipment = await _shipment(conn, package.order_id)
            chosen = await _online(conn, candidates)
            document = {
                "zpl": shipping_label_zpl(
                    sscc18=sscc,
                    order_id=order.id,
                    ship_to=[
                        order.customer_name,
                        order.line1,
                        f"{order.postal_code} {order.city}",
                        order.country,
                    ],
                    carrier=shipment.carrier if shipment is not None else "pending",
                    weight_g=package.measured_g or package.expected_g,
                    carton=package.carton,
                    dpi=printer_dpi(floor, chosen) if chosen else 203,
                    ship_from=pack.ship_from,
                    company_prefix_length=len(pack.gs1_company_prefix),
                )
            }
            job_id = sscc
        job = await _send(
            conn, topics, which, package.order_id, job_id, candidates, document, actor
        )
    if job is None:
        raise Conflict(f"no printer online for parcel {sscc} ({', '.join(candidates) or 'none'})")
    return job


async def _shipment(conn: AsyncConnection, order_id: str) -> Any:
    return (
        await conn.execute(
            select(shipments)
            .where(shipments.c.order_id == order_id)
            .order_by(shipments.c.created_at.desc())
            .limit(1)
        )
    ).first()


async def _package(
    conn: AsyncConnection, *, order_id: str | None = None, sscc: str | None = None
) -> Any:
    where = packages.c.sscc == sscc if sscc is not None else packages.c.order_id == order_id
    return (
        await conn.execute(
            select(packages)
            .where(and_(where, packages.c.state == "packed"))
            .order_by(packages.c.updated_at.desc())
            .limit(1)
        )
    ).first()


def _carrier_document(shipment: Any) -> dict[str, str]:
    if shipment.label_format == "pdf":
        return {"pdf": shipment.label_data}
    return {"zpl": shipment.label_data}


async def _online(conn: AsyncConnection, candidates: Sequence[str]) -> str | None:
    states = dict(
        (
            await conn.execute(
                select(devices.c.id, devices.c.state).where(devices.c.id.in_(candidates))
            )
        ).all()
    )
    return choose_printer(candidates, states)


async def _send(
    conn: AsyncConnection,
    topics: Topics,
    kind: Which,
    order_id: str,
    job_id: str,
    candidates: Sequence[str],
    document: dict[str, str],
    actor: str,
) -> LabelJob | None:
    now = utcnow()
    printer = await _online(conn, candidates)
    what = "carrier label" if kind == "carrier" else "GS1 label"
    if printer is None:
        await raise_alert(
            conn,
            topics,
            code="label_not_printed",
            severity="warning",
            message_text=(
                f"order {order_id}: the {what} {job_id} was not printed, no printer is online "
                f"({', '.join(candidates) or 'none configured'}); reprint it "
                "(POST /api/v1/parcels/{sscc}/reprint) once one is back"
            ),
            subject=order_id,
        )
        await conn.execute(
            insert(activity).values(
                at=now,
                kind="label_not_printed",
                ok=False,
                order_id=order_id,
                detail={"label": kind, "job_id": job_id, "printers": list(candidates)},
            )
        )
        return None
    cmd_id = new_id("c")
    try:
        command = PrintCommand(cmd_id=cmd_id, ts=now, job_id=job_id, **document)
    except ValidationError as exc:
        raise ValidationFailed(
            f"order {order_id}: the {what} {job_id} cannot be sent to a printer: "
            f"{exc.errors(include_url=False)[0]['msg']}"
        ) from None
    payload = command.to_json()
    await enqueue(conn, [OutboxMessage(topics.dev_cmd(printer, "print"), payload)])
    await conn.execute(
        insert(device_commands).values(
            cmd_id=cmd_id,
            device_id=printer,
            name="print",
            subject=f"{kind}-label:{order_id}"[:64],
            payload=payload.decode(),
            created_at=now,
        )
    )
    await conn.execute(
        insert(activity).values(
            at=now,
            kind=f"{kind}_label_sent",
            ok=True,
            order_id=order_id,
            device_id=printer,
            detail={"job_id": job_id, "actor": actor},
        )
    )
    return LabelJob(kind, printer, cmd_id, order_id, job_id)
