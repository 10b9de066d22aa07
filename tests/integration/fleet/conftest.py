"""Own-fleet tests: the real API server on SQLite and PostgreSQL, parcels brought to the
dock the way the floor controller does it, and allocated to the own fleet over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.api.conftest import ADMIN, Served, serve
from tests.integration.delivery.helpers import (
    Tokens,
    allocate,
    auth,
    issue_tokens,
    order_body,
    packed_order,
    seed,
)
from wcs.settings import MqttEndpoint, Settings

DEPOT = {"lat": 52.4370, "lon": 13.3860}  # the warehouse, Berlin-Mariendorf
# Real Berlin addresses of the own fleet's area; the postal codes are in the centroid table.
ADDRESSES = (
    ("Invalidenstraße 117", "10115"),
    ("Kastanienallee 12", "10435"),
    ("Sonnenallee 50", "12047"),
    ("Müllerstraße 30", "13353"),
    ("Bergmannstraße 5", "10961"),
    ("Karl-Marx-Allee 90", "10243"),
    ("Schloßstraße 1", "12163"),
    ("Kantstraße 40", "10625"),
)
STOCK = {"SKU-F": [("F-01-01-1", 200)]}


def today() -> date:
    """The site's day (the tests' site runs on UTC, the default time zone)."""
    return datetime.now(UTC).date()


def courier_body(**change: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Courier",
        "phone": "+49 30 5550000",
        "capacity_kg": 500,
        "capacity_m3": 5,
        "shift_start": "06:00",
        "shift_end": "22:00",
        "depot": DEPOT,
    }
    return body | change


@pytest.fixture
def api(
    db_url: str, engine: AsyncEngine, mqtt_endpoint: MqttEndpoint, site: str, tmp_path: Path
) -> Iterator[Served]:
    """The API on SQLite and on PostgreSQL, proofs of delivery under the test's tmp dir."""
    settings = Settings(
        database_url=db_url,
        mqtt_url=f"mqtt://{mqtt_endpoint.host}:{mqtt_endpoint.port}",
        site=site,
        admin_token=ADMIN,
        embedded_broker=False,
        pod_dir=tmp_path / "pod",
        pod_max_bytes=256 * 1024,
    )
    yield from serve(settings)


@pytest.fixture
async def tokens(engine: AsyncEngine) -> Tokens:
    return await issue_tokens(engine)


async def own_fleet_parcels(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    site: str,
    tokens: Tokens,
    count: int,
    *,
    start: int = 0,
    qty: int = 1,
) -> list[dict[str, Any]]:
    """``count`` Berlin orders packed and allocated; returns their (own-fleet) shipments."""
    if start == 0:
        await seed(client, STOCK)
    found = []
    for n in range(start, start + count):
        line1, postal = ADDRESSES[n % len(ADDRESSES)]
        address = {"line1": line1, "city": "Berlin", "postal_code": postal, "country": "DE"}
        body = order_body(f"fleet-{site}-{n}", [("SKU-F", qty)], address=address)
        order = await packed_order(client, engine, site, body)
        shipment = await allocate(client, order["id"], tokens.dispatcher)
        assert shipment["own_fleet"] and shipment["carrier"] == "own_fleet", shipment
        found.append(shipment)
    return found


async def put_couriers(
    client: httpx.AsyncClient, tokens: Tokens, bodies: dict[str, dict[str, Any]]
) -> None:
    for courier_id, body in bodies.items():
        r = await client.put(
            f"/api/v1/fleet/couriers/{courier_id}", json=body, headers=auth(tokens.dispatcher)
        )
        assert r.status_code in (200, 201), r.text


async def plan(
    client: httpx.AsyncClient, tokens: Tokens, day: date | None = None
) -> dict[str, Any]:
    r = await client.post(
        "/api/v1/fleet/plan",
        json={"date": (day or today()).isoformat()},
        headers=auth(tokens.dispatcher),
    )
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def routed(day: dict[str, Any]) -> dict[str, str]:
    """shipment id -> courier id over the day's active routes."""
    return {s["shipment_id"]: r["courier_id"] for r in day["routes"] for s in r["stops"]}
