"""A damaged label printed again through the API: the parcel's GS1 label or its
carrier label, as a print command to the right printer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.api.conftest import ADMIN, Served, serve
from tests.integration.controller.test_allocation import packed_order
from tests.integration.persistence.helpers import seed_catalogue
from wcs.contract.payloads import PrintCommand
from wcs.contract.topics import Topics
from wcs.persistence.db import transaction
from wcs.persistence.tables import outbox, packages
from wcs.services.auth import issue_token
from wcs.settings import MqttEndpoint, Settings

SSCC = "106141411234567897"


@pytest.fixture
def floor_api(
    db_url: str, engine: object, mqtt_endpoint: MqttEndpoint, site: str, tmp_path: Path
) -> Iterator[Served]:
    path = tmp_path / "floor.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "site": site,
                "devices": [
                    {"id": "prn-p1", "kind": "printer", "zone": "pack", "link": {"type": "tcp"}},
                    {
                        "id": "prn-p2",
                        "kind": "printer",
                        "zone": "pack",
                        "dpi": 300,
                        "link": {"type": "tcp", "port": 9101},
                    },
                ],
                "stations": [
                    {"id": "P1", "kind": "pack", "printer": "prn-p1", "backup_printer": "prn-p2"}
                ],
            }
        )
    )
    settings = Settings(
        database_url=db_url,
        mqtt_url=f"mqtt://{mqtt_endpoint.host}:{mqtt_endpoint.port}",
        site=site,
        admin_token=ADMIN,
        embedded_broker=False,
        floor_file=path,
    )
    yield from serve(settings)


async def test_reprint_over_http(floor_api: Served, engine: AsyncEngine, site: str) -> None:
    topics = Topics(site)
    await seed_catalogue(engine, topics, {"SKU-1": [("A-01-01-1", 10)]})
    order_id = await packed_order(
        engine, topics, "rp-1", 900.0, city="Berlin", postal_code="10115", country="DE"
    )
    async with transaction(engine) as conn:
        await conn.execute(
            update(packages).where(packages.c.order_id == order_id).values(sscc=SSCC)
        )
    clerk = await issue_token(engine, "clerk", ["customer_service"])
    packer = await issue_token(engine, "packer", ["pack_operator"])
    async with floor_api.client(packer) as client:
        r = await client.post(f"/api/v1/parcels/{SSCC}/reprint", json={})
        assert r.status_code == 202, r.text
        assert r.json()["printer"] == "prn-p1" and r.json()["label"] == "sscc"
        r = await client.post(f"/api/v1/parcels/{SSCC}/reprint", json={"printer": "prn-p2"})
        assert r.status_code == 202 and r.json()["printer"] == "prn-p2"
        r = await client.post(f"/api/v1/parcels/{SSCC}/reprint", json={"label": "carrier"})
        assert r.status_code == 409 and "not booked" in r.json()["detail"]
        r = await client.post("/api/v1/parcels/106141411234567890/reprint", json={})
        assert r.status_code == 404
        r = await client.post("/api/v1/parcels/12345/reprint", json={})
        assert r.status_code == 422
        r = await client.post(f"/api/v1/parcels/{SSCC}/reprint", json={"printer": "nope"})
        assert r.status_code == 422 and "not a printer on this floor" in r.json()["detail"]
    async with floor_api.client(clerk) as client:
        r = await client.post(f"/api/v1/parcels/{SSCC}/reprint", json={})
        assert r.status_code == 403
    async with engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.topic, outbox.c.payload))).all()
    jobs = [
        (topic.rsplit("/", 3)[-3], PrintCommand.model_validate_json(payload))
        for topic, payload in rows
        if topic.endswith("/cmd/print")
    ]
    assert [(printer, cmd.job_id) for printer, cmd in jobs] == [("prn-p1", SSCC), ("prn-p2", SSCC)]
    assert "^BY4," in (jobs[0][1].zpl or "") and "^BY6," in (jobs[1][1].zpl or "")
