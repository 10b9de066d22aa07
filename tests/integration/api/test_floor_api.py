"""Wave release, pick tasks and QC operator endpoints over HTTP."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from controller.runtime import Controller
from tests.integration.api.conftest import Served
from tests.integration.api.test_orders_api import order_body, seed
from wcs.floor import Floor


async def test_release_wave_answers_batches_with_walking_order(
    api: Served, engine: AsyncEngine
) -> None:
    # The floor's controller applies the release; the API answers with its result.
    settings = api.settings
    async with (
        Controller(settings, Floor(site=settings.site), engine=engine, run_relay=False,
                   housekeeping=False),
        api.client() as client,
    ):  # fmt: skip
        await seed(
            client,
            {
                "SKU-1": [("A-01-02-1", 10)],
                "SKU-2": [("A-03-08-1", 10)],
                "SKU-3": [("A-02-05-1", 10)],
            },
        )
        ids = []
        for n, lines in enumerate([[("SKU-1", 1), ("SKU-2", 1)], [("SKU-3", 2)], [("SKU-2", 1)]]):
            r = await client.post("/api/v1/orders", json=order_body(f"w{n}", lines))
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        r = await client.post("/api/v1/waves", json={"max_orders": 10})
        assert r.status_code == 201, r.text
        wave = r.json()
        released = sorted(o for b in wave["batches"] for o in b["orders"])
        assert released == sorted(ids)
        for batch in wave["batches"]:
            assert batch["distance_m"] > 0
            assert set(batch["stops"]) <= {"A-01-02-1", "A-03-08-1", "A-02-05-1"}
        assert wave["distance_m"] <= wave["baseline_s_shape_m"]
        for order_id in ids:
            assert (await client.get(f"/api/v1/orders/{order_id}")).json()[
                "state"
            ] == "pick_planned"

        tasks = (await client.get("/api/v1/tasks", params={"order_id": ids[0]})).json()
        assert sorted(t["sku"] for t in tasks) == ["SKU-1", "SKU-2"]
        assert all(t["state"] == "open" and t["qty_picked"] == 0 for t in tasks)

        again = (await client.post("/api/v1/waves")).json()
        assert again["batches"] == [] and again["wave_id"] is None


async def test_a_wave_asked_while_no_controller_runs_is_followed_by_its_request(
    api: Served,
) -> None:
    # The API waits its few seconds for the owner, then hands the request over.
    async with api.client() as client:
        r = await client.post("/api/v1/waves", json={"max_orders": 10})
        assert r.status_code == 202, r.text
        href = r.headers["location"]
        assert href == r.json()["href"]
        followed = (await client.get(href)).json()
        assert (followed["state"], followed["kind"], followed["station"]) == (
            "pending",
            "wave",
            "floor",
        )


async def test_qc_result_needs_a_picked_order(api: Served) -> None:
    async with api.client() as client:
        await seed(client, {"SKU-1": [("A-01-02-1", 10)]})
        order_id = (
            await client.post("/api/v1/orders", json=order_body("q", [("SKU-1", 1)]))
        ).json()["id"]
        r = await client.post(
            f"/api/v1/qc/{order_id}/result", json={"packaging_ok": True, "appearance_ok": True}
        )
        assert r.status_code == 409
        assert "reserved" in r.json()["detail"]
        r = await client.post(f"/api/v1/qc/{order_id}/resolve", json={"action": "burn"})
        assert r.status_code == 422
