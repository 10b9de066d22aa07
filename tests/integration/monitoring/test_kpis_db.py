"""KPI queries against real databases (SQLite and PostgreSQL), from real order events."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.monitoring.conftest import TO_DELIVERED, TO_PACKED, advance
from tests.integration.persistence.helpers import new_order, seed_catalogue
from wcs.contract.topics import Topics
from wcs.domain.states import OrderState
from wcs.errors import ValidationFailed
from wcs.persistence.tables import (
    activity,
    count_tasks,
    orders,
    returns,
    shipments,
    sign_offs,
    stock_adjustments,
)
from wcs.services.catalog import SkuData, upsert_sku
from wcs.services.kpis import kpi_report, report_as_dict
from wcs.services.orders import submit_order
from wcs.timeutil import utcnow

TOPICS = Topics("kpi")


async def _order(engine: AsyncEngine, name: str) -> str:
    result = await submit_order(
        engine,
        TOPICS,
        new_order(name, [("SKU-1", 1)]),
        idempotency_key=name,
        request_hash=name,
        actor="test",
    )
    assert result.state == OrderState.RESERVED
    return result.order_id


async def _ship(engine: AsyncEngine, order_id: str, due: datetime, at: datetime) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(shipments).values(
                id=f"s-{order_id}",
                order_id=order_id,
                status="delivered",
                carrier="dhl",
                carrier_name="DHL",
                service="standard",
                own_fleet=False,
                weight_g=500.0,
                length_mm=300,
                width_mm=200,
                height_mm=100,
                created_by="test",
                created_at=at,
                updated_at=at,
                booked_at=at,
                delivery_due=due,
            )
        )


async def test_kpis_from_events_activity_and_delivery_tables(engine: AsyncEngine) -> None:
    await seed_catalogue(engine, TOPICS, {"SKU-1": [("A-01-01-1", 20)]})
    now = utcnow()
    a, b, c, _d, e = [await _order(engine, name) for name in "abcde"]

    def m(minutes: float) -> datetime:
        return now + timedelta(minutes=minutes)

    # a: packed after 10 min, shipped on time, delivered an hour after its promise
    await advance(engine, TOPICS, a, TO_DELIVERED, [*[m(10)] * 6, m(15), m(30), *[m(120)] * 3])
    await _ship(engine, a, due=m(60), at=m(15))
    # b: packed after 20 min, shipped after its deadline, delivered before its promise
    async with engine.begin() as conn:
        await conn.execute(update(orders).where(orders.c.id == b).values(sla_deadline=m(35)))
    await advance(engine, TOPICS, b, TO_DELIVERED, [*[m(20)] * 6, m(25), m(40), *[m(120)] * 3])
    await _ship(engine, b, due=m(180), at=m(25))
    # c: packed after an hour; d stays reserved; e was packed before the window opened
    await advance(engine, TOPICS, c, TO_PACKED, m(60))
    await advance(engine, TOPICS, e, TO_PACKED, m(-120))
    async with engine.begin() as conn:
        await conn.execute(
            insert(sign_offs),
            [
                {"order_id": a, "kind": "customer", "rating": 5, "actor": "c", "at": m(130)},
                {"order_id": b, "kind": "customer", "rating": 4, "actor": "c", "at": m(130)},
            ],
        )
        await conn.execute(
            insert(returns).values(
                id="rma-1",
                order_id=b,
                requested_by="c",
                label_format="zpl",
                label_data="^XA^XZ",
                created_at=m(150),
                updated_at=m(150),
            )
        )
        facts = (
            [("pick", True)] * 9
            + [("mispick", False)]
            + [("weight_ok", True)] * 3
            + [("weight_mismatch", False)]
            + [("qc_pass", True)] * 2
        )
        await conn.execute(
            insert(activity),
            [{"at": m(5), "kind": kind, "ok": ok} for kind, ok in facts]
            # outside the window: must not count
            + [{"at": m(-180), "kind": "mispick", "ok": False}],
        )

    report = report_as_dict(await kpi_report(engine, m(-60), m(240)))

    pt = report["processing_time"]
    assert pt["count"] == 3
    assert pt["p50_s"] == pytest.approx(1200, abs=2)
    assert pt["p95_s"] == pytest.approx(1200 + 0.9 * 2400, abs=2)
    assert report["pick_accuracy"] == {"good": 9, "total": 10, "rate": 0.9}
    assert report["pack_pass_rate"] == {"good": 3, "total": 4, "rate": 0.75}
    assert report["qc_pass_rate"] == {"good": 2, "total": 2, "rate": 1.0}
    assert report["on_time_shipping"] == {"good": 1, "total": 2, "rate": 0.5}
    assert report["on_time_delivery"] == {"good": 1, "total": 2, "rate": 0.5}
    assert report["customer_satisfaction"] == {
        "count": 2,
        "average": 4.5,
        "distribution": {"4": 1, "5": 1},
    }
    assert report["returns_rate"] == {"good": 1, "total": 2, "rate": 0.5}
    assert report["orders_by_state"] == {"delivered": 2, "packed": 2, "reserved": 1}
    hours = report["throughput"]
    assert hours[0]["hour"] <= m(-60) < hours[0]["hour"] + timedelta(hours=1)
    assert len(hours) in (5, 6)  # 5 h window, plus one when it starts mid-hour
    assert sum(h["received"] for h in hours) == 5
    assert sum(h["packed"] for h in hours) == 3  # e's packing is outside the window


async def test_inventory_accuracy_and_adjustments_from_counts(engine: AsyncEngine) -> None:
    await upsert_sku(engine, SkuData("SKU-P", "priced", 100.0, 10, 10, 10, None, price_minor=250))
    await upsert_sku(
        engine,
        SkuData("SKU-E", "euro", 100.0, 10, 10, 10, None, price_minor=1000, currency="EUR"),
    )
    await upsert_sku(engine, SkuData("SKU-N", "no price", 100.0, 10, 10, 10, None))
    now = utcnow()

    def m(minutes: float) -> datetime:
        return now + timedelta(minutes=minutes)

    def count(result: str | None, closed: datetime | None, state: str = "done") -> dict:
        return {
            "sku": "SKU-P",
            "location": "A-01-01-1",
            "station": "PK1",
            "reason": "abc",
            "state": state,
            "created_by": "test",
            "created_at": m(-300),
            "updated_at": m(-300),
            "result": result,
            "closed_at": closed,
        }

    def adjusted(sku: str, delta: int, price: int | None, at: datetime) -> dict:
        return {
            "sku": sku,
            "location": "A-01-01-1",
            "book": 10,
            "counted": 10 + delta,
            "delta": delta,
            "value_minor": None if price is None else delta * price,
            "reason": "abc",
            "counted_by": "ann",
            "accepted_by": "ann",
            "replanned": [],
            "at": at,
        }

    async with engine.begin() as conn:
        await conn.execute(
            insert(count_tasks),
            [count("matched", m(-10))] * 3
            + [count("adjusted", m(-5))]
            # outside the window, still open, cancelled: not judged
            + [
                count("adjusted", m(-200)),
                count(None, None, "recount"),
                count(None, m(-1), "cancelled"),
            ],
        )
        await conn.execute(
            insert(stock_adjustments),
            [
                adjusted("SKU-P", -4, 250, m(-5)),
                adjusted("SKU-P", 1, 250, m(-4)),
                adjusted("SKU-E", -2, 1000, m(-4)),
                adjusted("SKU-N", -3, None, m(-3)),
                adjusted("SKU-P", -50, 250, m(-200)),  # outside the window
            ],
        )

    report = report_as_dict(await kpi_report(engine, m(-60), m(1)))
    assert report["inventory_accuracy"] == {"good": 3, "total": 4, "rate": 0.75}
    adjustments = report["stock_adjustments"]
    assert (adjustments["count"], adjustments["units_net"], adjustments["units_gross"]) == (
        4,
        -8,
        10,
    )
    assert adjustments["value"] == [
        {"currency": "EUR", "net_minor": -2000, "gross_minor": 2000},
        {"currency": "XXX", "net_minor": -750, "gross_minor": 1250},
    ]


async def test_empty_window_reports_nothing_measured(engine: AsyncEngine) -> None:
    now = utcnow()
    report = report_as_dict(await kpi_report(engine, now - timedelta(hours=1), now))
    assert report["processing_time"]["p50_s"] is None
    assert report["pick_accuracy"]["rate"] is None
    assert report["customer_satisfaction"] == {"count": 0, "average": None, "distribution": {}}
    assert report["returns_rate"] == {"good": 0, "total": 0, "rate": None}
    assert report["inventory_accuracy"] == {"good": 0, "total": 0, "rate": None}
    assert report["stock_adjustments"] == {
        "count": 0,
        "units_net": 0,
        "units_gross": 0,
        "value": [],
    }


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (datetime(2026, 1, 2), datetime(2026, 1, 3), "time zone"),
        (utcnow(), utcnow() - timedelta(hours=1), "after"),
        (utcnow() - timedelta(days=500), utcnow(), "at most"),
    ],
)
async def test_bad_windows_are_refused(
    engine: AsyncEngine, start: datetime, end: datetime, message: str
) -> None:
    with pytest.raises(ValidationFailed, match=message):
        await kpi_report(engine, start, end)
