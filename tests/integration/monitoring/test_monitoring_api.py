"""KPIs, alerts, devices, forecast and metrics over real HTTP, with the real broker."""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.api.conftest import Served, serve
from tests.integration.api.test_orders_api import order_body, seed
from tests.integration.monitoring.conftest import monitoring_settings
from tests.integration.notify.conftest import add_notification
from wcs.contract.payloads import DeviceStatus
from wcs.contract.topics import Topics
from wcs.domain.alert_rules import ALERT_CATALOGUE
from wcs.mqtt.client import make_client
from wcs.persistence.tables import orders
from wcs.services.auth import issue_token
from wcs.settings import MqttEndpoint
from wcs.timeutil import utcnow

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 10.0) -> T:
    """Poll ``probe`` until it returns something truthy."""
    async with asyncio.timeout(timeout):
        while True:
            value = await probe()
            if value:
                return value
            await asyncio.sleep(0.05)


async def tokens(engine: AsyncEngine) -> dict[str, str]:
    """One token per role; customers and couriers need a subject."""
    issued = {}
    for role in ("supervisor", "customer_service", "dispatcher", "courier", "customer"):
        subject = "c1" if role in ("customer", "courier") else None
        issued[role] = await issue_token(engine, f"t-{role}", [role], subject=subject)
    return issued


async def test_kpis_endpoint_and_roles(mon_api: Served, engine: AsyncEngine) -> None:
    issued = await tokens(engine)
    for role in ("supervisor", "customer_service", "dispatcher"):
        async with mon_api.client(issued[role]) as client:
            r = await client.get("/api/v1/kpis")
            assert r.status_code == 200, (role, r.text)
    body = r.json()
    assert set(body) >= {
        "from",
        "to",
        "processing_time",
        "pick_accuracy",
        "pack_pass_rate",
        "qc_pass_rate",
        "on_time_shipping",
        "on_time_delivery",
        "customer_satisfaction",
        "returns_rate",
        "inventory_accuracy",
        "stock_adjustments",
        "orders_by_state",
        "throughput",
    }
    assert len(body["throughput"]) in (24, 25)
    for role in ("courier", "customer"):
        async with mon_api.client(issued[role]) as client:
            assert (await client.get("/api/v1/kpis")).status_code == 403
    async with mon_api.client(None) as client:
        assert (await client.get("/api/v1/kpis")).status_code == 401
    async with mon_api.client() as client:
        bad = await client.get(
            "/api/v1/kpis", params={"from": "2026-11-25T10:00:00Z", "to": "2026-11-25T09:00:00Z"}
        )
        assert bad.status_code == 422 and "'to' must be after 'from'" in bad.json()["detail"]
        naive = await client.get("/api/v1/kpis", params={"from": "2026-11-25T10:00:00"})
        assert naive.status_code == 422


async def test_intake_alert_listed_and_acknowledged(mon_api: Served, engine: AsyncEngine) -> None:
    issued = await tokens(engine)
    async with mon_api.client() as client:
        await seed(client, {"SKU-1": [("A-01-01-1", 5)]})
        r = await client.post("/api/v1/orders", json=order_body("bad-1", [("NOPE", 1)]))
        assert r.status_code == 422
        order_id = r.json()["order_id"]
    async with mon_api.client(issued["customer_service"]) as cs:
        (alert,) = (await cs.get("/api/v1/alerts", params={"open": "true"})).json()
        assert (alert["code"], alert["subject"]) == ("order_invalid", order_id)
        assert alert["severity"] == ALERT_CATALOGUE["order_invalid"].severity
        assert alert["runbook"] == ALERT_CATALOGUE["order_invalid"].runbook
        assert alert["open"] is True
    # An alert about an order is customer service's or a supervisor's, not a dispatcher's.
    async with mon_api.client(issued["dispatcher"]) as dispatcher:
        assert (await dispatcher.post(f"/api/v1/alerts/{alert['id']}/ack")).status_code == 403
    async with mon_api.client(issued["customer_service"]) as cs:
        catalogue = (await cs.get("/api/v1/alerts/catalogue")).json()
        assert {c["code"] for c in catalogue} == set(ALERT_CATALOGUE)
    async with mon_api.client(issued["supervisor"]) as sup:
        acked = await sup.post(f"/api/v1/alerts/{alert['id']}/ack")
        assert acked.status_code == 200
        assert acked.json()["acked_by"] == "t-supervisor" and acked.json()["open"] is False
        again = await sup.post(f"/api/v1/alerts/{alert['id']}/ack")
        assert again.json()["acked_at"] == acked.json()["acked_at"]
        assert (await sup.get("/api/v1/alerts", params={"open": "true"})).json() == []
        assert len((await sup.get("/api/v1/alerts")).json()) == 1
        missing = await sup.post("/api/v1/alerts/999999/ack")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
    async with mon_api.client(issued["courier"]) as courier:
        assert (await courier.get("/api/v1/alerts")).status_code == 403


async def test_device_status_to_table_alert_and_mqtt(
    mon_api: Served, mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    """Device reports over MQTT land in the devices table; the lifespan's evaluator raises
    device_offline, the relay publishes it on alert/critical, and it resolves itself."""
    topics = Topics(site)

    async def publish(state: str, detail: str | None) -> None:
        status = DeviceStatus(state=state, kind="scale", zone="pack", detail=detail)  # type: ignore[arg-type]
        async with make_client(mqtt_endpoint) as pub:
            await pub.publish(topics.dev_status("sc9"), status.to_json(), qos=1)

    async with make_client(mqtt_endpoint) as listener, mon_api.client() as client:
        await listener.subscribe(topics.all_alerts(), qos=1)

        async def device_row() -> dict[str, Any] | None:
            rows = (await client.get("/api/v1/devices")).json()
            return next((d for d in rows if d["id"] == "sc9" and d["state"] == "offline"), None)

        async def open_alert(code: str) -> dict[str, Any] | None:
            rows = (await client.get("/api/v1/alerts", params={"open": "true"})).json()
            return next((a for a in rows if (a["code"], a["subject"]) == (code, "sc9")), None)

        # the live feed subscribes in the background: repeat until it has heard one
        async def reported() -> dict[str, Any] | None:
            await publish("offline", "port gone")
            try:
                return await eventually(device_row, timeout=1.0)
            except TimeoutError:
                return None

        device = await eventually(reported)
        assert (device["kind"], device["zone"], device["detail"]) == ("scale", "pack", "port gone")
        alert = await eventually(lambda: open_alert("device_offline"))
        assert alert["severity"] == "critical"

        async with asyncio.timeout(10):
            async for message in listener.messages:
                payload = json.loads(message.payload)  # type: ignore[arg-type]
                if payload["code"] == "device_offline":
                    assert str(message.topic) == topics.alert("critical")
                    assert payload["subject"] == "sc9"
                    break

        await publish("online", None)

        async def resolved() -> dict[str, Any] | None:
            rows = (await client.get("/api/v1/alerts")).json()
            return next((a for a in rows if a["id"] == alert["id"] and a["resolved_at"]), None)

        assert (await eventually(resolved))["open"] is False


async def test_metrics_expose_monitoring_gauges(mon_api: Served, engine: AsyncEngine) -> None:
    async with mon_api.client() as client:
        await seed(client, {"SKU-1": [("A-01-01-1", 5)]})
        r = await client.post("/api/v1/orders", json=order_body("m-1", [("SKU-1", 1)]))
        assert r.status_code == 201
        oid = r.json()["id"]
        await add_notification(
            engine, oid, kind="shipped", audience="customer", state="dead", last_error="550"
        )
        await add_notification(engine, oid, kind="order_exception", audience="staff", state="sent")

        async def scraped() -> str | None:
            text = (await client.get("/metrics")).text
            wanted = (
                'wcs_orders_by_state{state="reserved"} 1.0',
                'wcs_notifications_undelivered{state="dead"} 1.0',
            )
            return text if all(w in text for w in wanted) else None

        text = await eventually(scraped)
    assert 'wcs_notifications_undelivered{state="pending"} 0.0' in text
    assert 'wcs_notifications_undelivered{state="sent"}' not in text
    assert 'wcs_alerts_open{severity="critical"}' in text
    assert "wcs_sse_clients " in text
    assert "wcs_sse_clients_dropped_total" in text


@pytest.fixture
def staffing_api(
    db_url: str, engine: object, mqtt_endpoint: MqttEndpoint, site: str
) -> Iterator[Served]:
    yield from serve(monitoring_settings(db_url, mqtt_endpoint, site, picks_per_picker_hour=2.0))


async def _history(engine: AsyncEngine, days: int) -> None:
    """Orders over the last ``days`` days: 1 an hour at night, 6 an hour 09:00-16:59."""
    end = utcnow().replace(minute=0, second=0, microsecond=0)
    rows = []
    for h in range(days * 24):
        hour = end - timedelta(hours=days * 24 - h)
        for i in range(6 if 9 <= hour.hour < 17 else 1):
            at = hour + timedelta(minutes=5 * i)
            rows.append(
                {
                    "id": f"h{h:04d}{i}",
                    "external_id": f"h{h:04d}{i}",
                    "state": "closed",
                    "seq": 1,
                    "priority": 0,
                    "service": "standard",
                    "customer_name": "x",
                    "line1": "x",
                    "city": "x",
                    "postal_code": "1",
                    "country": "FR",
                    "created_at": at,
                    "updated_at": at,
                }
            )
    async with engine.begin() as conn:
        await conn.execute(insert(orders), rows)


async def test_forecast_with_staffing(staffing_api: Served, engine: AsyncEngine) -> None:
    issued = await tokens(engine)
    async with staffing_api.client(issued["supervisor"]) as client:
        empty = await client.get("/api/v1/forecast")
        assert empty.status_code == 409 and "forecasting" in empty.json()["detail"]
        await _history(engine, days=7)
        r = await client.get("/api/v1/forecast", params={"hours": 48})
        assert r.status_code == 200, r.text
    plan = r.json()
    points = plan["points"]
    assert len(points) == 48
    assert plan["history_hours"] == 7 * 24
    for p in points:
        assert 0 <= p["low"] <= p["expected"] <= p["high"]
    day = [p for p in points if 10 <= int(p["hour"][11:13]) < 16]
    night = [p for p in points if int(p["hour"][11:13]) < 6]
    assert min(p["expected"] for p in day) > 3 > max(p["expected"] for p in night)
    # the server's 2 picks per picker-hour at 85 % utilisation, one line per order
    assert plan["picks_per_picker_hour"] == 2.0 and plan["lines_per_order"] == 1.0
    for p in points:
        orders_planned = math.ceil(p["expected"] - 1e-9)
        assert p["pickers"] == math.ceil(orders_planned / (2 * 0.85) - 1e-9), p
    assert min(p["pickers"] for p in day) >= 4 > max(p["pickers"] for p in night)
    assert all(p["waves"] == 1 for p in day)
    assert plan["peak_pickers"] >= 4 and 9 <= int(plan["peak"]["hour"][11:13]) < 17
    assert plan["total_expected"] == pytest.approx(2 * (8 * 6 + 16), rel=0.15)
    async with staffing_api.client(issued["customer_service"]) as cs:
        assert (await cs.get("/api/v1/forecast")).status_code == 403
        # the status page summarises the next day
        page = (await cs.get("/status")).text
        summary = re.search(r'<p id="forecast-summary">(.*?)</p>', page, re.S)
        assert summary is not None and "orders expected; peak" in summary.group(1)
        assert "pickers" in summary.group(1)
    async with staffing_api.client(issued["supervisor"]) as client:
        assert (await client.get("/api/v1/forecast", params={"hours": 0})).status_code == 422


async def test_openapi_lists_monitoring_endpoints(mon_api: Served) -> None:
    async with httpx.AsyncClient(base_url=mon_api.base_url) as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    for path in (
        "/api/v1/kpis",
        "/api/v1/alerts",
        "/api/v1/alerts/{alert_id}/ack",
        "/api/v1/devices",
        "/api/v1/forecast",
        "/api/v1/events/stream",
        "/status",
    ):
        assert path in paths, path
