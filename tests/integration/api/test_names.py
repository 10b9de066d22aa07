"""A name with a NUL or nothing visible is refused with a 422 naming the field, and
nothing is stored - on SQLite (which would store it) as on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.api.conftest import Served
from tests.integration.delivery.helpers import CUSTOMER, MUNICH, order_body

PROBLEM = "application/problem+json"
INVISIBLE = ["a\x00b", "\x00", "\u200b", "\u200b\u200c\u2060", "\u3164", " \u00a0 "]


def _refused(r: Any, field: str) -> None:
    assert r.status_code == 422, r.text[:300]
    assert r.headers["content-type"] == PROBLEM
    assert any(e["field"].endswith(field) for e in r.json()["errors"]), r.text[:300]


@pytest.mark.parametrize("name", INVISIBLE)
async def test_order_customer_and_address_names(api: Served, name: str) -> None:
    async with api.client() as client:
        lines = [("SKU-1", 1)]
        for key, body in (
            ("customer.name", order_body("n-1", lines, customer={**CUSTOMER, "name": name})),
            ("address.city", order_body("n-2", lines, address={**MUNICH, "city": name})),
        ):
            _refused(await client.post("/api/v1/orders", json=body), key)
        assert (await client.get("/api/v1/orders")).json()["items"] == []


@pytest.mark.parametrize("name", INVISIBLE)
async def test_sku_and_courier_names(api: Served, name: str) -> None:
    async with api.client() as client:
        r = await client.put(
            "/api/v1/skus/SKU-N", json={"name": name, "weight_g": 1, "dims_mm": [1, 1, 1]}
        )
        _refused(r, "name")
        assert (await client.get("/api/v1/skus/SKU-N")).status_code == 404
        r = await client.put(
            "/api/v1/fleet/couriers/c-n",
            json={"name": name, "capacity_kg": 100, "capacity_m3": 1, "shift_start": "08:00",
                  "shift_end": "17:00", "depot": {"lat": 48.1, "lon": 11.5}},
        )  # fmt: skip
        _refused(r, "name")
