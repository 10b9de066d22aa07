"""The customer's tracking page in Chromium on a phone (390x844), in Chinese (the
order's language) and English (the switch): stages, carrier updates, the promise,
what happens after a delay, the proof photo behind a link that expires, a friendly
page for an unknown number, no personal data, axe-core without serious violations.
JSON stays for clients that ask for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.pages import accessibility_problems, chromium, phone, shoot
from tests.integration.api.conftest import Served
from tests.integration.delivery.conftest import (  # noqa: F401 - fixtures
    api,
    fake_carrier,
    fake_carrier_process,
    tokens,
)
from tests.integration.delivery.helpers import (
    Tokens,
    allocate,
    auth,
    image_bytes,
    order_body,
    packed_order,
    seed,
)

BERLIN = {"line1": "Invalidenstr. 117", "city": "Berlin", "postal_code": "10115", "country": "DE"}
PRIVATE = ("Li Wei", "Invalidenstr", "li.wei@example.cn", "1234567", "+49")


async def handed_over(
    client: httpx.AsyncClient, engine: AsyncEngine, site: str, staff: Tokens, key: str
) -> dict[str, Any]:
    """A zh-CN customer in Berlin; the parcel handed to the courier."""
    body = order_body(
        key,
        [("SKU-T", 1)],
        address=BERLIN,
        customer={"name": "Li Wei", "phone": "+49 30 1234567", "email": "li.wei@example.cn"},
    )
    body["lang"] = "zh-CN"
    order = await packed_order(client, engine, site, body)
    shipment = await allocate(client, order["id"], staff.dispatcher)
    sid = shipment["id"]
    dispatcher = auth(staff.dispatcher)
    r = await client.put(
        f"/api/v1/shipments/{sid}/courier", json={"courier_id": "courier-1"}, headers=dispatcher
    )
    assert r.status_code == 200, r.text
    assert (await client.post(f"/api/v1/shipments/{sid}/handover", headers=dispatcher)).is_success
    return shipment


async def courier_says(
    client: httpx.AsyncClient, staff: Tokens, shipment: dict[str, Any], status: str
) -> None:
    r = await client.post(
        f"/api/v1/shipments/{shipment['id']}/courier-events",
        json={"status": status, "location": "Berlin depot"},
        headers=auth(staff.courier),
    )
    assert r.status_code == 200, r.text


@pytest.mark.browser
async def test_tracking_page_on_a_phone(
    api: Served,  # noqa: F811
    engine: AsyncEngine,
    site: str,
    tokens: Tokens,  # noqa: F811
    chromium_path: str,
    artifacts: Path,
    request: pytest.FixtureRequest,
) -> None:
    db = "pg" if "postgres" in request.node.name else "sqlite"
    async with api.client() as admin, api.client(token=None) as anon:
        await seed(admin, {"SKU-T": [("A-01-02-1", 10)]})
        shipment = await handed_over(admin, engine, site, tokens, f"track-{db}")
        number = shipment["tracking_no"]
        url = f"{api.base_url}/api/v1/track/{number}"
        # Clients that ask for JSON (or anything) still get JSON.
        as_json = await anon.get(f"/api/v1/track/{number}", headers={"Accept": "application/json"})
        assert as_json.headers["content-type"] == "application/json"
        assert as_json.json()["tracking_no"] == number
        assert (await anon.get(f"/api/v1/track/{number}")).json()["status"] == "shipped"
        await courier_says(admin, tokens, shipment, "out_for_delivery")
        await courier_says(admin, tokens, shipment, "delayed")

        async with chromium(chromium_path) as browser:
            page = await phone(browser, "en-US")
            # The order's language wins over the browser's: Chinese.
            await page.goto(url)
            await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
            await expect(page.locator("#h-status")).to_have_text("延误")
            await expect(page.locator("#next")).to_contain_text("承运商报告了延误")
            # The furthest stage reached stays current while the delay lasts.
            await expect(page.locator("#stages li.done")).to_have_count(6)
            await expect(page.locator("#stages li.current")).to_have_attribute(
                "data-stage", "out_for_delivery"
            )
            await expect(page.locator("#events li").first).to_contain_text("延误")
            # booked, handed over, out for delivery, late
            await expect(page.locator("#events li")).to_have_count(4)
            # What a courier typed is not the public's to read.
            await expect(page.locator("#events")).not_to_contain_text("Berlin depot")
            html = await page.content()
            for private in PRIVATE:
                assert private not in html, private
            assert await accessibility_problems(page) == []
            await shoot(page, artifacts, f"track-delayed-zh-{db}")

            # The switch: English, remembered.
            await page.get_by_role("link", name="English").click()
            await expect(page.locator("html")).to_have_attribute("lang", "en")
            assert page.url == url
            await expect(page.locator("#h-status")).to_have_text("Delayed")
            await expect(page.locator("#next")).to_contain_text("You do not need to do anything")
            assert await accessibility_problems(page) == []
            await shoot(page, artifacts, f"track-delayed-en-{db}")

            # Back out for delivery, then delivered with a photo at the door.
            await courier_says(admin, tokens, shipment, "out_for_delivery")
            r = await admin.post(
                f"/api/v1/shipments/{shipment['id']}/pod",
                data={"receiver_name": "Li Wei"},
                files={"photo": ("door.png", image_bytes("PNG", (320, 240), 3), "image/png")},
                headers=auth(tokens.courier),
            )
            assert r.status_code in (200, 201), r.text
            await page.reload()
            await expect(page.locator("#h-status")).to_have_text("Delivered")
            await expect(page.locator("#promise")).to_contain_text("Delivered")
            photo = page.locator("#proof-photo")
            await expect(photo).to_be_visible()
            assert await photo.evaluate("img => img.complete && img.naturalWidth") == 320
            assert "Li Wei" not in await page.content()  # the receiver's name stays private
            assert await accessibility_problems(page) == []
            await shoot(page, artifacts, f"track-delivered-en-{db}")
            source = await photo.get_attribute("src")
            assert source is not None
            # The photo's link is for this parcel only and cannot be changed.
            forged = source[:-3] + ("AAA" if not source.endswith("AAA") else "BBB")
            assert (await anon.get(forged)).status_code == 404
            assert (await anon.get(source)).status_code == 200
            await page.get_by_role("link", name="中文").click()
            await expect(page.locator("#h-status")).to_have_text("已送达")
            assert await accessibility_problems(page) == []
            await shoot(page, artifacts, f"track-delivered-zh-{db}")

            # An unknown number: a page, in the reader's language, not a JSON 404.
            zh_phone = await phone(browser, "zh-CN")
            answer = await zh_phone.goto(f"{api.base_url}/api/v1/track/NOPE-0000")
            assert answer is not None and answer.status == 404
            await expect(zh_phone.locator("#h-unknown")).to_have_text("我们找不到这个包裹")
            assert await accessibility_problems(zh_phone) == []
            await shoot(zh_phone, artifacts, f"track-unknown-zh-{db}")
            en_phone = await phone(browser, "en-GB")
            await en_phone.goto(f"{api.base_url}/api/v1/track/NOPE-0000")
            await expect(en_phone.locator("#h-unknown")).to_have_text("We cannot find this parcel")
            await shoot(en_phone, artifacts, f"track-unknown-en-{db}")
            assert page.errors == []  # type: ignore[attr-defined]
            for p in (zh_phone, en_phone):  # only the page's own 404 is reported
                assert all("404" in e for e in p.errors)  # type: ignore[attr-defined]
        unknown_json = await anon.get("/api/v1/track/NOPE-0000")
        assert unknown_json.status_code == 404
        assert unknown_json.headers["content-type"] == "application/problem+json"
