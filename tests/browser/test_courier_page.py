"""The courier page on a phone-sized headless Chromium: a day's route planned by the
solver; start refused while a parcel is still at the dock (named); times from the
real start; one stop delivered with a photo and a signature drawn on the screen, one
failed with a reason and tried again the same day; the orders move accordingly (read
back through the API)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from playwright.async_api import async_playwright, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.conftest import CHROMIUM_ARGS
from tests.integration.api.conftest import ADMIN, Served, serve
from tests.integration.delivery.helpers import Tokens, auth, issue_tokens
from tests.integration.fleet.conftest import courier_body, own_fleet_parcels, plan, put_couriers
from wcs.settings import MqttEndpoint, Settings

PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000


@pytest.fixture
def courier_api(
    db_url: str, engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str, tmp_path: Path
) -> Iterator[Served]:
    settings = Settings(
        database_url=db_url,
        mqtt_url=f"mqtt://{mqtt_endpoint.host}:{mqtt_endpoint.port}",
        site=site,
        admin_token=ADMIN,
        embedded_broker=False,
        pod_dir=tmp_path / "pod",
        pod_max_bytes=256 * 1024,
    )
    yield from serve(settings)


def door_photo() -> bytes:
    """A small but real PNG: a parcel on a doormat."""
    image = Image.new("RGB", (160, 120), (182, 196, 210))
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 80, 140, 115), fill=(120, 70, 40))  # mat
    draw.rectangle((55, 40, 110, 90), fill=(196, 154, 96), outline=(90, 60, 30), width=2)
    draw.line((55, 55, 110, 55), fill=(230, 220, 180), width=4)  # tape
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.mark.browser
async def test_courier_delivers_one_stop_and_fails_another(
    courier_api: Served,
    engine: AsyncEngine,
    site: str,
    chromium_path: str,
    artifacts: Path,
    request: pytest.FixtureRequest,
) -> None:
    tokens: Tokens = await issue_tokens(engine)
    async with courier_api.client() as admin:
        shipments = await own_fleet_parcels(admin, engine, site, tokens, 3)
        await put_couriers(admin, tokens, {"courier-1": courier_body(name="Kim Weber")})
        day = await plan(admin, tokens)
        [route] = day["routes"]
        stops = route["stops"]
        assert {s["shipment_id"] for s in stops} == {s["id"] for s in shipments}
        first, second, third = stops
        late = next(s for s in shipments if s["id"] == third["shipment_id"])
        for shipment in shipments:  # loaded into the van at the dock, but one
            if shipment is late:
                continue
            r = await admin.post(
                f"/api/v1/shipments/{shipment['id']}/handover", headers=auth(tokens.dispatcher)
            )
            assert r.status_code == 200, r.text
        photo = door_photo()

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            try:
                context = await browser.new_context(
                    viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN"
                )
                page = await context.new_page()
                requested: list[str] = []
                errors: list[str] = []
                page.on("request", lambda req: requested.append(req.url))
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on(
                    "console", lambda msg: errors.append(msg.text) if msg.type == "error" else None
                )
                base = courier_api.base_url

                await page.goto(f"{base}/courier?token={tokens.courier}")
                assert page.url == f"{base}/courier"  # the token left the address bar
                # The phone asks for Chinese: the page answers in Chinese.
                await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
                await expect(page.locator("#start-route")).to_have_text("开始派送")
                await page.get_by_role("link", name="English").click()
                await expect(page.locator("html")).to_have_attribute("lang", "en")
                await expect(page.locator("#start-route")).to_have_text("Start route")

                # The day in driving order, with navigation and a way to call.
                items = page.locator("#stops > li")
                await expect(items).to_have_count(3)
                ids = [await items.nth(i).get_attribute("id") for i in range(3)]
                assert ids == [f"stop-{s['id']}" for s in stops]
                nav = await page.locator(f"#stop-{first['id']} a.nav").get_attribute("href")
                assert nav is not None and nav.startswith(
                    f"geo:{first['lat']:.6f},{first['lon']:.6f}?q="
                )
                assert await page.locator(f"#stop-{first['id']} a.call").get_attribute("href") == (
                    "tel:+49301234567"
                )
                await expect(page.locator("#summary")).to_contain_text("3 stops")

                # A parcel is still at the dock: the page names it and will not start.
                missing = page.locator("#missing")
                await expect(missing).to_contain_text("Stop 3")
                await expect(missing).to_contain_text(late["tracking_no"])
                await expect(page.locator("#start-route")).to_be_disabled()
                r = await admin.post(
                    f"/api/v1/shipments/{late['id']}/handover", headers=auth(tokens.dispatcher)
                )
                assert r.status_code == 200, r.text
                await page.reload()
                await expect(page.locator("#missing")).to_have_count(0)

                await page.locator("#start-route").tap()
                await expect(page.locator("#flash")).to_contain_text("out for delivery")
                await expect(page.locator("#started")).to_be_visible()
                # Times now run from the real start, not from the plan's departure.
                started = (await page.locator("#started").inner_text())[-5:]
                eta = (await page.locator(f"#stop-{first['id']} .eta").inner_text())[-5:]
                assert eta >= started, (eta, started)

                # Stop 1: delivered, photo taken at the door.
                stop1 = page.locator(f"#stop-{first['id']}")
                await stop1.locator("details.deliver summary").tap()
                await stop1.locator('input[name="receiver_name"]').fill("A. Lovelace")
                await stop1.locator('input[name="photo"]').set_input_files(
                    {"name": "door.png", "mimeType": "image/png", "buffer": photo}
                )
                # The receiver signs on the screen.
                pad = await stop1.locator(".signature canvas").bounding_box()
                assert pad is not None
                await page.mouse.move(pad["x"] + 20, pad["y"] + pad["height"] / 2)
                await page.mouse.down()
                for step in range(1, 12):
                    await page.mouse.move(
                        pad["x"] + 20 + step * 25, pad["y"] + 20 + (step % 3) * 30
                    )
                await page.mouse.up()
                await stop1.locator("details.deliver button[type=submit]").tap()
                await expect(page.locator("#flash")).to_have_text(
                    "Stop 1 delivered. Thank you!", timeout=TIMEOUT_MS
                )
                await expect(page.locator(f"#stop-{first['id']}")).to_have_class(
                    "stop done-delivered"
                )

                # Stop 2: nobody home.
                stop2 = page.locator(f"#stop-{second['id']}")
                await stop2.locator("details.fail summary").tap()
                await stop2.locator('select[name="reason"]').select_option("not_home")
                await stop2.locator('textarea[name="detail"]').fill("card left in the letterbox")
                await stop2.locator("details.fail button[type=submit]").tap()
                await expect(page.locator("#flash")).to_contain_text(
                    "Stop 2: failed attempt recorded", timeout=TIMEOUT_MS
                )
                stop2 = page.locator(f"#stop-{second['id']}")
                await expect(stop2).to_have_class("stop done-failed")
                await expect(stop2).to_contain_text("nobody home: card left in the letterbox")
                await expect(page.locator("#progress")).to_have_text("2 of 3 done")
                await expect(
                    page.locator(f"#stop-{third['id']} details.deliver summary")
                ).to_be_visible()
                await page.evaluate("window.scrollTo(0, 0)")
                await page.screenshot(path=str(artifacts / "courier-failed-en.png"), full_page=True)

                # Back at the door in the afternoon: the same stop, a second attempt.
                await stop2.locator("form.retry button").tap()
                await expect(page.locator("#flash")).to_contain_text(
                    "Stop 2 is open again", timeout=TIMEOUT_MS
                )
                stop2 = page.locator(f"#stop-{second['id']}")
                await expect(stop2.locator(".attempt")).to_have_text("attempt 2")
                await stop2.locator("details.deliver summary").tap()
                await stop2.locator('input[name="photo"]').set_input_files(
                    {"name": "door.png", "mimeType": "image/png", "buffer": photo}
                )
                await stop2.locator("details.deliver button[type=submit]").tap()
                await expect(page.locator("#flash")).to_have_text(
                    "Stop 2 delivered. Thank you!", timeout=TIMEOUT_MS
                )
                await page.get_by_role("link", name="中文").click()
                await expect(page.locator("#progress")).to_contain_text("已完成")
                await page.screenshot(path=str(artifacts / "courier-zh.png"), full_page=True)

                assert errors == []
                foreign = [u for u in requested if not u.startswith(base)]
                assert foreign == [], f"the page fetched from elsewhere: {foreign}"
                name = request.node.callspec.id if hasattr(request.node, "callspec") else "run"
                shot = artifacts / f"courier-page-{name}.png"
                await page.evaluate("window.scrollTo(0, 0)")  # the sticky header on top
                await page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000
                await context.close()
            finally:
                await browser.close()

        # What the taps did, read back through the API.
        async def state(order_id: str) -> str:
            return str((await admin.get(f"/api/v1/orders/{order_id}")).json()["state"])

        assert await state(first["order_id"]) == "delivered"
        assert await state(second["order_id"]) == "delivered"
        assert await state(third["order_id"]) == "out_for_delivery"
        pod = (await admin.get(f"/api/v1/shipments/{first['shipment_id']}/pod")).json()
        assert pod["receiver_name"] == "A. Lovelace" and pod["courier_id"] == "courier-1"
        assert pod["photo"]["sha256"] == hashlib.sha256(photo).hexdigest()
        assert pod["photo"]["media_type"] == "image/png"
        assert pod["signature"]["media_type"] == "image/png"  # drawn on the screen
        stored = courier_api.settings.pod_dir / pod["photo"]["path"]
        assert stored.read_bytes() == photo
        events = (await admin.get(f"/api/v1/orders/{second['order_id']}/events")).json()
        assert [e["to"] for e in events[-4:]] == [
            "out_for_delivery",
            "delivery_failed",
            "out_for_delivery",
            "delivered",
        ]
        assert "nobody home: card left in the letterbox" in (events[-3]["reason"] or "")
        routes = (await admin.get("/api/v1/fleet/routes", headers=auth(tokens.dispatcher))).json()
        outcomes = {s["id"]: s["outcome"] for s in routes["routes"][0]["stops"]}
        assert outcomes == {
            first["id"]: "delivered",
            second["id"]: "delivered",
            third["id"]: None,
        }
        assert routes["routes"][0]["locked"]  # a started route is kept by re-plans
