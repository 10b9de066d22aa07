"""Self-service by signed link in Chromium on a phone (390x844), Chinese (the order's
language) and English: the backorder choice with suggested substitutes (same
category, in stock, similar price) and confirming receipt with a rating. Used,
changed and expired links are refused with a page that says why; a link shows its
own order only. axe-core finds no serious violations."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.pages import accessibility_problems, chromium, phone, shoot
from tests.integration.api.conftest import Served
from tests.integration.api.test_orders_api import order_body
from tests.integration.delivery.helpers import (
    DELIVERY_PATH,
    FLOOR_PATH,
    drive,
    image_bytes,
    issue_tokens,
)
from wcs.links import LIFETIME, Links

BERLIN = {"line1": "Invalidenstr. 117", "city": "Berlin", "postal_code": "10115", "country": "DE"}
MUGS = {
    # sku: (price, stock)
    "MUG-RED": ("12.00", 0),  # out of stock: what the customer ordered
    "MUG-BLUE": ("13.00", 5),  # similar price, in stock: suggested
    "MUG-GOLD": ("40.00", 5),  # in stock but far dearer: not suggested
    "MUG-GREEN": ("12.50", 0),  # similar but out of stock too: not suggested
}


async def catalogue(client: httpx.AsyncClient) -> None:
    for n, (sku, (price, stock)) in enumerate(MUGS.items(), start=1):
        r = await client.put(
            f"/api/v1/skus/{sku}",
            json={
                "name": f"Mug {sku.split('-')[1].title()}",
                "weight_g": 350,
                "dims_mm": [120, 100, 100],
                "category": "mugs",
                "price": price,
                "currency": "EUR",
                "product": "mug",
                "variant": sku.split("-")[1].lower(),
            },
        )
        assert r.status_code in (200, 201), r.text
        code = f"M-0{n}-01-1"
        r = await client.put(
            f"/api/v1/locations/{code}", json={"zone": "pick", "aisle": n, "bay": 1, "level": 1}
        )
        assert r.status_code in (200, 201), r.text
        if stock:
            r = await client.post(
                "/api/v1/inventory/receipts", json={"sku": sku, "location": code, "qty": stock}
            )
            assert r.status_code == 201, r.text


async def new_order(client: httpx.AsyncClient, key: str, sku: str, **extra: object) -> dict:
    body = order_body(key, [(sku, 1)], address=BERLIN, **extra)
    r = await client.post("/api/v1/orders", json=body)
    assert r.status_code == 201, r.text
    return r.json()


@pytest.mark.browser
async def test_backorder_choice_and_receipt_by_signed_link(
    api: Served,
    engine: AsyncEngine,
    site: str,
    chromium_path: str,
    artifacts: Path,
    request: pytest.FixtureRequest,
) -> None:
    db = "pg" if "postgres" in request.node.name else "sqlite"
    links = Links(api.settings.link_secret)
    async with api.client() as admin, api.client(token=None) as anon:
        await catalogue(admin)
        waiting = await new_order(admin, f"bo-zh-{db}", "MUG-RED", lang="zh-CN")
        other = await new_order(admin, f"bo-other-{db}", "MUG-RED")
        assert waiting["state"] == other["state"] == "backordered"
        base = api.base_url
        choice_url = f"{base}/my/backorder/{links.make('backorder', waiting['id'])}"

        async with chromium(chromium_path) as browser:
            page = await phone(browser, "en-US")
            await page.goto(choice_url)
            await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
            await expect(page.locator("h1")).to_have_text("部分商品缺货")
            options = page.locator("#choice-form input[name=choice]")
            values = [
                await options.nth(i).get_attribute("value") for i in range(await options.count())
            ]
            assert values == ["wait", "substitute:MUG-RED:MUG-BLUE", "cancel"]
            await expect(page.locator("#choice-form")).to_contain_text("13.00")
            html = await page.content()
            assert other["external_id"] not in html and "Invalidenstr" not in html
            assert await accessibility_problems(page) == []
            await shoot(page, artifacts, f"self-backorder-zh-{db}")
            await page.get_by_role("link", name="English").click()
            await expect(page.locator("h1")).to_have_text("Some items are out of stock")
            assert await accessibility_problems(page) == []
            await shoot(page, artifacts, f"self-backorder-en-{db}")

            await page.get_by_label("Instead of Mug Red: Mug Blue").check()
            await page.locator("#send").tap()
            await expect(page.locator("#h-done")).to_have_text("Your choice is recorded")
            assert await accessibility_problems(page) == []
            await shoot(page, artifacts, f"self-backorder-done-en-{db}")
            order = (await admin.get(f"/api/v1/orders/{waiting['id']}")).json()
            assert order["state"] == "reserved"
            assert [ln["sku"] for ln in order["lines"]] == ["MUG-BLUE"]

            # Used once: the same link now says so, and changes nothing.
            again = await page.goto(choice_url)
            assert again is not None and again.status == 410
            await expect(page.locator("#refused")).to_have_attribute("data-why", "used")
            await expect(page.locator("#h-refused")).to_have_text("This link was already used")
            await shoot(page, artifacts, f"self-link-used-en-{db}")
            posted = await anon.post(choice_url, data={"choice": "cancel"})
            assert posted.status_code == 410
            assert (await admin.get(f"/api/v1/orders/{waiting['id']}")).json()[
                "state"
            ] == "reserved"

            # Changed: refused, in the reader's language.
            zh_page = await phone(browser, "zh-CN")
            token = choice_url.rsplit("/", 1)[1]
            forged = await zh_page.goto(f"{base}/my/backorder/{token[:-4]}AAAA")
            assert forged is not None and forged.status == 400
            await expect(zh_page.locator("#h-refused")).to_have_text("此链接无法使用")
            assert await accessibility_problems(zh_page) == []
            await shoot(zh_page, artifacts, f"self-link-tampered-zh-{db}")
            # A receipt link does not open the backorder page (one purpose per link).
            wrong = await zh_page.goto(f"{base}/my/backorder/{links.make('receipt', other['id'])}")
            assert wrong is not None and wrong.status == 400
            # Expired.
            life = LIFETIME["backorder"].total_seconds()
            old = Links(api.settings.link_secret, clock=lambda: time.time() - life - 60)
            expired = await zh_page.goto(
                f"{base}/my/backorder/{old.make('backorder', other['id'])}"
            )
            assert expired is not None and expired.status == 410
            await expect(zh_page.locator("#h-refused")).to_have_text("此链接已过期")
            await shoot(zh_page, artifacts, f"self-link-expired-zh-{db}")
            # The other customer's own link shows their order, nothing of the first one.
            theirs = await zh_page.goto(
                f"{base}/my/backorder/{links.make('backorder', other['id'])}"
            )
            assert theirs is not None and theirs.status == 200
            assert waiting["external_id"] not in await zh_page.content()

            # Confirm receipt and rate: a delivered order, its receipt link.
            delivered = await new_order(admin, f"rcpt-{db}", "MUG-BLUE", lang="zh-Hans")
            await drive(engine, site, delivered["id"], FLOOR_PATH + DELIVERY_PATH)
            receipt_url = f"{base}/my/receipt/{links.make('receipt', delivered['id'])}"
            await zh_page.goto(receipt_url)
            await expect(zh_page.locator("h1")).to_have_text("商品都收到了吗？")
            assert await accessibility_problems(zh_page) == []
            await shoot(zh_page, artifacts, f"self-receipt-zh-{db}")
            await zh_page.get_by_role("link", name="English").click()
            await expect(zh_page.locator("h1")).to_have_text("Did everything arrive?")
            await shoot(zh_page, artifacts, f"self-receipt-en-{db}")
            await zh_page.get_by_label("4 stars").check()
            await zh_page.locator("#comment").fill("Well packed.")
            await zh_page.locator("#confirm").tap()
            await expect(zh_page.locator("#h-done")).to_have_text("Thank you!")
            assert await accessibility_problems(zh_page) == []
            closed = (await admin.get(f"/api/v1/orders/{delivered['id']}")).json()
            assert closed["state"] == "closed"
            timeline = (await admin.get(f"/api/v1/orders/{delivered['id']}/timeline")).json()
            (sign_off,) = [e for e in timeline if e["kind"] == "sign_off"]
            assert sign_off["data"]["rating"] == 4
            again = await zh_page.goto(receipt_url)
            assert again is not None and again.status == 410
            for p in (page, zh_page):
                assert all("status of 4" in e for e in p.errors), p.errors  # type: ignore[attr-defined]


@pytest.mark.browser
async def test_return_with_photo_and_label_pdf_by_signed_link(
    api: Served,
    engine: AsyncEngine,
    site: str,
    chromium_path: str,
    artifacts: Path,
    request: pytest.FixtureRequest,
) -> None:
    db = "pg" if "postgres" in request.node.name else "sqlite"
    links = Links(api.settings.link_secret)
    async with api.client() as admin, api.client(token=None) as anon:
        await catalogue(admin)
        order = await new_order(admin, f"ret-{db}", "MUG-BLUE", lang="zh-CN")
        await drive(engine, site, order["id"], FLOOR_PATH + DELIVERY_PATH)
        return_url = f"{api.base_url}/my/return/{links.make('return', order['id'])}"
        async with chromium(chromium_path) as browser:
            page = await phone(browser, "en-US")
            await page.goto(return_url)
            await expect(page.locator("h1")).to_have_text("退货")
            assert await accessibility_problems(page) == []
            await shoot(page, artifacts, f"self-return-zh-{db}")
            await page.get_by_role("link", name="English").click()
            await expect(page.locator("h1")).to_have_text("Return items")
            assert await accessibility_problems(page) == []
            await shoot(page, artifacts, f"self-return-en-{db}")
            await page.locator("#send").tap()  # nothing chosen
            await expect(page.locator("#error")).to_have_text("Choose at least one item.")
            await page.locator("#qty-1").fill("1")
            await page.locator("#reason").select_option("wrong_item")
            await page.locator("#detail").fill("It is green, not blue.")
            await page.locator("#photos").set_input_files(
                {"name": "mug.png", "mimeType": "image/png", "buffer": image_bytes("PNG", (80, 60))}
            )
            await page.locator("#send").tap()
            await expect(page.locator("#h-done")).to_have_text("Your return is registered")
            rma = await page.locator("#done").get_attribute("data-rma")
            assert rma
            assert await accessibility_problems(page) == []
            await shoot(page, artifacts, f"self-return-done-en-{db}")
            href = await page.locator("#label").get_attribute("href")
            resolution = await page.locator("#resolution").get_attribute("href")
            assert resolution is not None
            assert href is not None and href.startswith("/my/label/")
            pdf = await anon.get(href)
            assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
            assert pdf.content.startswith(b"%PDF") and len(pdf.content) > 2000
            (artifacts / f"self-return-label-{db}.pdf").write_bytes(pdf.content)
            ret = (await admin.get(f"/api/v1/returns/{rma}")).json()
            assert [(ln["line_no"], ln["qty"]) for ln in ret["lines"]] == [(1, 1)]
            assert "Wrong item: It is green, not blue. (photos: " in ret["lines"][0]["reason"]
            stored = list((api.settings.pod_dir / "returns" / rma).glob("photo-*.png"))
            assert len(stored) == 1
            # The label link is this return's only: another order's return is not reachable.
            forged = await anon.get(f"/my/label/{links.make('label', order['id'], 'rma_other')}")
            assert forged.status_code == 400
            again = await page.goto(return_url)
            assert again is not None and again.status == 410

            # Refund or exchange: another variant of the same product, in stock.
            await page.goto(f"{api.base_url}{resolution}")
            await expect(page.locator("h1")).to_have_text("Refund or exchange?")
            choices = page.locator("#resolution-form input[name=choice]")
            values = [
                await choices.nth(i).get_attribute("value") for i in range(await choices.count())
            ]
            # Mug Gold is in stock; the red and green mugs are not: not offered.
            assert values == ["refund", "exchange:1:MUG-BLUE", "exchange:1:MUG-GOLD"]
            assert await accessibility_problems(page) == []
            await shoot(page, artifacts, f"self-resolution-en-{db}")
            await page.get_by_label("Exchange for: Mug Gold").check()
            await page.locator("#send").tap()
            await expect(page.locator("#h-done")).to_have_text("Your choice is recorded")
            chosen = (await admin.get(f"/api/v1/returns/{rma}")).json()
            assert chosen["customer_choice"] == "exchange"
            assert chosen["exchange_skus"] == {"1": "MUG-GOLD"}
            # The desk receives, inspects and resolves: the replacement is the variant.
            tokens = await issue_tokens(engine)
            async with api.client(token=tokens.after_sales) as desk:
                assert (await desk.post(f"/api/v1/returns/{rma}/received")).status_code == 200
                r = await desk.post(f"/api/v1/returns/{rma}/inspection", json={"grade": "scrap"})
                assert r.status_code == 200, r.text
                r = await desk.post(
                    f"/api/v1/returns/{rma}/resolve", json={"resolution": "exchange"}
                )
                assert r.status_code == 200, r.text
                replacement = r.json()["replacement_order_id"]
            lines = (await admin.get(f"/api/v1/orders/{replacement}")).json()["lines"]
            assert [(ln["sku"], ln["qty"]) for ln in lines] == [("MUG-GOLD", 1)]
            await page.goto(f"{api.base_url}{resolution}")
            await expect(page.locator("#refused")).to_have_attribute("data-why", "used")
