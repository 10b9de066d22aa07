"""``/healthz`` says the process serves; ``/readyz`` follows the broker and the database."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import pytest

from tests.integration.api.conftest import ADMIN, serve
from tests.ports import free_port
from wcs.mqtt.mosquitto import PrivateMosquitto
from wcs.settings import Settings

pytestmark = pytest.mark.broker

served = contextlib.contextmanager(serve)


async def probe(client: httpx.AsyncClient) -> tuple[int, int, dict[str, object]]:
    health = await client.get("/healthz")
    ready = await client.get("/readyz")
    if ready.status_code != 200:
        assert ready.headers["content-type"] == "application/problem+json"
        assert {"type", "title", "status", "detail"} <= set(ready.json())
    return health.status_code, ready.status_code, ready.json()["checks"]


async def wait_ready(
    client: httpx.AsyncClient, status: int, within: float = 10.0
) -> dict[str, object]:
    async with asyncio.timeout(within):
        while True:
            _, ready, checks = await probe(client)
            if ready == status:
                return checks
            await asyncio.sleep(0.1)


async def test_readiness_follows_the_broker(
    broker: PrivateMosquitto, sqlite_url: str, site: str
) -> None:
    settings = Settings(
        database_url=sqlite_url, mqtt_url=broker.url, site=site, admin_token=ADMIN,
        embedded_broker=False,
    )  # fmt: skip
    with served(settings) as api:
        async with httpx.AsyncClient(base_url=api.base_url, timeout=10) as client:
            health, ready, checks = await probe(client)
            assert (health, ready) == (200, 200)
            assert checks["database"] == checks["mqtt"] == "ok"

            await asyncio.to_thread(broker.stop)
            checks = await wait_ready(client, 503)
            assert checks == {**checks, "database": "ok", "mqtt": "unreachable"}
            assert (await client.get("/healthz")).status_code == 200  # alive, just not ready

            await asyncio.to_thread(broker.start)
            checks = await wait_ready(client, 200)
            assert checks["mqtt"] == "ok"


async def test_readiness_with_the_database_away(broker: PrivateMosquitto, site: str) -> None:
    closed = free_port()  # nothing listens here
    settings = Settings(
        database_url=f"postgresql+asyncpg://wcs@127.0.0.1:{closed}/wcs",
        mqtt_url=broker.url,
        site=site,
        admin_token=ADMIN,
        embedded_broker=False,
    )
    with served(settings) as api:
        async with httpx.AsyncClient(base_url=api.base_url, timeout=10) as client:
            started = time.monotonic()
            health, ready, checks = await probe(client)
            assert time.monotonic() - started < 3.0  # refused at once, not hung
            assert (health, ready) == (200, 503)
            assert str(checks["database"]).startswith("unreachable")
            assert checks["mqtt"] == "ok"
            # An API call that needs the database is a 503 problem, not a hang or a 500.
            orders = await client.get(
                "/api/v1/orders", headers={"Authorization": f"Bearer {ADMIN}"}
            )
            assert orders.status_code == 503, orders.text
            assert orders.headers["content-type"] == "application/problem+json"
