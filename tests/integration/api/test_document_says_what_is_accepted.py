"""The OpenAPI document says what each operation accepts, and the API accepts exactly
that: integers as JSON Schema counts them, strict numbers, money as exact decimals,
names and free text by their published patterns, conditions between fields, NUL
nowhere in a URL, and 405 with ``Allow`` for a method a literal path does not have
even where a template path would take the request."""

from __future__ import annotations

import re
from typing import Any

import pytest

from api.app import openapi_document
from tests.integration.api.conftest import Served
from wcs.settings import Settings

PROBLEM = "application/problem+json"
DOC = openapi_document(Settings())
SKU = {"name": "Mug", "weight_g": 250, "dims_mm": [100, 80, 50]}


def _schema(name: str) -> dict[str, Any]:
    found: dict[str, Any] = DOC["components"]["schemas"][name]
    return found


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/api/v1/notifications/preferences", "PUT"),  # not notification "preferences"
        ("GET", "/api/v1/inventory/receipts", "POST"),  # not the stock of SKU "receipts"
        ("DELETE", "/api/v1/orders", "GET, POST"),
    ],
)
async def test_a_literal_path_answers_405_for_methods_it_does_not_have(
    api: Served, method: str, path: str, allow: str
) -> None:
    async with api.client() as client:
        r = await client.request(method, path)
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == allow
    assert r.headers["content-type"] == PROBLEM


async def test_integers_strict_numbers_and_money(api: Served) -> None:
    async with api.client() as client:
        # A JSON integer may be written 2.0 (JSON Schema's integer); "2" and true are not.
        location = {"zone": "pick", "aisle": 1, "bay": 1, "level": 1.0}
        assert (await client.put("/api/v1/locations/A-1", json=location)).status_code == 201
        assert (await client.put("/api/v1/skus/S-1", json=SKU)).status_code == 201
        receipt = {"sku": "S-1", "location": "A-1"}
        assert (await client.post("/api/v1/inventory/receipts", json=receipt | {"qty": 3.0})
                ).json()["on_hand"] == 3  # fmt: skip
        for qty in ("3", True, 2.5):
            r = await client.post("/api/v1/inventory/receipts", json=receipt | {"qty": qty})
            assert r.status_code == 422, (qty, r.text)
        # A measure is a JSON number, not a string or a boolean.
        for weight in ("250", False):
            r = await client.put("/api/v1/skus/S-2", json=SKU | {"weight_g": weight})
            assert r.status_code == 422, (weight, r.text)
        # Money: a decimal string with at most two decimals, or a whole number.
        for price, stored in (("19.99", "19.99"), (20, "20"), (7.0, "7")):
            r = await client.put("/api/v1/skus/S-1", json=SKU | {"price": price})
            assert r.status_code == 200 and r.json()["price"] == stored, r.text
        for price in (19.99, "19.999", "", "019.99", "1e3", "1000000"):
            r = await client.put("/api/v1/skus/S-1", json=SKU | {"price": price})
            assert r.status_code == 422, (price, r.text)
        # A location's code fits its column; a NUL in any query string is a 422.
        r = await client.put("/api/v1/locations/" + "L" * 33, json=location)
        assert r.status_code == 422
        r = await client.get("/api/v1/adjustments", params={"since": "0.5"})
        assert r.status_code == 422 and "ISO 8601" in r.text
        r = await client.get("/api/v1/counts", params={"location": "A\x00"})
        assert r.status_code == 422


def test_the_document_states_the_rules() -> None:
    price = _schema("SkuIn")["properties"]["price"]["anyOf"][0]
    assert any(re.fullmatch(b["pattern"], "19.99") for b in price["anyOf"] if "pattern" in b)
    name = _schema("CustomerIn")["properties"]["name"]
    assert not re.fullmatch(name["pattern"], "\u200b\u3164")
    assert _schema("ResolveIn")["then"]["required"] == ["amount"]
    assert _schema("TriageIn")["then"]["required"] == ["note"]
    assert len(_schema("AllocateIn")["allOf"]) == 2
    assert {tuple(b["required"]) for b in _schema("CorrectionIn")["anyOf"]} == {
        ("customer",),
        ("address",),
        ("lines",),
    }
    counts = DOC["paths"]["/api/v1/counts"]["get"]["parameters"]
    location = next(p for p in counts if p["name"] == "location")
    assert location["schema"]["anyOf"][0]["pattern"] == "^[^\\u0000]*$"
    courier = DOC["paths"]["/api/v1/fleet/couriers/{courier_id}"]["put"]["parameters"][0]
    assert courier["schema"]["pattern"] == "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


async def test_the_status_pages_alert_actions_are_three_operations(api: Served) -> None:
    """Assigning takes a body that says to whom; acknowledging and resolving take none.
    (One operation with the action as a parameter could not say so.)"""
    async with api.client() as client:
        r = await client.post("/status/alerts/1/assign")
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
        r = await client.post("/status/alerts/1/assign", json={"assignee": "\u200b"})
        assert r.status_code == 422
        for action, body in (
            ("assign", {"assignee": "Wang Fang"}),
            ("ack", None),
            ("resolve", None),
        ):
            r = await client.post(f"/status/alerts/1/{action}", json=body)
            assert r.status_code == 404, (action, r.text)  # no alert 1 yet
        assert (await client.post("/status/alerts/1/snooze")).status_code == 404
    for action in ("ack", "assign", "resolve"):
        assert f"/status/alerts/{{alert_id}}/{action}" in DOC["paths"]
    assign = DOC["paths"]["/status/alerts/{alert_id}/assign"]["post"]
    assert assign["requestBody"]["required"] is True
