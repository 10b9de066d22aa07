"""Feedback over the real API: submission by any role, customers only on their own
orders, supervisor triage with its history, filtered lists, and the review's count."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.api.conftest import Served, api  # noqa: F401 (fixture)
from tests.integration.delivery.helpers import issue_tokens, order_body, seed


async def test_feedback_submission_triage_and_lists(api: Served, engine: AsyncEngine) -> None:  # noqa: F811
    tokens = await issue_tokens(engine)
    async with api.client() as admin:
        await seed(admin, {"SKU-A": [("A-01-02-1", 5)]})
        r = await admin.post(
            "/api/v1/orders",
            json=order_body("fb-1", [("SKU-A", 1)]),
            headers={"Idempotency-Key": "fb-1"},
        )
        order_id = r.json()["id"]
    async with api.client(token=tokens.customer) as customer:
        r = await customer.post(
            "/api/v1/feedback",
            json={
                "kind": "complaint",
                "stage": "packing",
                "text": "Crushed box",
                "order_id": order_id,
            },
        )
        assert r.status_code == 201, r.text
        complaint = r.json()
        assert complaint["status"] == "open" and complaint["author_role"] == "customer"
        assert r.headers["location"] == f"/api/v1/feedback/{complaint['id']}"
        r = await customer.post(
            "/api/v1/feedback", json={"kind": "praise", "stage": "packing", "text": "x"}
        )
        assert r.status_code == 422
        r = await customer.post(
            "/api/v1/feedback", json={"kind": "complaint", "stage": "shipping", "text": "x"}
        )
        assert r.status_code == 422
        assert (await customer.get("/api/v1/feedback")).status_code == 403
    async with api.client(token=tokens.other_customer) as stranger:
        r = await stranger.post(
            "/api/v1/feedback",
            json={"kind": "complaint", "stage": "delivery", "text": "x", "order_id": order_id},
        )
        assert r.status_code == 404  # not their order, and not told it exists
    async with api.client(token=tokens.dispatcher) as dispatcher:
        r = await dispatcher.post(
            "/api/v1/feedback",
            json={"kind": "suggestion", "stage": "outbound", "text": "Second dock door"},
        )
        assert r.status_code == 201
        suggestion = r.json()
        r = await dispatcher.post(
            f"/api/v1/feedback/{suggestion['id']}/triage", json={"status": "accepted"}
        )
        assert r.status_code == 403
    async with api.client(token=tokens.supervisor) as supervisor:
        r = await supervisor.post(
            f"/api/v1/feedback/{complaint['id']}/triage", json={"status": "rejected"}
        )
        assert r.status_code == 422 and "note" in r.json()["detail"]
        r = await supervisor.post(
            f"/api/v1/feedback/{complaint['id']}/triage",
            json={"status": "accepted", "note": "Carton too weak for that SKU"},
        )
        assert r.status_code == 200 and r.json()["status"] == "accepted"
        r = await supervisor.post(
            f"/api/v1/feedback/{complaint['id']}/triage",
            json={"status": "done", "note": "New carton"},
        )
        done = r.json()
        assert [h["status"] for h in done["history"]] == ["open", "accepted", "done"]
        assert done["triaged_by"] == "floor-lead" and done["triage_note"] == "New carton"
        r = await supervisor.post(
            f"/api/v1/feedback/{complaint['id']}/triage", json={"status": "accepted"}
        )
        assert r.status_code == 409  # done only reopens
        r = await supervisor.get("/api/v1/feedback", params={"stage": "outbound"})
        assert [f["id"] for f in r.json()] == [suggestion["id"]]
        r = await supervisor.get("/api/v1/feedback", params={"status": "done"})
        assert [f["id"] for f in r.json()] == [complaint["id"]]
        assert (await supervisor.get("/api/v1/feedback", params={"stage": "x"})).status_code == 422
