"""Delivery tests: the real API server (SQLite and PostgreSQL) wired to the fake carrier,
which runs as its own process and pushes signed webhooks back to the API over HTTP."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.api.conftest import ADMIN, Served, serve
from tests.integration.carriers.conftest import FakeCarrier, start_process, stop
from tests.integration.delivery.helpers import WEBHOOK_SECRET, Tokens, issue_tokens
from tests.ports import free_port
from wcs.settings import MqttEndpoint, Settings


@pytest.fixture(scope="session")
def fake_carrier_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeCarrier]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("fake-carrier") / "carrier.log"
    args = [
        sys.executable,
        "-m",
        "wcs.carriers.fake_server",
        "--port",
        str(port),
        "--seed",
        "11",
        "--webhook-secret",
        WEBHOOK_SECRET,
    ]
    proc = start_process(args, url, log)
    try:
        yield FakeCarrier(url)
    finally:
        stop(proc)


@pytest.fixture
def fake_carrier(fake_carrier_process: FakeCarrier) -> Iterator[FakeCarrier]:
    """The shared carrier process with no faults and no webhook target for this test."""
    fake_carrier_process.faults(fail_next=0, delay_next=0, delay_s=0, fail_rate=0)
    fake_carrier_process.set_webhook(None)
    yield fake_carrier_process
    fake_carrier_process.faults(fail_next=0, delay_next=0, delay_s=0, fail_rate=0)
    fake_carrier_process.set_webhook(None)


def _settings(db_url: str, mqtt: MqttEndpoint, site: str, carrier: str, pod_dir: Path) -> Settings:
    return Settings(
        database_url=db_url,
        mqtt_url=f"mqtt://{mqtt.host}:{mqtt.port}",
        site=site,
        admin_token=ADMIN,
        embedded_broker=False,
        carrier_url=carrier,
        carrier_webhook_secret=WEBHOOK_SECRET,
        pod_dir=pod_dir,
        pod_max_bytes=256 * 1024,
    )


@pytest.fixture
def api(
    db_url: str,
    engine: AsyncEngine,
    mqtt_endpoint: MqttEndpoint,
    site: str,
    fake_carrier: FakeCarrier,
    tmp_path: Path,
) -> Iterator[Served]:
    """The API on SQLite and on PostgreSQL; the carrier's webhooks point at it."""
    settings = _settings(db_url, mqtt_endpoint, site, fake_carrier.url, tmp_path / "pod")
    for served in serve(settings):
        fake_carrier.set_webhook(
            f"{served.base_url}/api/v1/shipments/{{shipment_id}}/tracking-events"
        )
        yield served


@pytest.fixture
async def tokens(engine: AsyncEngine) -> Tokens:
    return await issue_tokens(engine)


@pytest.fixture
async def carrier_http(fake_carrier: FakeCarrier) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake_carrier.url, timeout=30) as client:
        yield client
