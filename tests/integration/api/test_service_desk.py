"""Customer service corrects an order kept in exception (over real HTTP): a bad
correction is refused with problem+json and changes nothing; a good one moves the
order to validated and reserved, closes its alert and shows in its timeline. Alerts
about orders are customer service's to acknowledge and resolve, the others are not;
cancelling an order closes its alerts; the queue shows who waits, why, since when."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.api.conftest import Served
from tests.integration.api.test_orders_api import PROBLEM, order_body, seed
from tests.integration.delivery.helpers import issue_tokens
from wcs.persistence.tables import alerts, order_corrections
from wcs.timeutil import utcnow

BAD_ADDRESS = {"line1": "1 Road", "city": "y", "postal_code": "!!", "country": "DE"}


async def kept_in_exception(client: httpx.AsyncClient, key: str) -> str:
    r = await client.post(
        "/api/v1/orders", json=order_body(key, [("SKU-C", 2)], address=BAD_ADDRESS)
    )
    assert r.status_code == 422 and r.json()["state"] == "exception", r.text
    return str(r.json()["order_id"])


async def alerts_about(client: httpx.AsyncClient, order_id: str) -> list[dict[str, Any]]:
    listed = (await client.get("/api/v1/alerts", params={"limit": 500})).json()
    return [a for a in listed if a["subject"] == order_id]


async def corrections(engine: AsyncEngine, order_id: str) -> int:
    async with engine.connect() as conn:
        n = await conn.scalar(
            select(func.count())
            .select_from(order_corrections)
            .where(order_corrections.c.order_id == order_id)
        )
    return int(n or 0)


async def test_correcting_an_exception_order(api: Served, engine: AsyncEngine) -> None:
    tokens = await issue_tokens(engine)
    async with api.client() as admin, api.client(token=tokens.customer_service) as cs:
        await seed(admin, {"SKU-C": [("A-03-01-1", 10)]})
        order_id = await kept_in_exception(admin, "fix-1")
        (alert,) = await alerts_about(admin, order_id)
        assert alert["code"] == "order_invalid" and alert["resolved_at"] is None

        queue = (await cs.get("/api/v1/service/queue")).json()
        (waiting,) = [q for q in queue if q["order_id"] == order_id]
        assert waiting["state"] == "exception" and "city 'y'" in waiting["reason"]
        assert waiting["age_s"] >= 0 and waiting["alerts"][0]["code"] == "order_invalid"

        # Still wrong: refused with the reasons, nothing changed.
        bad = await cs.patch(
            f"/api/v1/orders/{order_id}",
            json={"reason": "customer called", "address": {"city": "Berlin"}},
        )
        assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
        assert any("postal code '!!'" in e for e in bad.json()["errors"])
        same = (await admin.get(f"/api/v1/orders/{order_id}")).json()
        assert same["state"] == "exception" and same["address"]["city"] == "y"
        assert await corrections(engine, order_id) == 0
        malformed = await cs.patch(f"/api/v1/orders/{order_id}", json={"address": {}})
        assert malformed.status_code == 422  # no reason given
        nothing = await cs.patch(f"/api/v1/orders/{order_id}", json={"reason": "x"})
        assert nothing.status_code == 422 and "changes the customer" in nothing.json()["detail"]
        assert await corrections(engine, order_id) == 0

        # Right: validated, then reserved; the alert closes; the timeline tells.
        good = await cs.patch(
            f"/api/v1/orders/{order_id}",
            json={
                "reason": "customer gave the right address on the phone",
                "address": {"city": "Berlin", "postal_code": "10115"},
                "customer": {"phone": "030 1234567"},
                "lines": [{"sku": "SKU-C", "qty": 3}],
            },
        )
        assert good.status_code == 200, good.text
        fixed = good.json()
        assert fixed["state"] == "reserved" and fixed["exception_reason"] is None
        assert fixed["address"]["city"] == "Berlin" and fixed["customer"]["phone"] == "+49301234567"
        assert [(ln["sku"], ln["qty"]) for ln in fixed["lines"]] == [("SKU-C", 3)]
        moves = [
            (e["from"], e["to"])
            for e in (await admin.get(f"/api/v1/orders/{order_id}/events")).json()
        ]
        assert moves[-2:] == [("exception", "validated"), ("validated", "reserved")]
        (alert,) = await alerts_about(admin, order_id)
        assert alert["resolved_at"] is not None and "corrected" in alert["resolved_by"]
        timeline = (await admin.get(f"/api/v1/orders/{order_id}/timeline")).json()
        kinds = [e["kind"] for e in timeline]
        assert kinds.index("correction") < max(
            i
            for i, e in enumerate(timeline)
            if e["kind"] == "state" and e["data"]["to"] == "validated"
        )
        (entry,) = [e for e in timeline if e["kind"] == "correction"]
        assert entry["data"]["actor"] == "cs-agent"
        assert entry["data"]["changes"]["city"] == ["y", "Berlin"]
        assert entry["data"]["changes"]["lines"] == [[["SKU-C", 2]], [["SKU-C", 3]]]
        history = (await cs.get(f"/api/v1/orders/{order_id}/corrections")).json()
        assert history[0]["reason"] == "customer gave the right address on the phone"
        inventory = (await admin.get("/api/v1/inventory/SKU-C")).json()
        assert inventory["reserved"] == 3

        # Only an order in exception is corrected.
        again = await cs.patch(
            f"/api/v1/orders/{order_id}", json={"reason": "again", "address": {"city": "Hamburg"}}
        )
        assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
        assert all(
            q["order_id"] != order_id for q in (await cs.get("/api/v1/service/queue")).json()
        )

        # Roles: a customer or a dispatcher may not correct.
        async with api.client(token=tokens.dispatcher) as dispatch:
            other = await kept_in_exception(admin, "fix-2")
            denied = await dispatch.patch(
                f"/api/v1/orders/{other}", json={"reason": "x", "address": {"city": "Berlin"}}
            )
            assert denied.status_code == 403


async def test_alerts_about_orders_are_customer_services(api: Served, engine: AsyncEngine) -> None:
    tokens = await issue_tokens(engine)
    async with api.client() as admin, api.client(token=tokens.customer_service) as cs:
        await seed(admin, {"SKU-C": [("A-03-01-1", 10)]})
        order_id = await kept_in_exception(admin, "ack-1")
        (alert,) = await alerts_about(admin, order_id)
        acked = await cs.post(f"/api/v1/alerts/{alert['id']}/ack")
        assert acked.status_code == 200 and acked.json()["acked_by"] == "cs-agent"
        async with transaction_conn(engine) as conn:
            device_alert = (
                await conn.execute(
                    insert(alerts)
                    .values(
                        code="device_offline",
                        severity="critical",
                        message="scanner-1 offline",
                        subject="scanner-1",
                        created_at=utcnow(),
                    )
                    .returning(alerts.c.id)
                )
            ).scalar_one()
        refused = await cs.post(f"/api/v1/alerts/{device_alert}/ack")
        assert refused.status_code == 403 and "supervisor" in refused.json()["detail"]
        assert (await cs.post(f"/api/v1/alerts/{device_alert}/resolve")).status_code == 403
        async with api.client(token=tokens.supervisor) as supervisor:
            assert (await supervisor.post(f"/api/v1/alerts/{device_alert}/ack")).status_code == 200

        # Cancelling the order ends its cause: the alert closes by itself.
        cancelled = await cs.post(f"/api/v1/orders/{order_id}/cancel", json={"reason": "duplicate"})
        assert cancelled.status_code == 200, cancelled.text
        (alert,) = await alerts_about(admin, order_id)
        assert alert["resolved_at"] is not None and "cancelled" in alert["resolved_by"]


def transaction_conn(engine: AsyncEngine) -> Any:
    from wcs.persistence.db import transaction

    return transaction(engine)
