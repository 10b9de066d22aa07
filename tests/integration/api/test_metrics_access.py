"""/metrics (order counts, open alerts) needs the scraper's token or a supervisor's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.api.conftest import ADMIN, Served, serve
from wcs.services.auth import issue_token
from wcs.settings import MqttEndpoint, Settings

SCRAPER = "scrape-7c1e9a4f2b8d6e3a0f5c9b1d7e2a4c8f"
PROBLEM = "application/problem+json"


@pytest.fixture
def served(
    db_url: str, engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str
) -> Iterator[Served]:
    yield from serve(
        Settings(
            database_url=db_url,
            mqtt_url=f"mqtt://{mqtt_endpoint.host}:{mqtt_endpoint.port}",
            site=site,
            admin_token=ADMIN,
            metrics_token=SCRAPER,
            embedded_broker=False,
        )
    )


async def test_metrics_need_the_scraper_or_a_supervisor(
    served: Served, engine: AsyncEngine
) -> None:
    supervisor = await issue_token(engine, "sup", ["supervisor"])
    desk = await issue_token(engine, "desk", ["customer_service"])
    for token, status in (
        (None, 401),
        ("not-a-token", 401),
        (desk, 403),
        (supervisor, 200),
        (SCRAPER, 200),
        (ADMIN, 200),
    ):
        async with served.client(token=token) as client:
            r = await client.get("/metrics")
        assert r.status_code == status, (token, r.text[:200])
        if status == 200:
            assert "wcs_api_errors_total" in r.text
        else:
            assert r.headers["content-type"] == PROBLEM
            assert "wcs_" not in r.text
