"""Labels after packing: the carrier's own label printed once booked (outbound station
first, else the pack station's printer, its backup when that one is down; ZPL or
PDF), and reprints of a damaged label - as print commands in the outbox, on both
databases, against the fake carrier running as its own process."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.carriers.conftest import FakeCarrier
from tests.integration.controller import test_allocation as allocation
from wcs.contract.payloads import PrintCommand
from wcs.contract.topics import Topics
from wcs.errors import Conflict, NotFound, ValidationFailed
from wcs.floor import Floor
from wcs.persistence.db import transaction
from wcs.persistence.tables import activity, alerts, devices, outbox, packages, shipments
from wcs.services.labels import reprint_label
from wcs.settings import PackSettings
from wcs.timeutil import utcnow

# The allocation tests' fixtures: the fake carrier process and a seeded catalogue.
carrier_url = allocation.carrier_url
carrier = allocation.carrier
seeded = allocation.seeded
MUNICH = allocation.MUNICH
allocator, desk_for, packed_order = (
    allocation.allocator,
    allocation.desk_for,
    allocation.packed_order,
)
SSCC = "106141411234567897"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def floor(site: str, *, outbound: bool = False) -> Floor:
    printers = [
        {"id": "prn-p1", "kind": "printer", "zone": "pack", "link": {"type": "tcp"}, "dpi": 300},
        {"id": "prn-p2", "kind": "printer", "zone": "pack", "link": {"type": "tcp", "port": 9101}},
        {
            "id": "prn-out",
            "kind": "printer",
            "zone": "outbound",
            "link": {"type": "tcp", "port": 9102},
        },
    ]
    stations: list[dict[str, Any]] = [
        {"id": "P1", "kind": "pack", "printer": "prn-p1", "backup_printer": "prn-p2"}
    ]
    if outbound:
        stations.append({"id": "OUT1", "kind": "outbound", "printer": "prn-out"})
    return Floor.model_validate({"site": site, "devices": printers, "stations": stations})


async def prints(engine: AsyncEngine, topics: Topics) -> list[tuple[str, PrintCommand]]:
    """Print commands waiting in the outbox: (printer, command)."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(select(outbox.c.topic, outbox.c.payload).order_by(outbox.c.id))
        ).all()
    found = []
    for topic, payload in rows:
        info = topics.parse(topic)
        if info.kind == "cmd" and info.name == "print":
            found.append((str(info.device_id), PrintCommand.model_validate_json(payload)))
    return found


async def set_state(engine: AsyncEngine, device_id: str, state: str) -> None:
    async with transaction(engine) as conn:
        await conn.execute(
            insert(devices).values(
                id=device_id, kind="printer", zone="pack", state=state, updated_at=utcnow()
            )
        )


async def test_the_carrier_label_prints_once_booked(
    engine: AsyncEngine,
    seeded: Topics,
    carrier: FakeCarrier,
    site: str,
) -> None:
    first = await packed_order(engine, seeded, "cl-1", 900.0, **MUNICH)
    async with desk_for(carrier.url) as desk:
        loop = allocator(engine, seeded, desk)
        loop.floor = floor(site)
        assert await loop.round() == 1
        # The pack station's printer is down: the next one goes to its backup.
        await set_state(engine, "prn-p1", "fault")
        second = await packed_order(engine, seeded, "cl-2", 700.0, **MUNICH)
        assert await loop.round() == 1
        # No printer online: booked all the same, a supervisor is told.
        await set_state(engine, "prn-p2", "offline")
        third = await packed_order(engine, seeded, "cl-3", 600.0, **MUNICH)
        assert await loop.round() == 1
    async with engine.connect() as conn:
        tracking = dict(
            (await conn.execute(select(shipments.c.order_id, shipments.c.tracking_no))).all()
        )
        not_printed = (
            await conn.scalars(select(alerts.c.subject).where(alerts.c.code == "label_not_printed"))
        ).all()
        sent = (
            await conn.scalars(
                select(activity.c.order_id).where(activity.c.kind == "carrier_label_sent")
            )
        ).all()
    jobs = await prints(engine, seeded)
    assert [(printer, cmd.job_id) for printer, cmd in jobs] == [
        ("prn-p1", tracking[first]),
        ("prn-p2", tracking[second]),
    ]
    for _, cmd in jobs:
        assert cmd.zpl is not None and cmd.zpl.startswith("^XA") and cmd.pdf is None
    assert list(not_printed) == [third] and set(sent) == {first, second}
    async with engine.connect() as conn:
        states = (await conn.scalars(select(shipments.c.order_id))).all()
    assert len(states) == 3  # every order was allocated, printed or not


async def test_an_outbound_station_takes_the_carrier_labels(
    engine: AsyncEngine,
    seeded: Topics,
    carrier: FakeCarrier,
    site: str,
) -> None:
    await packed_order(engine, seeded, "cl-4", 900.0, **MUNICH)
    async with desk_for(carrier.url) as desk:
        loop = allocator(engine, seeded, desk)
        loop.floor = floor(site, outbound=True)
        assert await loop.round() == 1
    assert [printer for printer, _ in await prints(engine, seeded)] == ["prn-out"]


async def test_reprints(
    engine: AsyncEngine,
    seeded: Topics,
    carrier: FakeCarrier,
    site: str,
) -> None:
    order_id = await packed_order(engine, seeded, "cl-5", 900.0, **MUNICH)
    async with transaction(engine) as conn:
        await conn.execute(
            update(packages).where(packages.c.order_id == order_id).values(sscc=SSCC)
        )
    pack = PackSettings(ship_from=["ACME Fulfilment", "1 Dock Road"])
    here = floor(site)
    # Before booking: the GS1 label reprints, the carrier label does not exist yet.
    job = await reprint_label(engine, seeded, here, pack, SSCC, actor="sup")
    with pytest.raises(Conflict, match="no carrier label yet"):
        await reprint_label(engine, seeded, here, pack, SSCC, which="carrier", actor="sup")
    async with desk_for(carrier.url) as desk:
        await allocator(engine, seeded, desk).round()
    # The carrier sent a PDF: it goes to the printer as PDF, for one that prints it.
    async with transaction(engine) as conn:
        await conn.execute(
            update(shipments)
            .where(shipments.c.order_id == order_id)
            .values(label_format="pdf", label_data=base64.b64encode(PDF).decode())
        )
    pdf_job = await reprint_label(
        engine, seeded, here, pack, SSCC, which="carrier", printer="prn-p2", actor="sup"
    )
    with pytest.raises(NotFound, match="no parcel has SSCC"):
        await reprint_label(engine, seeded, here, pack, "106141411234567890", actor="sup")
    with pytest.raises(ValidationFailed, match="not a printer on this floor"):
        await reprint_label(engine, seeded, here, pack, SSCC, printer="scale-1", actor="sup")

    jobs = {cmd.cmd_id: (printer, cmd) for printer, cmd in await prints(engine, seeded)}
    printer, gs1_label = jobs[job.cmd_id]
    assert printer == "prn-p1" and gs1_label.job_id == SSCC and gs1_label.zpl is not None
    assert f"^FD(00){SSCC}^FS" in gs1_label.zpl
    assert "^BY6," in gs1_label.zpl  # laid out for prn-p1's 300 dpi: 0.508 mm modules
    assert "(00) 1 0614141 123456789 7" in gs1_label.zpl and "ACME Fulfilment" in gs1_label.zpl
    printer, carrier_label = jobs[pdf_job.cmd_id]
    assert printer == "prn-p2" and carrier_label.zpl is None
    assert base64.b64decode(carrier_label.pdf or "") == PDF
    async with engine.connect() as conn:
        logged = (
            await conn.execute(
                select(activity.c.kind, activity.c.detail)
                .where(activity.c.order_id == order_id)
                .where(activity.c.kind.like("%label_sent"))
                .order_by(activity.c.id)
            )
        ).all()
    assert [k for k, _ in logged] == ["sscc_label_sent", "carrier_label_sent"]
    assert logged[0][1]["actor"] == "sup"
