"""The supervisor's first screen in Chromium at 1440x900, on a floor with a device down,
a device fault and a late order: alerts, devices down and late orders are all above
the fold with no scrolling; an alert is acknowledged, assigned and resolved from the
page; a viewer without the supervisor role gets no buttons and is refused by the
server; click-through to an order's timeline and a device's history; the flow
diagram and the floor map in tabs of their own. Screenshots in English and Chinese.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Locator, Page, async_playwright, expect
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.conftest import CHROMIUM_ARGS, FLOOR
from tests.integration.api.conftest import ADMIN, Served
from tests.integration.api.test_orders_api import order_body, seed
from wcs.contract.payloads import DeviceStatus
from wcs.contract.topics import Topics
from wcs.floor import load_floor
from wcs.mqtt.client import make_client
from wcs.persistence.tables import orders
from wcs.services.auth import issue_token
from wcs.settings import MqttEndpoint
from wcs.timeutil import utcnow

WIDTH, HEIGHT = 1440, 900
LIVE_MS = 20_000


async def _floor_with_trouble(
    client: httpx.AsyncClient, engine: AsyncEngine, mqtt: MqttEndpoint, site: str
) -> dict[str, str]:
    """Every device of the sample floor online but a QC scanner gone and a printer out of
    paper; one order past its ship-by deadline, one close to it, one with time."""
    topics = Topics(site)
    floor = load_floor(FLOOR)
    async with make_client(mqtt) as pub:
        for device in floor.devices:
            state, detail = "online", None
            if device.id == "scan-qc":
                state, detail = "offline", "driver lost the port"
            elif device.id == "prn-p1":
                state, detail = "fault", "paper out"
            status = DeviceStatus(state=state, kind=device.kind, zone=device.zone, detail=detail)
            await pub.publish(topics.dev_status(device.id), status.to_json(), qos=1, retain=True)
    await seed(client, {"SKU-1": [("A-01-01-1", 50)]})
    ids = {}
    for name in ("late", "soon", "fine"):
        r = await client.post("/api/v1/orders", json=order_body(f"web-{name}", [("SKU-1", 1)]))
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
    now = utcnow()
    async with engine.begin() as conn:
        for name, delta in (("late", -35), ("soon", 25)):
            await conn.execute(
                update(orders)
                .where(orders.c.id == ids[name])
                .values(sla_deadline=now + timedelta(minutes=delta))
            )
    return ids


async def _in_view(locator: Locator) -> None:
    await expect(locator).to_be_visible(timeout=LIVE_MS)
    # The live page redraws its lists on every summary: measure the row drawn now.
    box = None
    for _ in range(50):
        box = await locator.bounding_box()
        if box is not None:
            break
        await asyncio.sleep(0.05)
    assert box is not None
    assert box["y"] >= 0 and box["y"] + box["height"] <= HEIGHT, f"below the fold: {box}"
    assert box["x"] >= 0 and box["x"] + box["width"] <= WIDTH, f"off to the side: {box}"


async def _no_scrolling(page: Page) -> None:
    size = await page.evaluate(
        "({h: document.documentElement.scrollHeight, w: document.documentElement.scrollWidth})"
    )
    assert size["h"] <= HEIGHT and size["w"] <= WIDTH, f"the page scrolls: {size}"


@pytest.mark.browser
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_first_screen_shows_trouble_and_acts_on_alerts(
    floor_api: Served,
    engine: AsyncEngine,
    chromium_path: str,
    artifacts: Path,
    mqtt_endpoint: MqttEndpoint,
    site: str,
) -> None:
    api = floor_api
    async with api.client() as client:
        ids = await _floor_with_trouble(client, engine, mqtt_endpoint, site)
        # The alert engine raises them within a few rounds.
        wanted = {"device_offline", "device_fault", "sla_missed", "sla_at_risk"}
        for _ in range(100):
            raised = {a["code"] for a in (await client.get("/api/v1/alerts?open=true")).json()}
            if wanted <= raised:
                break
            await asyncio.sleep(0.2)
        assert wanted <= raised, raised
        viewer = await issue_token(engine, "cs-desk", ["customer_service"])

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                await page.goto(f"{api.base_url}/status?token={ADMIN}&lang=en")
                await expect(page.locator("body")).to_have_attribute(
                    "data-live", "connected", timeout=LIVE_MS
                )
                await page.evaluate("window.__sameDocument = 'yes'")

                # Everything that needs a supervisor is on the first screen.
                offline = page.locator('#alerts li[data-code="device_offline"]')
                await _in_view(offline)
                await expect(offline).to_contain_text("scan-qc")
                await _in_view(page.locator('#alerts li[data-code="sla_missed"]'))
                await _in_view(page.locator('#down li[data-device="scan-qc"]'))
                fault = page.locator('#down li[data-device="prn-p1"]')
                await _in_view(fault)
                await expect(fault).to_contain_text("paper out")
                late = page.locator(f'#risk tr[data-order="{ids["late"]}"]')
                await _in_view(late)
                await expect(late).to_have_class("late")
                await expect(late).to_contain_text("late")
                await _in_view(page.locator(f'#risk tr[data-order="{ids["soon"]}"]'))
                await expect(page.locator(f'#risk tr[data-order="{ids["fine"]}"]')).to_have_count(0)
                await _in_view(page.locator('#stations tr[data-station="QC1"]'))
                await expect(page.locator('#stations tr[data-station="QC1"]')).to_contain_text(
                    "down"
                )
                await expect(page.locator('#stations tr[data-station="P2"]')).to_contain_text(
                    "idle"
                )
                await _in_view(page.locator('.zone[data-zone="pack"]'))
                await expect(page.locator("#late-n")).to_have_text("1")
                await expect(page.locator("#devices-down-n")).to_have_text("2")
                await _no_scrolling(page)
                # The flow diagram is not on this screen: it has a tab of its own.
                await expect(page.locator("#flow")).to_be_hidden()
                await page.screenshot(path=str(artifacts / "status-overview-en.png"))

                # Acknowledge from the page: the alert stays, in hand, with who took it.
                await offline.locator('button[data-act="ack"]').click()
                await expect(offline).to_contain_text("acknowledged by admin", timeout=LIVE_MS)
                await expect(offline).to_have_class("alert sev-critical in-hand")
                await expect(offline.locator('button[data-act="ack"]')).to_have_count(0)
                alerts = {a["code"]: a for a in (await client.get("/api/v1/alerts")).json()}
                assert alerts["device_offline"]["acked_by"] == "admin"

                # Assign the fault to someone, by name.
                fault_alert = page.locator('#alerts li[data-code="device_fault"]')
                await fault_alert.locator('button[data-act="assign"]').click()
                await fault_alert.locator('input[name="assignee"]').fill("Wang Fang")
                await fault_alert.locator('form.assign button[type="submit"]').click()
                await expect(fault_alert).to_contain_text("assigned to Wang Fang", timeout=LIVE_MS)
                alerts = {a["code"]: a for a in (await client.get("/api/v1/alerts")).json()}
                assert alerts["device_fault"]["assigned_to"] == "Wang Fang"

                # Resolve: it leaves the list (a rule alert whose condition still holds is
                # raised anew by the next evaluation, under a new id).
                risk_alert = page.locator('#alerts li[data-code="sla_at_risk"]').first
                risk_id = await risk_alert.get_attribute("data-id")
                await risk_alert.locator('button[data-act="resolve"]').click()
                await expect(page.locator(f'#alerts li[data-id="{risk_id}"]')).to_have_count(
                    0, timeout=LIVE_MS
                )
                alerts = {a["code"]: a for a in (await client.get("/api/v1/alerts")).json()}
                resolved = (await client.get("/api/v1/alerts")).json()
                assert any(
                    str(a["id"]) == risk_id and a["resolved_by"] == "admin" for a in resolved
                )
                assert await page.evaluate("window.__sameDocument") == "yes"  # no reload

                # Click-through: the late order's timeline, a device's history.
                await late.locator("a").click()
                await expect(page.locator("h1")).to_contain_text(ids["late"])
                await expect(page.locator("#timeline")).to_contain_text("received")
                await page.screenshot(path=str(artifacts / "status-order-en.png"))
                await page.go_back()
                await page.locator('#down li[data-device="prn-p1"] a').click()
                await expect(page.locator("#device-now")).to_contain_text("fault")
                await expect(page.locator("#history")).to_contain_text("paper out")
                await expect(page.locator("#device-alerts")).to_contain_text("Device fault")
                await page.screenshot(path=str(artifacts / "status-device-en.png"))
                await page.go_back()

                # The flow diagram fits the width of its tab; the floor map has one too.
                await page.locator('.tabs a[data-tab="flow"]').click()
                diagram = page.locator("#flow svg")
                await expect(diagram).to_be_visible()
                box = await diagram.bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= WIDTH
                await page.screenshot(path=str(artifacts / "status-flow-en.png"))
                await page.locator('.tabs a[data-tab="map"]').click()
                await expect(page.locator("#map-dev-scan-qc")).to_have_class(
                    "dev state-offline", timeout=LIVE_MS
                )
                await expect(page.locator("#map-dev-prn-p1")).to_have_class("dev state-fault")
                await expect(page.locator("#map-station-QC1")).to_have_class("station down")
                await page.screenshot(path=str(artifacts / "status-map-en.png"))

                # The same screen in Chinese.
                await page.goto(f"{api.base_url}/status?lang=zh-CN")
                await expect(page.locator("body")).to_have_attribute(
                    "data-live", "connected", timeout=LIVE_MS
                )
                await expect(page.locator(".tabs")).to_contain_text("概览")
                offline_zh = page.locator('#alerts li[data-code="device_offline"]')
                await expect(offline_zh).to_contain_text("设备离线")
                await _no_scrolling(page)
                await page.screenshot(path=str(artifacts / "status-overview-zh.png"))
                assert errors == []

                # Customer service may look, not act: no buttons, and the server says no.
                other = await browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
                await other.goto(f"{api.base_url}/status?token={viewer}&lang=en")
                await expect(other.locator("#alerts li").first).to_be_visible(timeout=LIVE_MS)
                await expect(other.locator("#alerts button")).to_have_count(0)
                await expect(other.locator("#alerts-panel .hint")).to_be_visible()
            finally:
                await browser.close()

    alert_id = alerts["device_fault"]["id"]
    async with api.client(token=viewer) as desk:
        refused = await desk.post(f"/status/alerts/{alert_id}/resolve")
        assert refused.status_code == 403 and "not a supervisor" in refused.json()["detail"]
        refused = await desk.post(f"/api/v1/alerts/{alert_id}/resolve")
        assert refused.status_code == 403
    async with api.client(token=None) as anonymous:
        # The cookie alone, without the page's action key, does nothing.
        forged = await anonymous.post(
            f"/status/alerts/{alert_id}/resolve", cookies={"wcs_status": ADMIN}
        )
        assert forged.status_code == 403
    check: dict[str, Any] = {a["code"]: a for a in (await _alerts(api))}
    assert check["device_fault"]["resolved_at"] is None


async def _alerts(api: Served) -> list[dict[str, Any]]:
    async with api.client() as client:
        result: list[dict[str, Any]] = (await client.get("/api/v1/alerts")).json()
        return result
