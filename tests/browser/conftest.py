"""Browser tests drive Debian's chromium (never a downloaded browser) against the real
API server of ``tests/integration/api``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.api.conftest import (
    ADMIN,
    Served,
    api,  # noqa: F401 - the real uvicorn server fixture
    serve,
)
from wcs.settings import ControllerSettings, MonitoringSettings, MqttEndpoint, Settings

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
FLOOR = Path(__file__).resolve().parents[2] / "floors" / "sample.yaml"


@pytest.fixture
def floor_api(
    db_url: str, engine: object, mqtt_endpoint: MqttEndpoint, site: str, tmp_path: Path
) -> Iterator[Served]:
    """The API of the sample floor: stations known, alerts evaluated every half second,
    QC waiting for the operator's verdict, files under a data directory of its own."""
    settings = Settings(
        database_url=db_url,
        mqtt_url=f"mqtt://{mqtt_endpoint.host}:{mqtt_endpoint.port}",
        site=site,
        admin_token=ADMIN,
        embedded_broker=False,
        floor_file=FLOOR,
        data_dir=tmp_path / "data",
        monitoring=MonitoringSettings(alert_interval_s=0.5, device_grace_s=0, refresh_s=1.0),
        controller=ControllerSettings(qc_require_operator=True),
    )
    yield from serve(settings)


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
