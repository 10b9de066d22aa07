"""The alert engine and device table against real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.monitoring.conftest import advance
from tests.integration.persistence.helpers import new_order, seed_catalogue
from wcs.contract.topics import Topics
from wcs.persistence.db import transaction
from wcs.persistence.tables import activity, orders, outbox, shipments
from wcs.services.alerting import ack_alert, evaluate_once, list_alerts
from wcs.services.devices import list_devices, record_device_status
from wcs.services.orders import submit_order
from wcs.settings import Settings
from wcs.timeutil import as_utc, utcnow

TOPICS = Topics("alerts")
SETTINGS = Settings()


async def _reserved_order(engine: AsyncEngine, name: str) -> str:
    result = await submit_order(
        engine,
        TOPICS,
        new_order(name, [("SKU-1", 1)]),
        idempotency_key=name,
        request_hash=name,
        actor="test",
    )
    return result.order_id


async def test_stuck_order_alert_lifecycle(engine: AsyncEngine) -> None:
    await seed_catalogue(engine, TOPICS, {"SKU-1": [("A-01-01-1", 5)]})
    order_id = await _reserved_order(engine, "stuck-1")
    later = utcnow() + timedelta(hours=5)  # reserved for 5 h, limit 4 h

    first = await evaluate_once(engine, TOPICS, SETTINGS, now=later)
    assert len(first.raised) == 1
    (alert,) = await list_alerts(engine, open_only=True)
    assert (alert["code"], alert["subject"], alert["severity"]) == (
        "order_stuck",
        order_id,
        "warning",
    )
    assert "has been in 'reserved' for 5 h" in alert["message"]
    assert alert["runbook"]  # from the catalogue

    # published through the outbox on alert/{severity}
    async with engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.topic, outbox.c.payload))).all()
    published = [json.loads(p) for t, p in rows if t == TOPICS.alert("warning")]
    assert [(p["code"], p["subject"]) for p in published] == [("order_stuck", order_id)]

    # still stuck: nothing new; acknowledged: still nothing new, and no longer open
    assert (await evaluate_once(engine, TOPICS, SETTINGS, now=later)).raised == ()
    acked = await ack_alert(engine, alert["id"], "sam")
    assert acked["acked_by"] == "sam" and not acked["open"]
    assert (await ack_alert(engine, alert["id"], "kim"))["acked_by"] == "sam"
    assert await list_alerts(engine, open_only=True) == []
    assert (await evaluate_once(engine, TOPICS, SETTINGS, now=later)).raised == ()

    # the order moves on: the alert is resolved; stuck again later: a new alert
    await advance(engine, TOPICS, order_id, ["pick_planned"], later)
    cleared = await evaluate_once(engine, TOPICS, SETTINGS, now=later + timedelta(minutes=1))
    assert cleared.resolved == (alert["id"],) and cleared.raised == ()
    (resolved,) = await list_alerts(engine)
    assert resolved["resolved_at"] is not None
    again = await evaluate_once(engine, TOPICS, SETTINGS, now=later + timedelta(hours=2))
    assert len(again.raised) == 1 and again.raised[0] != alert["id"]


async def test_sla_and_delayed_delivery(engine: AsyncEngine) -> None:
    await seed_catalogue(engine, TOPICS, {"SKU-1": [("A-01-01-1", 5)]})
    now = utcnow()
    risky = await _reserved_order(engine, "sla-1")
    late = await _reserved_order(engine, "sla-2")
    shipped = await _reserved_order(engine, "sla-3")
    async with engine.begin() as conn:
        for oid, deadline in ((risky, now + timedelta(minutes=20)), (late, now), (shipped, now)):
            await conn.execute(
                update(orders).where(orders.c.id == oid).values(sla_deadline=deadline)
            )
    steps = ["pick_planned", "picking", "picked", "qc_passed", "packing", "packed", "allocated"]
    await advance(engine, TOPICS, shipped, [*steps, "shipped", "in_transit"], now)
    async with engine.begin() as conn:
        await conn.execute(
            insert(shipments).values(
                id="s-1",
                order_id=shipped,
                status="in_transit",
                carrier="dhl",
                carrier_name="DHL",
                service="standard",
                own_fleet=False,
                weight_g=400.0,
                length_mm=200,
                width_mm=150,
                height_mm=100,
                created_by="test",
                created_at=now,
                updated_at=now,
                booked_at=now,
                delivery_due=now + timedelta(minutes=1),
            )
        )

    result = await evaluate_once(engine, TOPICS, SETTINGS, now=now + timedelta(minutes=2))
    alerts = await list_alerts(engine, open_only=True)
    found = {(a["code"], a["subject"]) for a in alerts}
    assert found == {
        ("sla_at_risk", risky),
        ("sla_missed", late),
        ("delivery_delayed", shipped),  # past its promised delivery time
    }
    assert len(result.raised) == 3
    severities = {a["code"]: a["severity"] for a in alerts}
    assert severities["sla_missed"] == "critical"


async def test_floor_rules_from_devices_and_activity(engine: AsyncEngine) -> None:
    now = utcnow()
    async with transaction(engine) as conn:
        await record_device_status(
            conn, "sc1", "scale", "pack", "offline", None, at=now - timedelta(minutes=5)
        )
        await record_device_status(
            conn, "pr1", "printer", "pack", "fault", "paper out", at=now - timedelta(minutes=5)
        )
        await record_device_status(conn, "sc2", "scale", "pack", "online", None, at=now)
        # just went offline: within the grace period, not an incident yet
        await record_device_status(conn, "sc3", "scale", "pack", "offline", None, at=now)

    def fact(
        minutes_ago: float, kind: str, ok: bool, station: str | None = None, **detail: object
    ) -> dict[str, object]:
        at = now - timedelta(minutes=minutes_ago)
        return {"at": at, "kind": kind, "ok": ok, "station": station, "detail": detail or None}

    rows = [
        # pack-1: three mismatches in a row (newest first); pack-2: the newest was fine
        *(fact(m, "weight_mismatch", False, station="pack-1") for m in (1, 2, 3)),
        fact(4, "weight_ok", True, station="pack-1"),
        fact(1, "weight_ok", True, station="pack-2"),
        *(fact(m, "weight_mismatch", False, station="pack-2") for m in (2, 3, 4)),
        # 45 good picks of 50 in the last hour
        *(fact(10, "pick", True) for _ in range(45)),
        *(fact(10, "mispick", False) for _ in range(5)),
        # a bad hour a day ago does not count
        *(fact(60 * 24, "mispick", False) for _ in range(100)),
        *(fact(m, "carrier_failed", False, carrier="dhl") for m in (1, 2, 3)),
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(activity), rows)

    await evaluate_once(engine, TOPICS, SETTINGS, now=now)
    found = {(a["code"], a["subject"]) for a in await list_alerts(engine, open_only=True)}
    assert found == {
        ("device_offline", "sc1"),
        ("device_fault", "pr1"),
        ("weight_mismatch_streak", "pack-1"),
        ("pick_accuracy_low", "pick"),
        ("carrier_failures", "dhl"),
    }

    # conditions clear: the scale is back, pack-1 weighs right, dhl books again
    async with transaction(engine) as conn:
        await record_device_status(conn, "sc1", "scale", "pack", "online", None, at=now)
    async with engine.begin() as conn:
        await conn.execute(
            insert(activity),
            [
                fact(-1, "weight_ok", True, station="pack-1"),
                fact(-1, "carrier_booked", True, carrier="dhl"),
            ],
        )
    result = await evaluate_once(engine, TOPICS, SETTINGS, now=now + timedelta(minutes=2))
    assert len(result.resolved) == 3
    found = {(a["code"], a["subject"]) for a in await list_alerts(engine, open_only=True)}
    # sc3 has now been offline past the grace period
    assert found == {
        ("device_fault", "pr1"),
        ("pick_accuracy_low", "pick"),
        ("device_offline", "sc3"),
    }


async def test_carrier_failures_from_shipments(engine: AsyncEngine) -> None:
    await seed_catalogue(engine, TOPICS, {"SKU-1": [("A-01-01-1", 5)]})
    now = utcnow()
    order_id = await _reserved_order(engine, "ship-1")
    base = {
        "order_id": order_id,
        "carrier_name": "X",
        "service": "standard",
        "own_fleet": False,
        "weight_g": 400.0,
        "length_mm": 200,
        "width_mm": 150,
        "height_mm": 100,
        "created_by": "test",
        "created_at": now,
    }
    rows = [
        # ups: failed three times after one success; dhl: the newest booking went through
        *(
            {**base, "id": f"u{i}", "carrier": "ups", "status": "pending", "last_error": "503"}
            | {"updated_at": now - timedelta(minutes=i)}
            for i in (1, 2, 3)
        ),
        {**base, "id": "u9", "carrier": "ups", "status": "booked", "booked_at": now}
        | {"updated_at": now - timedelta(minutes=9)},
        {**base, "id": "d1", "carrier": "dhl", "status": "booked", "booked_at": now}
        | {"updated_at": now - timedelta(minutes=1)},
        *(
            {**base, "id": f"d{i}", "carrier": "dhl", "status": "pending", "last_error": "x"}
            | {"updated_at": now - timedelta(minutes=i)}
            for i in (2, 3, 4)
        ),
    ]
    async with engine.begin() as conn:
        for row in rows:
            await conn.execute(insert(shipments).values(**row))
    await evaluate_once(engine, TOPICS, SETTINGS, now=now)
    found = {(a["code"], a["subject"]) for a in await list_alerts(engine, open_only=True)}
    assert found == {("carrier_failures", "ups")}


async def test_record_device_status_keeps_the_time_of_the_last_change(
    engine: AsyncEngine,
) -> None:
    t0 = utcnow() - timedelta(minutes=10)
    steps = [
        # (state, detail, at offset in min, station, expected "changed")
        ("online", None, 0, "pack-1", True),
        ("online", None, 1, None, False),  # a repeat: no change, station kept
        ("fault", "paper out", 2, None, True),
        ("online", None, 1, None, False),  # older than the stored change: ignored
        ("fault", "head open", 3, None, True),  # a new detail is a change
    ]
    for state, detail, minutes, station, changed in steps:
        async with transaction(engine) as conn:
            got = await record_device_status(
                conn,
                "pr1",
                "printer",
                "pack",
                state,
                detail,
                at=t0 + timedelta(minutes=minutes),
                station=station,
            )
        assert got is changed, (state, detail, minutes)
    (device,) = await list_devices(engine)
    assert (device.state, device.detail, device.station) == ("fault", "head open", "pack-1")
    assert as_utc(device.updated_at) == t0 + timedelta(minutes=3)
