"""Intake's language field and its contact and address checks, over real HTTP."""

from __future__ import annotations

from tests.integration.api.conftest import Served
from tests.integration.api.test_orders_api import PROBLEM, order_body, seed

BERLIN = {"line1": "Invalidenstr. 117", "city": "Berlin", "postal_code": "10115", "country": "DE"}


async def test_lang_is_taken_normalised_or_defaults_from_the_country(api: Served) -> None:
    async with api.client() as client:
        await seed(client, {"SKU-L1": [("A-01-01-1", 9)]})
        zh_in_germany = await client.post(
            "/api/v1/orders",
            json=order_body(
                "lang-1",
                [("SKU-L1", 1)],
                lang="zh-hans-cn",
                address=BERLIN,
                customer={"name": "Li Wei", "phone": "030 1234567"},
            ),
        )
        assert zh_in_germany.status_code == 201, zh_in_germany.text
        order = zh_in_germany.json()
        assert order["lang"] == "zh-Hans-CN"
        assert order["customer"]["phone"] == "+49301234567"  # E.164, in the country's way
        china = await client.post("/api/v1/orders", json=order_body("lang-2", [("SKU-L1", 1)]))
        assert china.json()["lang"] == "zh-CN"
        germany = await client.post(
            "/api/v1/orders", json=order_body("lang-3", [("SKU-L1", 1)], address=BERLIN)
        )
        assert germany.json()["lang"] == "de-DE"
        read = await client.get(f"/api/v1/orders/{order['id']}")
        assert read.json()["lang"] == "zh-Hans-CN"


async def test_a_malformed_lang_is_refused_and_nothing_is_stored(api: Served) -> None:
    async with api.client() as client:
        r = await client.post(
            "/api/v1/orders", json=order_body("lang-bad", [("SKU-L1", 1)], lang="english please")
        )
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
        assert "BCP 47" in r.text
        listed = await client.get("/api/v1/orders", params={"state": "exception"})
        assert all(o["external_id"] != "lang-bad" for o in listed.json()["items"])


async def test_bad_address_and_contact_keep_the_order_in_exception(api: Served) -> None:
    async with api.client() as client:
        await seed(client, {"SKU-L2": [("A-01-02-1", 9)]})
        r = await client.post(
            "/api/v1/orders",
            json=order_body(
                "addr-1",
                [("SKU-L2", 1)],
                address={"line1": "1 Road", "city": "y", "postal_code": "!!", "country": "DE"},
                customer={"name": "Ada", "phone": "12", "email": "ada@b"},
            ),
        )
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
        errors = r.json()["errors"]
        assert any("city 'y' is not a place name" in e for e in errors), errors
        assert any("postal code '!!' is not a DE postal code" in e for e in errors), errors
        assert any("no reachable contact" in e and "phone '12'" in e for e in errors), errors
