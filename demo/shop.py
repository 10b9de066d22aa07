"""The shop side of the demo: the catalogue it sells and the orders its customers place.

Orders are planned up front from the seed (the same seed gives the same orders) and
posted to ``POST /api/v1/orders`` over time, the way a web shop forwards them. Most
are ordinary; a few are invalid on purpose (an unknown SKU, a country that does not
exist, no way to reach the customer) and must end in ``exception``; a few ask for an
article that is out of stock and must wait ``backordered`` until goods-in books a
receipt.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from device_sim.world import Slotting, World

Kind = Literal["regular", "invalid", "backorder"]

# (city, postal code, country): Berlin is the own fleet's area, the rest of Germany a
# domestic carrier's, the neighbours an EU service's.
PLACES: tuple[tuple[str, str, str], ...] = (
    ("Berlin", "10115", "DE"),
    ("Berlin", "10437", "DE"),
    ("Berlin", "12047", "DE"),
    ("Berlin", "13353", "DE"),
    ("Hamburg", "20095", "DE"),
    ("München", "80331", "DE"),
    ("Köln", "50667", "DE"),
    ("Frankfurt am Main", "60311", "DE"),
    ("Leipzig", "04109", "DE"),
    ("Paris", "75001", "FR"),
    ("Amsterdam", "1012 AB", "NL"),
    ("Wien", "1010", "AT"),
    ("København", "1050", "DK"),
)
STREETS = ("Hauptstraße", "Lindenallee", "Rue de Rivoli", "Damrak", "Ringstraße", "Nørregade")
FIRST = ("Anna", "Jonas", "Mia", "Luca", "Sofia", "Noah", "Emma", "Ben", "Lea", "Finn", "Wei")
LAST = ("Schmidt", "Müller", "Dubois", "de Vries", "Huber", "Jensen", "Weber", "Zhang", "Rossi")


@dataclass(frozen=True)
class PlannedOrder:
    external_id: str
    kind: Kind
    body: dict[str, Any]


def plan_orders(
    count: int,
    slotting: Slotting,
    *,
    seed: int,
    invalid_share: float = 0.03,
    backorder_share: float = 0.04,
) -> list[PlannedOrder]:
    """``count`` orders; at least one invalid and one backordered once ``count`` >= 10."""
    rng = random.Random(f"{seed}:orders")
    kinds: list[Kind] = ["regular"] * count
    special = round(count * invalid_share), round(count * backorder_share)
    invalid, backorder = (max(1, n) if count >= 10 else n for n in special)
    slots = rng.sample(range(count), min(count, invalid + backorder))
    for n in slots[:invalid]:
        kinds[n] = "invalid"
    for n in slots[invalid:]:
        kinds[n] = "backorder" if slotting.slow_movers else "regular"
    return [_order(f"SHOP-{seed}-{n:05d}", kind, slotting, rng) for n, kind in enumerate(kinds)]


def _order(external_id: str, kind: Kind, slotting: Slotting, rng: random.Random) -> PlannedOrder:
    city, postal, country = rng.choice(PLACES)
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    fast = slotting.fast_movers
    n_lines = rng.choices((1, 2, 3), weights=(55, 30, 15))[0]
    skus = rng.sample(fast, min(n_lines, len(fast)))
    lines = [{"sku": sku, "qty": rng.choices((1, 2, 3), weights=(70, 25, 5))[0]} for sku in skus]
    service = rng.choices(("standard", "express", "same_day"), weights=(75, 20, 5))[0]
    if service == "same_day" and country != "DE":
        service = "express"
    customer: dict[str, Any] = {
        "name": name,
        "phone": f"+49 30 {rng.randrange(1000000, 9999999)}",
        "email": f"{name.split()[0].lower()}.{rng.randrange(1000)}@example.org",
    }
    address = {
        "line1": f"{rng.choice(STREETS)} {rng.randrange(1, 200)}",
        "city": city,
        "postal_code": postal,
        "country": country,
    }
    if kind == "backorder":
        lines = [*lines[:1], {"sku": sorted(slotting.slow_movers)[0], "qty": rng.randint(1, 2)}]
    elif kind == "invalid":
        flaw = rng.choice(("sku", "country", "contact"))
        if flaw == "sku":
            lines = [*lines, {"sku": "SKU-999", "qty": 1}]
        elif flaw == "country":
            address["country"] = "XZ"
        else:
            customer["phone"] = "call me"
            customer["email"] = "not an address"
    body = {
        "external_id": external_id,
        "customer": customer,
        "address": address,
        "lines": lines,
        "priority": rng.choices((0, 3, 7), weights=(80, 15, 5))[0],
        "service": service,
    }
    return PlannedOrder(external_id, kind, body)


@dataclass
class Submitted:
    external_id: str
    kind: Kind
    order_id: str
    state: str


class Shop:
    """Posts planned orders to the API, ``gap_s`` apart, and remembers what came back."""

    def __init__(self, client: httpx.AsyncClient, world: World) -> None:
        self.client = client
        self.world = world
        self.submitted: list[Submitted] = []
        self.done = asyncio.Event()

    async def submit(self, order: PlannedOrder) -> Submitted:
        response = await self.client.post(
            "/api/v1/orders", json=order.body, headers={"Idempotency-Key": order.external_id}
        )
        data = response.json() if response.content else {}
        order_id = data.get("id") or data.get("order_id")
        if response.status_code not in (200, 201, 422) or not order_id:
            raise RuntimeError(
                f"order {order.external_id} refused: {response.status_code} {response.text[:300]}"
            )
        order_id = str(order_id)
        self.world.register_order(order_id, order.external_id)
        result = Submitted(order.external_id, order.kind, order_id, str(data["state"]))
        self.submitted.append(result)
        return result

    async def run(self, orders: list[PlannedOrder], gap_s: float) -> None:
        try:
            for order in orders:
                await self.submit(order)
                await asyncio.sleep(gap_s)
        finally:
            self.done.set()
