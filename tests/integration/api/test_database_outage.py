"""A database that is away or restarting is a 503 with Retry-After, whatever SQLSTATE
it answers with - never a 500. On a private PostgreSQL server of the test's own: it is
stopped, restarted, killed and run as a standby without touching anyone else's."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.api.conftest import ADMIN, Served, serve
from wcs.persistence.migrate import upgrade
from wcs.persistence.private_postgres import PrivatePostgres
from wcs.settings import MqttEndpoint, Settings

pytestmark = pytest.mark.postgres

PROBLEM = "application/problem+json"
READS = ("/api/v1/orders", "/api/v1/alerts", "/api/v1/shipments", "/api/v1/kpis")


def _settings(url: str, mqtt: MqttEndpoint, site: str) -> Settings:
    return Settings(
        database_url=url,
        mqtt_url=f"mqtt://{mqtt.host}:{mqtt.port}",
        site=site,
        admin_token=ADMIN,
        embedded_broker=False,
    )


def _assert_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, (r.request.url, r.status_code, r.text[:300])
    assert r.headers["content-type"] == PROBLEM
    assert int(r.headers["retry-after"]) > 0
    assert r.json()["status"] == 503


@pytest.fixture
def standby_api(mqtt_endpoint: MqttEndpoint, site: str) -> Iterator[Served]:
    with PrivatePostgres(standby=True) as standby:
        yield from serve(_settings(standby.url, mqtt_endpoint, site))


async def test_cannot_connect_now_57p03_is_503(standby_api: Served) -> None:
    """A server in recovery answers every connection with SQLSTATE 57P03."""
    async with standby_api.client() as client:
        for path in READS:
            _assert_unavailable(await client.get(path))
        r = await client.put(
            "/api/v1/skus/SKU-1", json={"name": "n", "weight_g": 1, "dims_mm": [1, 1, 1]}
        )
        _assert_unavailable(r)
        assert (await client.get("/healthz")).status_code == 200
        # The scrape still answers with the process's own figures.
        scraped = await client.get("/metrics")
        assert scraped.status_code == 200 and "wcs_api_request_seconds" in scraped.text
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.headers["content-type"] == PROBLEM


@pytest.fixture(scope="module")
def private() -> Iterator[PrivatePostgres]:
    with PrivatePostgres() as pg:
        upgrade(pg.url)
        yield pg


@pytest.fixture
def private_api(
    private: PrivatePostgres, mqtt_endpoint: MqttEndpoint, site: str
) -> Iterator[Served]:
    yield from serve(_settings(private.url, mqtt_endpoint, site))


async def _poll(client: httpx.AsyncClient, until: asyncio.Event, seen: Counter[int]) -> None:
    while not until.is_set():
        for path in READS:
            r = await client.get(path)
            seen[r.status_code] += 1
            if r.status_code != 200:
                _assert_unavailable(r)
        await asyncio.sleep(0.01)


async def _all_served(client: httpx.AsyncClient) -> bool:
    return all([(await client.get(path)).status_code == 200 for path in READS])


@pytest.mark.parametrize("how", ["restart", "kill", "stopped"])
async def test_a_restart_or_a_crash_is_503_then_served_again(
    private: PrivatePostgres, private_api: Served, how: str
) -> None:
    async with private_api.client() as client:
        for path in READS:
            assert (await client.get(path)).status_code == 200
        seen: Counter[int] = Counter()
        done = asyncio.Event()
        poller = asyncio.create_task(_poll(client, done, seen), name="test-outage-poll")
        await asyncio.sleep(0.3)
        if how == "restart":
            await asyncio.to_thread(private.restart)
        elif how == "kill":
            await asyncio.to_thread(private.kill)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(private.start)
        else:
            await asyncio.to_thread(private.stop)
            await asyncio.sleep(1.0)
            for path in READS:
                _assert_unavailable(await client.get(path))
            await asyncio.to_thread(private.start)
        try:
            # Back: every read is served again once the pool has replaced its connections.
            async with asyncio.timeout(30):
                while not await _all_served(client):
                    await asyncio.sleep(0.1)
        finally:
            done.set()
            await poller
    assert set(seen) <= {200, 503}, seen
    assert seen[200] > 0
