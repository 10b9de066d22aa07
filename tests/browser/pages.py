"""Shared by the customer-page browser tests: a phone in Chromium, the axe-core check,
screenshots kept under test-artifacts/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright

from tests.browser.conftest import CHROMIUM_ARGS

PHONE = {"width": 390, "height": 844}
# axe-core impacts that fail a page; "moderate" and "minor" are reported, not fatal.
FATAL = ("serious", "critical")


@asynccontextmanager
async def chromium(executable: str) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def phone(browser: Browser, locale: str) -> Page:
    """A phone-sized page whose browser asks for ``locale``; script errors are kept on
    the page object (``page.errors``) for the test to assert."""
    context = await browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, locale=locale
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.errors = errors  # type: ignore[attr-defined]
    return page


async def accessibility_problems(page: Page) -> list[str]:
    """Serious or critical axe-core violations of the page as it is now."""
    results = await Axe().run(page)
    violations = results.response.get("violations", [])
    return [
        f"{v['id']} ({v['impact']}): {v['help']} - "
        + "; ".join(n["target"][0] if n.get("target") else "?" for n in v["nodes"][:3])
        for v in violations
        if v.get("impact") in FATAL
    ]


async def shoot(page: Page, artifacts: Path, name: str) -> Path:
    shot = artifacts / f"{name}.png"
    await page.screenshot(path=str(shot), full_page=True)
    return shot
