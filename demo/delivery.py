"""After the warehouse shift, the parcels go out and arrive: the demo's delivery day.

Every allocated order leaves the dock and reaches its customer through the same
interfaces a real day uses, so the delivery and satisfaction KPIs have values:

- **Carriers**: the dispatcher hands each parcel over (``POST .../handover``); the
  fake carrier moves it on (in transit, out for delivery, delivered; a few attempts
  fail first, a few are delayed) and pushes each step to the API as a signed webhook.
- **Own fleet** (Berlin): couriers are registered, the day is planned with the route
  solver, parcels are handed over, and each simulated courier starts the route and
  delivers stop by stop with a photo and a signature (``wcs.services.courier_app``,
  what the courier page calls), a few failed attempts tried again the same day.
- **Customers** sign off most deliveries with a rating.

Seeded: the same seed gives the same failures and ratings.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.contract.topics import Topics
from wcs.errors import ConfigError
from wcs.persistence.tables import fleet_routes, fleet_stops, shipments
from wcs.services import courier_app
from wcs.services.pod import check_image
from wcs.timeutil import utcnow

# Berlin: the own fleet's area in the carrier rules and the demo shop's places.
DEPOT = {"lat": 52.52, "lon": 13.405}
COURIERS = ("courier-1", "courier-2")
FAIL_FIRST = 0.06  # attempts that fail before the parcel is delivered
DELAYED = 0.04
RATED = 0.85  # deliveries the customer signs off with a rating
MAX_IMAGE = 1 << 20


@dataclass
class DeliveryStats:
    carrier: int = 0
    own_fleet: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    rated: int = 0
    problems: list[str] = field(default_factory=list)


def _image(kind: str, seed: int) -> bytes:
    """A small real image (JPEG photo, PNG signature) as a phone would send."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    picture = Image.new("RGB", (64, 48), (rng.randrange(256), rng.randrange(256), 200))
    ImageDraw.Draw(picture).line((4, 40, 30, 8, 60, 36), fill=(20, 20, 20), width=3)
    out = io.BytesIO()
    picture.save(out, format="JPEG" if kind == "photo" else "PNG")
    return out.getvalue()


class DeliveryDay:
    def __init__(
        self,
        engine: AsyncEngine,
        topics: Topics,
        api: httpx.AsyncClient,
        carrier: httpx.AsyncClient,
        *,
        admin_token: str,
        dispatcher_token: str,
        pod_dir: Path,
        seed: int,
    ) -> None:
        self.engine = engine
        self.topics = topics
        self.api = api
        self.carrier = carrier
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        self.dispatcher = {"Authorization": f"Bearer {dispatcher_token}"}
        self.pod_dir = pod_dir
        self.rng = random.Random(seed * 7919 + 17)
        self.stats = DeliveryStats()

    async def _call(
        self, method: str, path: str, headers: dict[str, str], **kw: object
    ) -> httpx.Response:
        response = await self.api.request(method, path, headers=headers, **kw)  # type: ignore[arg-type]
        if response.status_code >= 400:
            self.stats.problems.append(
                f"{method} {path}: {response.status_code} {response.text[:160]}"
            )
        return response

    async def run(self, api_url: str) -> DeliveryStats:
        await self.carrier.put(
            "/admin/webhook",
            json={"url": f"{api_url}/api/v1/shipments/{{shipment_id}}/tracking-events"},
        )
        async with self.engine.connect() as conn:
            booked = (
                await conn.execute(
                    select(
                        shipments.c.id,
                        shipments.c.order_id,
                        shipments.c.own_fleet,
                        shipments.c.tracking_no,
                    )
                    .where(shipments.c.status == "booked")
                    .order_by(shipments.c.id)
                )
            ).all()
        for s in booked:
            if not s.own_fleet:
                await self._carrier_parcel(s.id, s.order_id, s.tracking_no)
        if any(s.own_fleet for s in booked):
            await self._own_fleet()
        return self.stats

    async def _carrier_parcel(self, shipment_id: str, order_id: str, tracking_no: str) -> None:
        r = await self._call("POST", f"/api/v1/shipments/{shipment_id}/handover", self.dispatcher)
        if r.status_code != 200:
            return
        self.stats.carrier += 1
        steps = ["in_transit"]
        if self.rng.random() < DELAYED:
            steps.append("delayed")
        steps.append("out_for_delivery")
        if self.rng.random() < FAIL_FIRST:
            steps += ["delivery_failed", "out_for_delivery"]
            self.stats.failed_attempts += 1
        steps.append("delivered")
        for status in steps:
            pushed = await self.carrier.post(
                f"/admin/shipments/{tracking_no}/events",
                json={
                    "status": status,
                    "detail": "nobody home" if status == "delivery_failed" else "",
                },
            )
            if pushed.status_code != 200:
                self.stats.problems.append(f"carrier event {status}: {pushed.text[:160]}")
                return
        self.stats.delivered += 1
        await self._sign_off(order_id)

    async def _own_fleet(self) -> None:
        for n, courier_id in enumerate(COURIERS, start=1):
            await self._call(
                "PUT",
                f"/api/v1/fleet/couriers/{courier_id}",
                self.dispatcher,
                json={
                    "name": f"Courier {n}",
                    "capacity_kg": 600,
                    "capacity_m3": 8,
                    "shift_start": "00:00",
                    "shift_end": "47:59",
                    "depot": DEPOT,
                },
            )
        planned = await self._call("POST", "/api/v1/fleet/plan", self.dispatcher, json={})
        if planned.status_code != 201:
            raise ConfigError(f"the own fleet's day could not be planned: {planned.text[:200]}")
        async with self.engine.connect() as conn:
            routes = (
                await conn.execute(
                    select(fleet_routes.c.id, fleet_routes.c.courier_id).where(
                        fleet_routes.c.status == "active"
                    )
                )
            ).all()
        for route in routes:
            async with self.engine.connect() as conn:
                stops = (
                    await conn.execute(
                        select(fleet_stops.c.id, fleet_stops.c.shipment_id, fleet_stops.c.order_id)
                        .where(fleet_stops.c.route_id == route.id)
                        .order_by(fleet_stops.c.seq)
                    )
                ).all()
            for stop in stops:
                await self._call(
                    "POST", f"/api/v1/shipments/{stop.shipment_id}/handover", self.dispatcher
                )
            await courier_app.start_route(self.engine, self.topics, route.courier_id, route.id)
            retry = []
            for stop in stops:
                self.stats.own_fleet += 1
                if self.rng.random() < FAIL_FIRST:
                    await courier_app.fail(
                        self.engine, self.topics, route.courier_id, stop.id, reason="not_home"
                    )
                    self.stats.failed_attempts += 1
                    retry.append(stop)
                    continue
                await self._deliver(route.courier_id, stop.id, stop.order_id)
            for stop in retry:  # back in the afternoon: the same day, a second attempt
                await courier_app.retry_stop(self.engine, route.courier_id, stop.id)
                await self._deliver(route.courier_id, stop.id, stop.order_id)

    async def _deliver(self, courier_id: str, stop_id: int, order_id: str) -> None:
        seed = self.rng.randrange(1 << 30)
        await courier_app.deliver(
            self.engine,
            self.topics,
            courier_id,
            stop_id,
            receiver_name=self.rng.choice(("at the door", "neighbour", "reception")),
            photo=check_image("photo", _image("photo", seed), max_bytes=MAX_IMAGE, filename=None),
            signature=check_image(
                "signature", _image("signature", seed + 1), max_bytes=MAX_IMAGE, filename=None
            ),
            pod_dir=self.pod_dir,
            delivered_at=utcnow() - timedelta(seconds=1),
        )
        self.stats.delivered += 1
        await self._sign_off(order_id)

    async def _sign_off(self, order_id: str) -> None:
        if self.rng.random() >= RATED:
            return
        rating = self.rng.choices((5, 4, 3, 2, 1), weights=(55, 28, 10, 4, 3))[0]
        r = await self._call(
            "POST",
            f"/api/v1/orders/{order_id}/confirm-receipt",
            self.admin,
            json={"rating": rating},
        )
        if r.status_code == 200:
            self.stats.rated += 1
