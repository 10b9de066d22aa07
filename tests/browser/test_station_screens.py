"""Station screens in Chromium on a tablet's viewport (1024x768): the QC bench counts the
scans as they arrive, takes the operator's verdicts with a photo, and says what to do
when a count goes wrong; the pack station shows the weight against the expected, a
refused parcel with what to do, and the printed label. A token opens its own station
only. Screenshots in English and Chinese.

The QC bench is real: a controller owns it, the bench's scanner publishes its scans
on the broker, and the verdict from the screen is applied by the bench's owner."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from playwright.async_api import Page, async_playwright, expect
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.runtime import Controller
from tests.browser.conftest import CHROMIUM_ARGS, FLOOR
from tests.integration.api.conftest import Served
from tests.integration.api.test_orders_api import order_body, seed
from tests.integration.controller.support import FakeFloor, fake_floor
from wcs.contract.topics import Topics
from wcs.domain.states import OrderState
from wcs.floor import load_floor
from wcs.persistence.orders import transition
from wcs.persistence.tables import packages, qc_checks, totes
from wcs.services.auth import issue_token
from wcs.timeutil import utcnow

TABLET = {"width": 1024, "height": 768}
LIVE_MS = 15_000


async def _picked_order(
    client: object, engine: AsyncEngine, topics: Topics, external: str, tote: str
) -> str:
    r = await client.post(  # type: ignore[attr-defined]
        "/api/v1/orders", json=order_body(external, [("SKU-1", 2), ("SKU-2", 1)])
    )
    assert r.status_code == 201, r.text
    order_id: str = r.json()["id"]
    async with engine.begin() as conn:
        for state in (OrderState.PICK_PLANNED, OrderState.PICKING, OrderState.PICKED):
            await transition(conn, topics, order_id, state, actor="test")
        await conn.execute(
            insert(totes).values(
                code=tote, order_id=order_id, state="qc", station="QC1", updated_at=utcnow()
            )
        )
    return order_id


async def _scan(bench: FakeFloor, code: str) -> None:
    """A scan at the QC bench, as its scanner's driver publishes it."""
    await bench.event("scan-qc", "scan", code=code, symbology=None)


def _photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (80, 60), (180, 120, 90)).save(out, format="JPEG")
    return out.getvalue()


async def _open(page: Page, url: str) -> None:
    await page.goto(url)
    await expect(page.locator("#banner")).not_to_be_empty(timeout=LIVE_MS)


@pytest.mark.browser
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_qc_and_pack_station_screens(
    floor_api: Served, engine: AsyncEngine, chromium_path: str, artifacts: Path, site: str
) -> None:
    api = floor_api
    topics = Topics(site)
    qc_token = await issue_token(engine, "bench-qc1", ["qc_operator"], subject="QC1")
    pack_token = await issue_token(engine, "pack-p1", ["pack_operator"], subject="P1")
    settings = api.settings.model_copy(update={"floor_file": None})
    async with (
        api.client() as client,
        fake_floor(api.settings.mqtt, topics) as bench,
        Controller(settings, load_floor(FLOOR).model_copy(update={"site": site}), engine=engine,
                   run_relay=False, housekeeping=False),
    ):  # fmt: skip
        await seed(client, {"SKU-1": [("A-01-01-1", 20)], "SKU-2": [("A-01-02-1", 20)]})
        first = await _picked_order(client, engine, topics, "qc-1", "T0001")
        await _scan(bench, "T0001")

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport=TABLET)
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                await _open(page, f"{api.base_url}/station/QC1?token={qc_token}&lang=en")
                assert page.url == f"{api.base_url}/station/QC1"
                banner = page.locator("#banner")
                await expect(banner).to_contain_text("0 of 3 counted")
                await expect(page.locator("#tote")).to_have_text("T0001")

                # Scans arrive: the counts move without a reload.
                await _scan(bench, "SKU-1")
                await expect(page.locator('#lines tr[data-sku="SKU-1"] td.n')).to_have_text(
                    "1 / 2", timeout=LIVE_MS
                )
                await _scan(bench, "SKU-1")
                await _scan(bench, "SKU-2")
                await expect(banner).to_contain_text("3 of 3 counted", timeout=LIVE_MS)
                await expect(page.locator('#lines tr[data-sku="SKU-2"]')).to_have_class("done")
                await page.screenshot(path=str(artifacts / "station-qc-counting-en.png"))

                # The verdicts with a photo: QC passes.
                await page.locator('input[name="packaging"][value="ok"]').check()
                await page.locator('input[name="appearance"][value="ok"]').check()
                await page.locator('input[name="photo"]').set_input_files(
                    files=[{"name": "tote.jpg", "mimeType": "image/jpeg", "buffer": _photo()}]
                )
                await page.locator('#verdict-form button[type="submit"]').click()
                await expect(banner).to_contain_text("QC passed", timeout=LIVE_MS)
                await expect(page.locator("#verdict")).to_be_hidden()
                async with engine.connect() as conn:
                    check = (
                        await conn.execute(select(qc_checks).where(qc_checks.c.order_id == first))
                    ).one()
                assert check.result == "passed" and check.packaging_ok and check.appearance_ok
                stored = api.settings.data_dir / check.photo
                assert stored.read_bytes() == _photo() and len(check.photo_sha256) == 64
                order = (await client.get(f"/api/v1/orders/{first}")).json()
                assert order["state"] == "qc_passed"

                # A wrong item: QC fails at once and the screen says what to do.
                await _picked_order(client, engine, topics, "qc-2", "T0002")
                await _scan(bench, "T0002")
                await _scan(bench, "SKU-1")
                await _scan(bench, "SKU-9")
                await expect(banner).to_contain_text("QC failed", timeout=LIVE_MS)
                await expect(banner).to_contain_text("exception lane")
                await expect(banner).to_have_class("banner bad")
                await page.screenshot(path=str(artifacts / "station-qc-failed-en.png"))
                await _open(page, f"{api.base_url}/station/QC1?lang=zh-CN")
                await expect(banner).to_contain_text("质检未通过", timeout=LIVE_MS)
                await expect(banner).to_contain_text("异常线")
                await page.screenshot(path=str(artifacts / "station-qc-failed-zh.png"))

                # The pack station: weight against the expected, then the label.
                third = await _picked_order(client, engine, topics, "pack-1", "T0003")
                async with engine.begin() as conn:
                    await conn.execute(
                        insert(packages).values(
                            id="pk-1",
                            order_id=third,
                            station="P1",
                            carton="S",
                            expected_g=1040.0,
                            state="weighing",
                            created_at=utcnow(),
                            updated_at=utcnow(),
                        )
                    )
                pack = await browser.new_page(viewport=TABLET)
                await _open(pack, f"{api.base_url}/station/P1?token={pack_token}&lang=en")
                pb = pack.locator("#banner")
                await expect(pb).to_contain_text("Put the parcel on the scale")
                await expect(pack.locator("#expected")).to_have_text("1040 g ± 52 g")
                await expect(pack.locator("#measured")).to_have_text("not weighed yet")
                async with engine.begin() as conn:
                    await conn.execute(
                        update(packages)
                        .where(packages.c.id == "pk-1")
                        .values(measured_g=1190.0, state="rejected", updated_at=utcnow())
                    )
                await expect(pb).to_contain_text("Weight off by 150 g", timeout=LIVE_MS)
                await expect(pack.locator("#measured")).to_have_class("bad")
                await pack.screenshot(path=str(artifacts / "station-pack-rejected-en.png"))
                async with engine.begin() as conn:
                    await conn.execute(
                        update(packages)
                        .where(packages.c.id == "pk-1")
                        .values(
                            measured_g=1052.0,
                            sscc="006141410000000017",
                            printer="prn-p1",
                            state="awaiting_scan",
                            updated_at=utcnow(),
                        )
                    )
                await expect(pb).to_contain_text("Label printed", timeout=LIVE_MS)
                await expect(pack.locator("#label")).to_have_text("006141410000000017 · prn-p1")
                await expect(pack.locator("#measured")).to_have_class("ok")
                await pack.screenshot(path=str(artifacts / "station-pack-label-en.png"))
                await _open(pack, f"{api.base_url}/station/P1?lang=zh-CN")
                await expect(pb).to_contain_text("面单已打印")
                await pack.screenshot(path=str(artifacts / "station-pack-label-zh.png"))

                # A station's token opens that station only.
                other = await browser.new_page(viewport=TABLET)
                await other.goto(f"{api.base_url}/station/P2?token={pack_token}")
                await expect(other.locator("main")).to_contain_text("opens station P1, not P2")
                await other.goto(f"{api.base_url}/station/QC1?token={pack_token}")
                await expect(other.locator("main")).to_contain_text("is not a qc_operator")
                assert errors == []
            finally:
                await browser.close()
