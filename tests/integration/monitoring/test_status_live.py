"""The status page and its event stream over real HTTP: access rules, content, and
live events travelling outbox -> broker -> live feed -> SSE."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.api.conftest import ADMIN, Served
from tests.integration.api.test_orders_api import order_body, seed
from wcs.contract.payloads import DeviceStatus
from wcs.contract.topics import Topics
from wcs.mqtt.client import make_client
from wcs.services.auth import issue_token
from wcs.settings import MqttEndpoint

PERSONAL = ("Li Wei", "li@example.cn", "138 0013 8000", "88 Century Avenue")


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of a text/event-stream, as a browser's EventSource sees them."""
    name, data = "message", []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith(":"):
            continue  # keep-alive comment
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


async def sse_clients(client: httpx.AsyncClient) -> float:
    """The server's gauge (process-wide: other tests' hubs count too, so compare)."""
    text = (await client.get("/metrics")).text
    match = re.search(r"^wcs_sse_clients (\S+)$", text, re.M)
    assert match is not None
    return float(match.group(1))


async def next_event(
    events: AsyncIterator[tuple[str, dict[str, Any]]], kind: str, timeout: float = 10.0
) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        async for name, data in events:
            if name == kind:
                return data
    raise AssertionError(f"stream ended before a {kind!r} event")


async def test_stream_carries_order_changes_and_device_status(
    mon_api: Served, mqtt_endpoint: MqttEndpoint, site: str
) -> None:
    async with mon_api.client() as client:
        await seed(client, {"SKU-1": [("A-01-01-1", 5)]})
        async with client.stream("GET", "/api/v1/events/stream") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = sse_events(response)
            first = await next_event(events, "summary")
            assert first["counts"]["reserved"] == 0 and first["alerts"] == []

            async with mon_api.client() as other:
                r = await other.post("/api/v1/orders", json=order_body("live-1", [("SKU-1", 1)]))
                assert r.status_code == 201
                order_id = r.json()["id"]
            seen = []
            while len(seen) < 3:
                event = await next_event(events, "order")
                if event["order_id"] == order_id:
                    seen.append((event["seq"], event["from"], event["to"]))
            assert seen == [
                (1, None, "received"),
                (2, "received", "validated"),
                (3, "validated", "reserved"),
            ]
            assert "reason" not in event  # reasons may quote customers

            status = DeviceStatus(state="fault", kind="printer", zone="pack", detail="paper out")
            async with make_client(mqtt_endpoint) as pub:
                await pub.publish(Topics(site).dev_status("pr7"), status.to_json(), qos=1)
            device = await next_event(events, "device")
            assert (device["id"], device["state"], device["detail"]) == (
                "pr7",
                "fault",
                "paper out",
            )

            # A summary read before the status was recorded may still be on its way.
            async with asyncio.timeout(15):
                while True:
                    summary = await next_event(events, "summary")
                    if any(d["id"] == "pr7" for d in summary["devices"]):
                        break
            assert summary["counts"]["reserved"] == 1
            connected = await sse_clients(client)
            await events.aclose()  # not left to the garbage collector's finalizer task

        # the server notices the client left and lets go of its queue
        async with asyncio.timeout(10):
            while await sse_clients(client) != connected - 1:
                await asyncio.sleep(0.05)


async def test_status_page_access_and_content(mon_api: Served, engine: AsyncEngine) -> None:
    courier = await issue_token(engine, "courier-1", ["courier"], subject="k1")
    async with mon_api.client(None) as anon:
        denied = await anon.get("/status")
        assert denied.status_code == 401 and "staff token" in denied.text
        assert (await anon.get("/status", params={"token": "nope"})).status_code == 401
        assert (await anon.get("/status", params={"token": courier})).status_code == 403
        stream = await anon.get("/api/v1/events/stream")
        assert stream.status_code == 401
        assert stream.headers["content-type"] == "application/problem+json"

        # a wall display opens the page once with its token ...
        hop = await anon.get("/status", params={"token": ADMIN})
        assert hop.status_code == 303 and hop.headers["location"] == "/status"
        cookie = hop.headers["set-cookie"]
        assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
        # ... and from then on the cookie opens the page and its stream, nothing else
        assert (await anon.get("/api/v1/kpis")).status_code == 401
    async with mon_api.client() as client:
        await seed(client, {"SKU-1": [("A-01-01-1", 5)]})
        r = await client.post("/api/v1/orders", json=order_body("page-1", [("SKU-1", 2)]))
        order_id = r.json()["id"]
    async with httpx.AsyncClient(base_url=mon_api.base_url, cookies=hop.cookies) as viewer:
        page = await viewer.get("/status")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        async with viewer.stream("GET", "/api/v1/events/stream") as live:
            assert live.status_code == 200
    html = page.text
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="wcs-flow"' in html
    assert 'id="state-reserved"' in html and 'id="count-reserved"' in html
    badge = re.search(r'<g id="count-reserved" class="wcs-count">.*?<text[^>]*>(\d+)</text>', html)
    assert badge is not None and badge.group(1) == "1"
    assert order_id in html  # recent state changes
    for secret in PERSONAL:
        assert secret not in html, f"personal data on the status page: {secret!r}"
    # nothing is fetched from elsewhere: every src/href is local
    refs = re.findall(r'(?<![\w-])(?:src|href)="([^"]*)"', html)
    assert "/status/static/status.js" in refs and "/status/static/status.css" in refs
    for ref in refs:
        assert ref.startswith(("/", "#", "data:")), ref
    assert 'id="board-data"' in html


async def test_public_status_page(public_api: Served) -> None:
    async with httpx.AsyncClient(base_url=public_api.base_url) as anon:
        assert (await anon.get("/status")).status_code == 200
        async with anon.stream("GET", "/api/v1/events/stream") as live:
            assert live.status_code == 200
            first = await next_event(sse_events(live), "summary")
            assert "counts" in first
        # the page is public, the API is not
        assert (await anon.get("/api/v1/alerts")).status_code == 401


async def test_page_assets(mon_api: Served) -> None:
    async with httpx.AsyncClient(base_url=mon_api.base_url) as anon:
        script = await anon.get("/status/static/status.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        assert "new EventSource(" in script.text and "http" not in script.text
        css = await anon.get("/status/static/status.css")
        assert css.status_code == 200 and "url(" not in css.text and "@import" not in css.text
        assert (await anon.get("/status/static/app.py")).status_code == 404
        assert (await anon.get("/status/static/..%2Fapp.py")).status_code == 404


async def test_status_page_shows_inventory_accuracy_in_both_languages(
    mon_api: Served, engine: AsyncEngine
) -> None:
    from sqlalchemy import insert

    from wcs.persistence.tables import count_tasks, stock_adjustments
    from wcs.services.catalog import SkuData, upsert_sku
    from wcs.timeutil import utcnow

    await upsert_sku(
        engine, SkuData("SKU-R", "mug", 340.0, 110, 90, 95, None, price_minor=250, currency="CNY")
    )
    now = utcnow()
    count = {
        "sku": "SKU-R",
        "location": "A-01-01-1",
        "station": "PK1",
        "reason": "abc",
        "state": "done",
        "created_by": "rule",
        "created_at": now,
        "updated_at": now,
        "closed_at": now,
    }
    adjusted = {
        "sku": "SKU-R",
        "location": "A-01-01-1",
        "book": 10,
        "counted": 7,
        "delta": -3,
        "value_minor": -750,
        "reason": "abc",
        "counted_by": "ann",
        "accepted_by": "ann",
        "replanned": [],
        "at": now,
    }
    async with engine.begin() as conn:
        await conn.execute(
            insert(count_tasks),
            [{**count, "result": "matched"}] * 3 + [{**count, "result": "adjusted"}],
        )
        await conn.execute(insert(stock_adjustments), adjusted)

    def dd(html: str, element_id: str) -> str:
        match = re.search(rf'<dd[^>]*id="{element_id}"[^>]*>(.*?)</dd>', html, re.S)
        assert match is not None, element_id
        return re.sub(r"<.*?>", "", match.group(1)).strip()

    async with mon_api.client(None) as viewer:
        hop = await viewer.get("/status", params={"token": ADMIN})
        viewer.cookies = hop.cookies
        html = (await viewer.get("/status")).text
        assert "Inventory accuracy" in html
        assert dd(html, "kpi-inventory-accuracy") == "75.0 %"
        assert dd(html, "kpi-adjustments") == "-3 / -7.50 CNY"
        chosen = await viewer.get("/status", params={"lang": "zh-CN"})
        viewer.cookies.update(chosen.cookies)
        html = (await viewer.get("/status")).text
        assert "库存准确率" in html and "库存调整（件数 / 金额）" in html
        assert dd(html, "kpi-inventory-accuracy") == "75.0 %"
