"""The live status page in real headless Chromium: an order changes state through the
API and the page shows it without a reload, flow diagram included."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import async_playwright, expect

from tests.browser.conftest import CHROMIUM_ARGS
from tests.integration.api.conftest import ADMIN, Served
from tests.integration.api.test_orders_api import order_body, seed
from wcs.contract.payloads import DeviceStatus
from wcs.contract.topics import Topics
from wcs.mqtt.client import make_client
from wcs.settings import MqttEndpoint

LIVE_TIMEOUT_MS = 15_000


@pytest.mark.browser
async def test_status_page_follows_an_order_live(
    api: Served,
    chromium_path: str,
    artifacts: Path,
    mqtt_endpoint: MqttEndpoint,
    site: str,
    request: pytest.FixtureRequest,
) -> None:
    async with api.client() as client:
        await seed(client, {"SKU-1": [("A-01-01-1", 1)]})
        r = await client.post("/api/v1/orders", json=order_body("web-1", [("SKU-1", 3)]))
        assert r.status_code == 201 and r.json()["state"] == "backordered"
        order_id = r.json()["id"]

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 1000})
                requested: list[str] = []
                errors: list[str] = []
                page.on("request", lambda req: requested.append(req.url))
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on(
                    "console",
                    lambda msg: errors.append(msg.text) if msg.type == "error" else None,
                )

                await page.goto(f"{api.base_url}/status?token={ADMIN}")
                assert page.url == f"{api.base_url}/status"  # the token left the address bar
                await expect(page.locator("body")).to_have_attribute(
                    "data-live", "connected", timeout=LIVE_TIMEOUT_MS
                )
                await page.evaluate("window.__sameDocument = 'yes'")

                # the diagram is the state machine, with today's counts on it (its own tab)
                await page.locator('.tabs a[data-tab="flow"]').click()
                await expect(page.locator("#state-reserved")).to_be_visible()
                await expect(page.locator("#count-backordered text")).to_have_text("1")
                await expect(page.locator("#count-reserved")).to_be_hidden()

                # stock arrives: the backorder is reserved, and the page follows
                receipt = await client.post(
                    "/api/v1/inventory/receipts",
                    json={"sku": "SKU-1", "location": "A-01-01-1", "qty": 2},
                )
                assert receipt.json()["backorders_reserved"] == [order_id]
                badge = page.locator("#count-reserved text")
                await expect(badge).to_have_text("1", timeout=LIVE_TIMEOUT_MS)
                await expect(page.locator("#count-reserved")).to_be_visible()
                await expect(page.locator("#count-backordered")).to_be_hidden()
                await expect(page.locator("#state-reserved")).to_have_class(
                    "wcs-state wcs-stage-reservation wcs-active"
                )
                await expect(page.locator("#n-reserved")).to_have_text("1")
                latest = page.locator("#events li").first
                await expect(latest).to_contain_text(order_id)
                await expect(latest).to_contain_text("backordered → reserved")

                cancel = await client.post(f"/api/v1/orders/{order_id}/cancel")
                assert cancel.status_code == 200
                await expect(page.locator("#count-cancelled text")).to_have_text(
                    "1", timeout=LIVE_TIMEOUT_MS
                )
                await expect(page.locator("#count-reserved")).to_be_hidden()

                # a device reports a fault on the floor
                status = DeviceStatus(
                    state="fault", kind="printer", zone="pack", detail="paper out"
                )
                async with make_client(mqtt_endpoint) as pub:
                    await pub.publish(Topics(site).dev_status("pr1"), status.to_json(), qos=1)
                await page.locator('.tabs a[data-tab="overview"]').click()
                down = page.locator('#down li[data-device="pr1"]')
                await expect(down).to_contain_text("fault", timeout=LIVE_TIMEOUT_MS)
                await expect(down).to_contain_text("paper out")

                # an invalid order raises an alert at intake; it shows up on the page
                bad = await client.post("/api/v1/orders", json=order_body("web-2", [("NOPE", 1)]))
                assert bad.status_code == 422
                alert = page.locator('#alerts li[data-code="order_invalid"]')
                await expect(alert).to_contain_text(bad.json()["order_id"], timeout=LIVE_TIMEOUT_MS)
                await expect(alert).to_contain_text("Order needs customer service")
                await expect(page.locator("#alerts-warning")).to_have_text("1")

                assert await page.evaluate("window.__sameDocument") == "yes"  # no reload
                assert errors == []
                foreign = [u for u in requested if not u.startswith(api.base_url)]
                assert foreign == [], f"the page fetched from elsewhere: {foreign}"

                name = request.node.callspec.id if hasattr(request.node, "callspec") else "run"
                shot = artifacts / f"status-page-{name}.png"
                await page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000
            finally:
                await browser.close()
