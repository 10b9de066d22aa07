"""Faces, counts, moves and adjustments over HTTP: the floor's owner applies the
counts; whoever counts never sees the book."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from controller.runtime import Controller
from tests.integration.api.conftest import Served
from tests.integration.api.test_orders_api import seed
from wcs.floor import Floor
from wcs.services.auth import issue_token


async def test_counts_over_the_api_are_blind_and_booked_by_the_owner(
    api: Served, engine: AsyncEngine
) -> None:
    settings = api.settings
    clerk = await issue_token(engine, "ken", ["stock_controller"])
    other = await issue_token(engine, "ann", ["stock_controller"])
    async with (
        Controller(settings, Floor(site=settings.site), engine=engine, run_relay=False,
                   housekeeping=False),
        api.client() as client,
        api.client(token=clerk) as ken,
        api.client(token=other) as ann,
    ):  # fmt: skip
        await seed(client, {"SKU-1": [("A-01-02-1", 10)]})
        r = await client.put(
            "/api/v1/locations/R-09-01-1",
            json={"zone": "reserve", "aisle": 9, "bay": 1, "level": 1},
        )
        assert r.status_code == 201, r.text
        # Faces are pick locations with a maximum at least their minimum.
        r = await client.put(
            "/api/v1/faces/A-01-02-1", json={"sku": "SKU-1", "min_qty": 2, "max_qty": 12}
        )
        assert r.status_code == 201, r.text
        assert (
            await client.put(
                "/api/v1/faces/A-01-02-1", json={"sku": "SKU-1", "min_qty": 3, "max_qty": 12}
            )
        ).status_code == 200
        bad = await client.put(
            "/api/v1/faces/A-01-02-1", json={"sku": "SKU-1", "min_qty": 9, "max_qty": 4}
        )
        assert bad.status_code == 422 and "maximum" in bad.json()["detail"]
        bad = await client.put(
            "/api/v1/faces/R-09-01-1", json={"sku": "SKU-1", "min_qty": 1, "max_qty": 4}
        )
        assert bad.status_code == 422 and "reserve" in bad.json()["detail"]
        faces = (await ken.get("/api/v1/faces")).json()
        assert faces == [
            {
                "location": "A-01-02-1",
                "sku": "SKU-1",
                "min_qty": 3,
                "max_qty": 12,
                "on_hand": 10,
                "reserved": 0,
            }
        ]
        # Only supervisors ask for counts; a clerk keys them.
        assert (
            await ken.post("/api/v1/counts", json={"location": "A-01-02-1", "sku": "SKU-1"})
        ).status_code == 403
        r = await client.post("/api/v1/counts", json={"location": "A-01-02-1", "sku": "SKU-1"})
        assert r.status_code == 201, r.text
        count_id = r.json()["count_id"]
        again = await client.post("/api/v1/counts", json={"location": "A-01-02-1", "sku": "SKU-1"})
        assert again.json() == {"count_id": count_id, "created": False}
        listed = (await ken.get("/api/v1/counts", params={"state": "open"})).json()
        assert [c["id"] for c in listed] == [count_id]
        assert "last_delta" not in listed[0] and "counted" not in listed[0]
        # Seven found where the books say ten: counted again by someone else.
        r = await ken.post(f"/api/v1/counts/{count_id}/result", json={"qty": 7})
        assert r.status_code == 200, r.text
        assert r.json() == {"count_id": count_id, "state": "recount", "outcome": "recount"}
        same = await ken.post(f"/api/v1/counts/{count_id}/result", json={"qty": 7})
        assert same.status_code == 409 and "someone other than ken" in same.json()["detail"]
        r = await ann.post(f"/api/v1/counts/{count_id}/result", json={"qty": 7})
        assert r.json()["outcome"] == "closed"
        view = (await client.get("/api/v1/inventory/SKU-1")).json()
        assert (view["on_hand"], view["available"]) == (7, 7)
        seen = (await client.get("/api/v1/counts")).json()[0]
        assert (seen["first_delta"], seen["last_delta"], seen["result"]) == (-3, -3, "adjusted")
        adjustments = (await client.get("/api/v1/adjustments")).json()
        assert [
            (a["delta"], a["book"], a["counted"], a["counted_by"], a["accepted_by"])
            for a in adjustments
        ] == [(-3, 10, 7, "ann", "ann")]
        assert (await ken.get("/api/v1/adjustments")).status_code == 403
        closed = await ann.post(f"/api/v1/counts/{count_id}/result", json={"qty": 7})
        assert closed.status_code == 409
        assert (await client.post("/api/v1/counts/999/accept", json={})).status_code == 404
        assert (await ken.get("/api/v1/moves")).json() == []
