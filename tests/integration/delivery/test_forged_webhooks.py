"""Under production settings nobody can sign a carrier webhook with the published
development secret: the API refuses to start with it, and once started with a real
secret, a request signed with the published one is refused and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.api.conftest import Served, serve
from tests.integration.carriers.conftest import FakeCarrier
from tests.integration.delivery.conftest import _settings
from tests.integration.delivery.helpers import (
    PROBLEM,
    Tokens,
    auth,
    carrier_event,
    event_count,
    seed,
    signed,
)
from tests.integration.delivery.test_tracking import STOCK, shipped
from wcs.settings import DEV_WEBHOOK_SECRET, MqttEndpoint, Settings

PROD_ADMIN = "prod-admin-5b0e9d2c7a4f1e8b3d6c0a9f2e7b4d1c"
PROD_SECRET = "prod-webhook-3f8a1c6e9b2d7f4a0c5e8b1d6a3f9c2e"
PROD_LINKS = "prod-links-8d2f6b0a4e9c1d7f3b5a8e2c6d0f4b9a"


def production(settings: Settings, **changes: object) -> Settings:
    values = (
        settings.model_dump()
        | {"env": "prod", "admin_token": PROD_ADMIN, "link_secret": PROD_LINKS}
        | changes
    )
    return Settings(**values)


def test_production_refuses_to_start_with_the_published_secret(
    db_url: str, mqtt_endpoint: MqttEndpoint, site: str, tmp_path: Path
) -> None:
    dev = _settings(db_url, mqtt_endpoint, site, "http://127.0.0.1:9", tmp_path)
    with pytest.raises(ValidationError, match="WCS_CARRIER_WEBHOOK_SECRET is a placeholder"):
        production(dev, carrier_webhook_secret=DEV_WEBHOOK_SECRET)


@pytest.fixture
def prod_api(
    db_url: str,
    engine: AsyncEngine,
    mqtt_endpoint: MqttEndpoint,
    site: str,
    fake_carrier: FakeCarrier,
    tmp_path: Path,
) -> Iterator[Served]:
    dev = _settings(db_url, mqtt_endpoint, site, fake_carrier.url, tmp_path / "pod")
    yield from serve(production(dev, carrier_webhook_secret=PROD_SECRET))


async def test_a_webhook_signed_with_the_published_secret_is_refused(
    prod_api: Served, engine: AsyncEngine, site: str, tokens: Tokens
) -> None:
    async with prod_api.client(PROD_ADMIN) as admin, prod_api.client(token=None) as forger:
        await seed(admin, STOCK)
        shipment = await shipped(admin, engine, site, tokens, "forged-1")
        url = f"/api/v1/shipments/{shipment['id']}/tracking-events"
        before = await event_count(engine, shipment["order_id"])
        for status in ("damaged", "delivered", "in_transit"):
            raw, headers = signed(
                carrier_event(shipment, status, f"evt-forged-{status}"), DEV_WEBHOOK_SECRET
            )
            r = await forger.post(url, content=raw, headers=headers)
            assert r.status_code == 401, r.text
            assert r.headers["content-type"] == PROBLEM
        assert await event_count(engine, shipment["order_id"]) == before
        order = await admin.get(f"/api/v1/orders/{shipment['order_id']}", headers=auth(PROD_ADMIN))
        assert order.json()["state"] == "shipped"

        # The carrier holding the real secret is heard; the same event again is a no-op.
        raw, headers = signed(carrier_event(shipment, "in_transit", "evt-real-1"), PROD_SECRET)
        first = await forger.post(url, content=raw, headers=headers)
        again = await forger.post(url, content=raw, headers=headers)
        assert first.status_code == again.status_code == 200
        assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
        assert await event_count(engine, shipment["order_id"]) == before + 1
