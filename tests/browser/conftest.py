"""Browser tests drive Debian's chromium (never a downloaded browser) against the real
API server of ``tests/integration/api``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.api.conftest import api  # noqa: F401 - the real uvicorn server fixture

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail(
            f"no chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium)"
        )
    return CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium"))


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
