"""``/docs`` and ``/redoc`` render in Chromium with every request kept on this server
(no CDN, no web fonts): a laptop without internet gets a working API reference."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Route, async_playwright, expect

from tests.browser.conftest import CHROMIUM_ARGS
from tests.integration.api.conftest import Served


@pytest.mark.browser
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_docs_and_redoc_render_offline(
    api: Served, chromium_path: str, artifacts: Path
) -> None:
    outside: list[str] = []

    async def only_local(route: Route) -> None:
        if route.request.url.startswith(api.base_url):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900})
            await page.route("**/*", only_local)
            await page.goto(f"{api.base_url}/docs")
            await expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=20_000)
            await expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/orders")
            await page.screenshot(path=str(artifacts / "docs-swagger.png"))

            await page.goto(f"{api.base_url}/redoc")
            await expect(page.locator("redoc .api-content")).to_contain_text(
                "/api/v1/orders", timeout=20_000
            )
            await page.screenshot(path=str(artifacts / "docs-redoc.png"))
        finally:
            await browser.close()
    assert outside == []
