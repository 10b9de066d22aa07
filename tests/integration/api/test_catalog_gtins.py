"""SKUs carry their GTINs (several each) through the catalogue API."""

from __future__ import annotations

from tests.integration.api.conftest import Served

BODY = {"name": "Green tea 20 bags", "weight_g": 60, "dims_mm": [120, 70, 60]}


async def test_gtins_of_a_sku(api: Served) -> None:
    async with api.client() as client:
        # Two GTINs (a single pack and a relabelled supplier's) and an EAN-13 barcode:
        # the barcode counts as a GTIN too; all are kept as GTIN-14.
        r = await client.put(
            "/api/v1/skus/TEA-20",
            json={
                **BODY,
                "barcode": "4006381333931",
                "gtins": ["09506000134352", "036000291452"],
                "min_shelf_life_days": 30,
            },
        )
        assert r.status_code == 201, r.text
        assert r.json()["gtins"] == ["00036000291452", "04006381333931", "09506000134352"]
        assert r.json()["min_shelf_life_days"] == 30

        # A PUT replaces the set.
        r = await client.put("/api/v1/skus/TEA-20", json={**BODY, "gtins": ["9506000134352"]})
        assert r.status_code == 200, r.text
        assert r.json()["gtins"] == ["09506000134352"]
        assert r.json()["min_shelf_life_days"] is None
        assert (await client.get("/api/v1/skus/TEA-20")).json()["gtins"] == ["09506000134352"]

        # One GTIN, one SKU: another SKU cannot claim it.
        r = await client.put("/api/v1/skus/TEA-50", json={**BODY, "gtins": ["09506000134352"]})
        assert r.status_code == 409
        assert "GTIN 09506000134352 already belongs to SKU TEA-20" in r.json()["detail"]

        # A wrong check digit is refused with the field and the reason.
        r = await client.put("/api/v1/skus/TEA-50", json={**BODY, "gtins": ["09506000134353"]})
        assert r.status_code == 422
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "Expected 2, got 3" in r.text and "gtins" in r.text
        r = await client.put("/api/v1/skus/TEA-50", json={**BODY, "gtins": ["12AB"]})
        assert r.status_code == 422
        assert (await client.get("/api/v1/skus/TEA-50")).status_code == 404
