"""The service desk page in Chromium: customer service signs in, finds the order kept
in exception in the queue, a correction that still fails is refused with the reasons
and changes nothing, the right one moves the order to validated and reserved and
closes its alert; English and Chinese, axe-core without serious violations."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.pages import accessibility_problems, chromium, phone, shoot
from tests.integration.api.conftest import Served
from tests.integration.api.test_orders_api import order_body, seed
from tests.integration.delivery.helpers import issue_tokens

BAD_ADDRESS = {"line1": "1 Road", "city": "y", "postal_code": "!!", "country": "DE"}


@pytest.mark.browser
async def test_correcting_an_order_on_the_service_desk(
    api: Served,
    engine: AsyncEngine,
    chromium_path: str,
    artifacts: Path,
    request: pytest.FixtureRequest,
) -> None:
    db = "pg" if "postgres" in request.node.name else "sqlite"
    tokens = await issue_tokens(engine)
    async with api.client() as admin:
        await seed(admin, {"SKU-D": [("A-04-01-1", 10)]})
        r = await admin.post(
            "/api/v1/orders", json=order_body(f"desk-{db}", [("SKU-D", 1)], address=BAD_ADDRESS)
        )
        assert r.status_code == 422
        order_id = r.json()["order_id"]

        async with chromium(chromium_path) as browser:
            page = await phone(browser, "en-US")
            await page.set_viewport_size({"width": 1024, "height": 900})
            denied = await page.goto(f"{api.base_url}/desk")
            assert denied is not None and denied.status == 401
            await page.goto(f"{api.base_url}/desk?token={tokens.customer_service}")
            assert page.url == f"{api.base_url}/desk"  # the token left the address bar
            row = page.locator(f"#queue li[data-order='{order_id}']")
            await expect(row).to_contain_text("city 'y' is not a place name")
            assert await accessibility_problems(page) == []
            await shoot(page, artifacts, f"desk-queue-en-{db}")
            await row.get_by_role("link").click()
            await expect(page.locator("#order")).to_have_attribute("data-state", "exception")
            await expect(page.locator("#alerts [data-code=order_invalid]")).to_be_visible()

            # Still wrong: the reasons are shown, nothing changes.
            await page.locator("#f-city").fill("Berlin")
            await page.locator("#f-why").fill("customer called")
            await page.locator("#save").click()
            await expect(page.locator("#errors")).to_contain_text("postal code '!!'")
            assert (await admin.get(f"/api/v1/orders/{order_id}")).json()["state"] == "exception"
            assert await accessibility_problems(page) == []
            await shoot(page, artifacts, f"desk-refused-en-{db}")

            # Right: reserved, the alert closed, the history tells who and why.
            await page.locator("#f-postal_code").fill("10115")
            await page.locator("#save").click()
            await expect(page.locator("#flash")).to_have_text("Corrected: the order moved on.")
            await expect(page.locator("#order")).to_have_attribute("data-state", "reserved")
            await expect(page.locator("#alerts")).to_have_count(0)
            await shoot(page, artifacts, f"desk-corrected-en-{db}")
            timeline = (await admin.get(f"/api/v1/orders/{order_id}/timeline")).json()
            (entry,) = [e for e in timeline if e["kind"] == "correction"]
            assert entry["data"]["actor"] == "cs-agent"
            assert entry["data"]["reason"] == "customer called"
            assert entry["data"]["changes"]["postal_code"] == ["!!", "10115"]

            await page.get_by_role("link", name="中文").click()
            await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
            await expect(page.locator("#state")).to_have_text("已预留库存")
            await page.goto(f"{api.base_url}/desk")
            await expect(page.locator("#h-queue")).to_have_text("等待客服处理的订单")
            assert await accessibility_problems(page) == []
            await shoot(page, artifacts, f"desk-queue-zh-{db}")
            assert all("status of 4" in e for e in page.errors), page.errors  # type: ignore[attr-defined]
