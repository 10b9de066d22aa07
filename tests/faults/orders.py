"""Office load against the ``wcs api`` process, with its own log of what was confirmed.

Customer service takes orders (``POST /orders`` with an Idempotency-Key: an attempt
that got no answer is sent again with the same key), the goods-in desk books
receipts at the pick locations (stock the controller is picking from at the same
time), and some orders are cancelled. A receipt is not idempotent, so one that got no
answer is *not* sent again: it may or may not have been booked, and the checks allow
exactly that range.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.b_controller import SLOTS, location

# Answers that mean "not now" (a database restarting, a pool being rebuilt).
RETRYABLE = frozenset({500, 502, 503, 504})


@dataclass
class OfficeLog:
    orders: dict[str, str] = field(default_factory=dict)  # idempotency key -> order id
    orders_unanswered: set[str] = field(default_factory=set)
    receipts_booked: list[tuple[str, str, int]] = field(default_factory=list)
    receipts_unanswered: list[tuple[str, str, int]] = field(default_factory=list)
    cancelled: set[str] = field(default_factory=set)
    cancels_refused: int = 0
    cancels_unanswered: set[str] = field(default_factory=set)
    errors: int = 0

    @property
    def requests_ok(self) -> int:
        return len(self.orders) + len(self.receipts_booked) + len(self.cancelled)


def order_body(key: str, lines: Sequence[tuple[str, int]]) -> dict[str, Any]:
    return {
        "external_id": key,
        "customer": {"name": "Drill Customer", "phone": "+86 138 0013 8000"},
        "address": {
            "line1": "1 Test Road",
            "city": "Shanghai",
            "postal_code": "200000",
            "country": "CN",
        },
        "lines": [{"sku": sku, "qty": qty} for sku, qty in lines],
        "priority": 0,
        "service": "standard",
    }


class Office:
    """Intake, receipts and cancels at ``rate`` requests per second."""

    def __init__(
        self,
        base_url: str,
        token: str,
        stations: Sequence[int],
        rate: float,
        run_id: str,
        seed: int,
    ) -> None:
        self.base_url = base_url
        self.token = token
        self.stations = list(stations)
        self.rate = rate
        self.run_id = run_id
        self.random = random.Random(seed)
        self.log = OfficeLog()
        self._n = 0

    def _sku(self) -> tuple[str, str]:
        k = self.random.choice(self.stations)
        b = self.random.randint(1, SLOTS)
        return f"BK-{k:02d}-{b}", location(k, b)

    async def _intake(self, client: httpx.AsyncClient) -> None:
        self._n += 1
        key = f"{self.run_id}-o{self._n}"
        lines = sorted({self._sku()[0]: self.random.randint(1, 2) for _ in range(2)}.items())
        body = order_body(key, lines)
        for attempt in range(8):
            try:
                r = await client.post("/api/v1/orders", json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError:
                r = None
            if r is not None and r.status_code in (200, 201):
                self.log.orders[key] = r.json()["id"]
                self.log.orders_unanswered.discard(key)
                return
            if r is not None and r.status_code not in RETRYABLE:
                raise AssertionError(f"intake {key} answered {r.status_code}: {r.text[:300]}")
            self.log.errors += 1
            self.log.orders_unanswered.add(key)
            await asyncio.sleep(min(0.2 * 2**attempt, 3.0))

    async def _receipt(self, client: httpx.AsyncClient) -> None:
        sku, loc = self._sku()
        qty = self.random.randint(1, 6)
        try:
            r = await client.post(
                "/api/v1/inventory/receipts", json={"sku": sku, "location": loc, "qty": qty}
            )
        except httpx.TransportError:
            r = None
        if r is not None and r.status_code == 201:
            self.log.receipts_booked.append((sku, loc, qty))
            return
        if r is not None and r.status_code not in RETRYABLE:
            raise AssertionError(f"receipt answered {r.status_code}: {r.text[:300]}")
        self.log.errors += 1
        self.log.receipts_unanswered.append((sku, loc, qty))

    async def _cancel(self, client: httpx.AsyncClient) -> None:
        open_orders = sorted(set(self.log.orders.values()) - self.log.cancelled)
        if not open_orders:
            return
        order_id = self.random.choice(open_orders)
        try:
            r = await client.post(
                f"/api/v1/orders/{order_id}/cancel", json={"reason": "customer changed mind"}
            )
        except httpx.TransportError:
            r = None
        if r is not None and r.status_code == 200:
            self.log.cancelled.add(order_id)
            self.log.cancels_unanswered.discard(order_id)
        elif r is not None and r.status_code == 409:
            self.log.cancels_refused += 1
        elif r is not None and r.status_code not in RETRYABLE:
            raise AssertionError(f"cancel of {order_id} answered {r.status_code}: {r.text[:300]}")
        else:
            self.log.errors += 1
            self.log.cancels_unanswered.add(order_id)

    async def run(self, stop: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        timeout = httpx.Timeout(15.0)
        async with httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout) as c:
            while not stop.is_set():
                roll = self.random.random()
                if roll < 0.55:
                    await self._intake(c)
                elif roll < 0.85:
                    await self._receipt(c)
                else:
                    await self._cancel(c)
                await asyncio.sleep(self.random.expovariate(self.rate))
