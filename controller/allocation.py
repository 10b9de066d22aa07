"""Carrier allocation of packed orders (design §1 step 6): ``packed -> allocated``.

A named background task of the controller (``controller-allocation``). Every
``allocate_interval_s`` it takes the packed orders, oldest first, and allocates each
with :func:`wcs.services.shipments.allocate_order`, which books with the carrier
between short transactions of its own. So no carrier call ever runs inside the
controller's event transactions: a slow or failing carrier delays this loop only,
never a scan on the floor.

The parcel offered to the carrier is the one on the scale: the measured weight of the
packed package and the inner size of its carton (the service estimates from the SKUs
when there is no package, e.g. an order packed by hand through the API).

An order whose allocation fails is retried with a capped exponential backoff of its
own, so one unbookable order neither holds up the others nor hammers the carrier.
Booking failures already raise ``carrier_booking_failed`` in the service; an order no
carrier rule fits raises it here, once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.contract.topics import Topics
from wcs.domain.carriers import Parcel
from wcs.domain.packing import DEFAULT_CARTONS
from wcs.domain.states import OrderState
from wcs.errors import Conflict, NoCarrierAvailable, WcsError
from wcs.floor import Floor
from wcs.persistence.db import DatabaseUnavailable, transaction
from wcs.persistence.orders import raise_alert
from wcs.persistence.tables import orders, packages
from wcs.services.labels import print_carrier_label
from wcs.services.shipments import CarrierDesk, allocate_order

log = logging.getLogger(__name__)

CARTON_DIMS = {c.code: c.inner_mm for c in DEFAULT_CARTONS}


@dataclass
class AllocationStats:
    allocated: int = 0
    failed: int = 0
    rounds: int = 0


class Allocator:
    """``await allocator.run()`` until cancelled; :meth:`round` does one pass."""

    def __init__(
        self,
        engine: AsyncEngine,
        topics: Topics,
        desk: CarrierDesk,
        *,
        actor: str,
        interval_s: float = 1.0,
        batch: int = 50,
        retry_base_s: float = 2.0,
        retry_cap_s: float = 300.0,
        floor: Floor | None = None,
    ) -> None:
        self.engine = engine
        self.topics = topics
        self.desk = desk
        self.actor = actor
        self.interval_s = interval_s
        self.batch = batch
        self.retry_base_s = retry_base_s
        self.retry_cap_s = retry_cap_s
        self.floor = floor  # with a floor, the carrier's label is printed once booked
        self.stats = AllocationStats()
        # order id -> (failures so far, monotonic time of the next attempt)
        self._backoff: dict[str, tuple[int, float]] = {}

    async def run(self) -> None:
        while True:
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database away: try again next round
                log.warning("allocation round failed: %s", exc)
            await asyncio.sleep(self.interval_s)

    async def round(self) -> int:
        """Allocate the packed orders that are due; returns how many got a carrier."""
        self.stats.rounds += 1
        now = time.monotonic()
        done = 0
        for order_id in await self._packed():
            failures, not_before = self._backoff.get(order_id, (0, 0.0))
            if not_before > now:
                continue
            try:
                await allocate_order(
                    self.engine,
                    self.topics,
                    order_id,
                    desk=self.desk,
                    actor=self.actor,
                    parcel=await self._measured(order_id),
                )
            except Conflict:
                # Moved on meanwhile (cancelled, allocated by a dispatcher or by another
                # controller): nothing left to do here.
                self._backoff.pop(order_id, None)
                continue
            except DatabaseUnavailable:
                raise
            except WcsError as exc:
                self.stats.failed += 1
                if failures == 0 and isinstance(exc, NoCarrierAvailable):
                    await self._no_carrier_alert(order_id, exc.message)
                delay = min(self.retry_base_s * 2**failures, self.retry_cap_s)
                self._backoff[order_id] = (failures + 1, time.monotonic() + delay)
                log.warning("order %s not allocated (%s); retry in %.0fs", order_id, exc, delay)
                continue
            self._backoff.pop(order_id, None)
            self.stats.allocated += 1
            done += 1
            await self._print_carrier_label(order_id)
        return done

    async def _print_carrier_label(self, order_id: str) -> None:
        """The carrier's own label at the outbound or pack station (wcs.services.labels)."""
        if self.floor is None:
            return
        try:
            await print_carrier_label(
                self.engine, self.topics, self.floor, order_id, actor=self.actor
            )
        except (WcsError, DatabaseUnavailable) as exc:
            # Booked all the same: a supervisor reprints the label once this is fixed.
            log.warning("carrier label of order %s not printed: %s", order_id, exc)

    async def _packed(self) -> list[str]:
        async with self.engine.connect() as conn:
            rows = await conn.scalars(
                select(orders.c.id)
                .where(orders.c.state == OrderState.PACKED)
                .order_by(orders.c.updated_at, orders.c.id)
                .limit(self.batch)
            )
            found = list(rows.all())
        # Forget orders that left `packed` some other way (cancelled, dispatcher).
        for order_id in set(self._backoff) - set(found):
            del self._backoff[order_id]
        return found

    async def _measured(self, order_id: str) -> Parcel | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(packages.c.measured_g, packages.c.carton)
                    .where(and_(packages.c.order_id == order_id, packages.c.state == "packed"))
                    .order_by(packages.c.updated_at.desc())
                    .limit(1)
                )
            ).first()
        dims = CARTON_DIMS.get(row.carton) if row is not None else None
        if row is None or not row.measured_g or dims is None:
            return None
        return Parcel(float(row.measured_g), (float(dims[0]), float(dims[1]), float(dims[2])))

    async def _no_carrier_alert(self, order_id: str, reason: str) -> None:
        async with transaction(self.engine) as conn:
            await raise_alert(
                conn,
                self.topics,
                code="carrier_booking_failed",
                severity="warning",
                message_text=(
                    f"order {order_id} is packed but no carrier takes it: {reason}. "
                    f"Allocate by hand (POST /api/v1/orders/{order_id}/allocate) with a "
                    "carrier that fits, or change the carrier rules"
                ),
                subject=order_id,
            )
