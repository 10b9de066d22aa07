"""Monitoring fixtures: a real API server with fast monitoring timers, and helpers
that move orders through the real state machine at chosen times."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.api.conftest import ADMIN, Served, serve
from wcs.contract.topics import Topics
from wcs.persistence.db import transaction
from wcs.persistence.orders import transition
from wcs.settings import MonitoringSettings, MqttEndpoint, Settings

# Happy path from reserved: each step is a legal transition of the state table.
TO_PACKED = ("pick_planned", "picking", "picked", "qc_passed", "packing", "packed")
TO_DELIVERED = (*TO_PACKED, "allocated", "shipped", "in_transit", "out_for_delivery", "delivered")

FAST = {"alert_interval_s": 0.2, "refresh_s": 0.25, "device_grace_s": 0.0}


def monitoring_settings(
    db_url: str, mqtt: MqttEndpoint, site: str, **monitoring: object
) -> Settings:
    return Settings(
        database_url=db_url,
        mqtt_url=f"mqtt://{mqtt.host}:{mqtt.port}",
        site=site,
        admin_token=ADMIN,
        embedded_broker=False,
        monitoring=MonitoringSettings(**{**FAST, **monitoring}),  # type: ignore[arg-type]
    )


@pytest.fixture
def mon_api(
    db_url: str, engine: object, mqtt_endpoint: MqttEndpoint, site: str
) -> Iterator[Served]:
    yield from serve(monitoring_settings(db_url, mqtt_endpoint, site))


@pytest.fixture
def public_api(
    db_url: str, engine: object, mqtt_endpoint: MqttEndpoint, site: str
) -> Iterator[Served]:
    yield from serve(monitoring_settings(db_url, mqtt_endpoint, site, status_public=True))


async def advance(
    engine: AsyncEngine,
    topics: Topics,
    order_id: str,
    steps: Sequence[str],
    at: datetime | Sequence[datetime],
) -> None:
    """Move an order along ``steps``, all at ``at`` or each at its own time."""
    times = [at] * len(steps) if isinstance(at, datetime) else list(at)
    for target, moment in zip(steps, times, strict=True):
        async with transaction(engine) as conn:
            await transition(conn, topics, order_id, target, actor="test", at=moment)
