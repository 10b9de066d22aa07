"""Public tracking (no token, anyone with the number) shows the carrier's hubs but
never what a courier typed: a street, a neighbour's name."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.api.conftest import Served
from tests.integration.delivery.helpers import Tokens, auth, carrier_event, seed, signed
from tests.integration.delivery.test_tracking import STOCK, shipped

COURIER_TYPED = "Hauptstrasse 5, left with Mrs Schmidt"


async def test_public_tracking_leaves_out_what_couriers_typed(
    api: Served, engine: AsyncEngine, site: str, tokens: Tokens
) -> None:
    async with api.client() as admin, api.client(token=None) as anon:
        await seed(admin, STOCK)
        shipment = await shipped(admin, engine, site, tokens, "public-1")
        sid = shipment["id"]
        raw, headers = signed(
            carrier_event(shipment, "in_transit", "evt-pub-1", location="Leipzig hub")
        )
        r = await anon.post(
            f"/api/v1/shipments/{sid}/tracking-events", content=raw, headers=headers
        )
        assert r.status_code == 200, r.text
        r = await admin.put(
            f"/api/v1/shipments/{sid}/courier",
            json={"courier_id": "courier-1"},
            headers=auth(tokens.dispatcher),
        )
        assert r.status_code == 200, r.text
        for status in ("out_for_delivery", "delayed"):
            r = await admin.post(
                f"/api/v1/shipments/{sid}/courier-events",
                json={"status": status, "location": COURIER_TYPED, "detail": COURIER_TYPED},
                headers=auth(tokens.courier),
            )
            assert r.status_code == 200, r.text

        view = (await anon.get(f"/api/v1/track/{shipment['tracking_no']}")).json()
        where = {e["status"]: e["location"] for e in view["events"]}
        assert where["in_transit"] == "Leipzig hub"
        assert where["out_for_delivery"] is None and where["delayed"] is None
        public = (await anon.get(f"/api/v1/track/{shipment['tracking_no']}")).text
        assert "Hauptstrasse" not in public and "Schmidt" not in public

        # Staff still see what the courier wrote.
        timeline = await admin.get(f"/api/v1/orders/{shipment['order_id']}/timeline")
        assert COURIER_TYPED in timeline.text
