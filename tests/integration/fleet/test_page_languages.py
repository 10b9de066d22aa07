"""The status page in both languages over real HTTP: negotiation, the switch and its
cookie, state names in the tables and the flow diagram, the script's own texts."""

from __future__ import annotations

import json
import re

import httpx

from tests.integration.api.conftest import ADMIN, Served
from tests.integration.delivery.helpers import order_body, seed


async def test_status_page_in_chinese_and_english(api: Served) -> None:
    async with api.client() as admin:
        await seed(admin, {"SKU-L": [("L-01-01-1", 5)]})
        r = await admin.post("/api/v1/orders", json=order_body("lang-1", [("SKU-L", 1)]))
        assert r.status_code == 201 and r.json()["state"] == "reserved"

    async with httpx.AsyncClient(base_url=api.base_url) as browser:
        denied = await browser.get(
            "/status", headers={"Accept": "text/html", "Accept-Language": "zh-CN,zh;q=0.9"}
        )
        assert denied.status_code == 401 and "仓库状态" in denied.text
        await browser.get("/status", params={"token": ADMIN})

        zh = await browser.get("/status", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
        assert zh.status_code == 200
        html = zh.text
        assert '<html lang="zh-CN">' in html and "<h1>仓库状态" in html
        assert "各状态订单" in html and ">已预留库存</th>" in html  # the states table
        assert re.search(r'<text class="wcs-name"[^>]*>已预留库存</text>', html)  # the diagram
        assert 'id="state-reserved"' in html and 'id="n-reserved"' in html  # ids unchanged
        data = re.search(r'<script type="application/json" id="board-data">(.*?)</script>', html)
        assert data is not None
        texts = json.loads(data.group(1))["i18n"]
        assert texts["live"] == "实时" and texts["state"]["out_for_delivery"] == "派送中"

        en = await browser.get("/status", headers={"Accept-Language": "en-US,en;q=0.9"})
        assert '<html lang="en">' in en.text and "Orders by state" in en.text
        assert ">reserved</th>" in en.text

        # The switch wins over the browser and is remembered.
        switch = await browser.get("/status", params={"lang": "zh-CN"})
        assert switch.status_code == 303 and switch.headers["location"] == "/status"
        assert "wcs_lang=zh-CN" in switch.headers["set-cookie"]
        again = await browser.get("/status", headers={"Accept-Language": "en"})
        assert '<html lang="zh-CN">' in again.text
        await browser.get("/status", params={"lang": "en"})
        assert '<html lang="en">' in (await browser.get("/status")).text
        # An unknown language is ignored, not an error.
        odd = await browser.get("/status", params={"lang": "xx"})
        assert odd.status_code == 200 and '<html lang="en">' in odd.text
