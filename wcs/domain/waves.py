"""Wave release: which reserved orders go to the floor now, and in what order.

The rule, as supervisors can check it by hand:

1. Latest release time. Orders with a carrier cut-off are lined up earliest cut-off
   first (then by urgency, ``wcs.domain.picking.urgency_key``). Picking of order ``k``
   must be done by ``cutoff_k - cutoff_lead`` (``cutoff_lead`` covers QC, packing and
   loading). When the floor's pick rate ``r`` (orders per hour) is known, the queue is
   priced in: working backwards from the last order, ``release_k = min(cutoff_k -
   lead, release_{k+1}) - 1/r``. Without a rate, ``release_k = cutoff_k - lead``.
2. Due orders. An order whose latest release time has come (``<= now``) is due; due
   orders lead the wave in cut-off order, whatever their priority.
3. The rest follow by urgency: priority (higher first), SLA deadline, cut-off, first
   come first served.
4. Cap. The wave takes orders in that sequence until ``max_orders``; if ``max_items``
   is set, an order that would exceed it is passed over for the next one that fits.
5. At risk. Due orders the cap held back, and orders whose cut-off cannot be made
   even if picked right now (``now + lead (+ 1/r) > cutoff``), are reported so the
   monitor can raise "SLA at risk" alerts; they are still released first next time.

Why this is peak-aware: in a peak the queue in front of each cut-off is long, so
rule 1 moves the release of every order on that collection earlier, by the time
the floor needs to work through the queue - the early release a supervisor would do
by hand. The cap keeps each wave what the floor can hold (carts, totes, put walls)
so a peak backlog goes out as a series of waves in cut-off order, not one flood.
Outside a peak the queue is short, release times sit close to ``cutoff - lead`` and
waves are filled by priority.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from wcs.domain.batching import Batch, BatchPolicy, build_batches
from wcs.domain.geometry import Layout
from wcs.domain.picking import PickOrder, urgency_key
from wcs.errors import ValidationFailed


@dataclass(frozen=True, slots=True)
class WavePolicy:
    max_orders: int = 200
    max_items: int | None = None
    # Time from "picked" to the truck: QC, packing, loading.
    cutoff_lead: timedelta = timedelta(minutes=45)
    # Orders the floor completes per hour; None leaves the queue out of rule 1.
    pick_rate_per_hour: float | None = None
    # Automatic release fires once this many orders wait, even if none is due.
    fill_orders: int = 40

    def __post_init__(self) -> None:
        if self.max_orders < 1:
            raise ValidationFailed("a wave must admit at least one order")
        if self.max_items is not None and self.max_items < 1:
            raise ValidationFailed("max_items must be positive when set")
        if self.pick_rate_per_hour is not None and self.pick_rate_per_hour <= 0:
            raise ValidationFailed("pick_rate_per_hour must be positive when set")
        if self.fill_orders < 1:
            raise ValidationFailed("fill_orders must be at least 1")


@dataclass(frozen=True, slots=True)
class WaveSelection:
    released: tuple[PickOrder, ...]  # in release order: the first is the most urgent
    held: tuple[PickOrder, ...]
    due: tuple[str, ...]  # order ids that had to be released now for their cut-off
    at_risk: tuple[str, ...]
    latest_release: Mapping[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WavePlan:
    selection: WaveSelection
    batches: tuple[Batch, ...]

    @property
    def distance_m(self) -> float:
        return sum(batch.distance_m for batch in self.batches)


def _cutoff_sequence(orders: Sequence[PickOrder]) -> list[tuple[PickOrder, datetime]]:
    """Orders that have a cut-off, earliest cut-off first, then by urgency."""
    with_cutoff = [(o, o.cutoff) for o in orders if o.cutoff is not None]
    return sorted(with_cutoff, key=lambda pair: (pair[1], urgency_key(pair[0])))


def _per_order(policy: WavePolicy) -> timedelta:
    rate = policy.pick_rate_per_hour
    return timedelta(hours=1 / rate) if rate else timedelta(0)


def latest_release_times(orders: Sequence[PickOrder], policy: WavePolicy) -> dict[str, datetime]:
    """Rule 1 of the module docstring, for every order that has a cut-off."""
    per_order = _per_order(policy)
    times: dict[str, datetime] = {}
    following: datetime | None = None
    for order, cutoff in reversed(_cutoff_sequence(orders)):
        finish_by = cutoff - policy.cutoff_lead
        if following is not None and following < finish_by:
            finish_by = following
        following = finish_by - per_order
        times[order.order_id] = following
    return times


def _check(orders: Sequence[PickOrder], now: datetime) -> None:
    if now.tzinfo is None:
        raise ValidationFailed("now must carry a time zone")
    ids = [o.order_id for o in orders]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise ValidationFailed(f"orders given twice: {', '.join(dupes)}", orders=dupes)


def select_wave(orders: Sequence[PickOrder], now: datetime, policy: WavePolicy) -> WaveSelection:
    """Choose the next wave from the reserved orders; see the module docstring."""
    _check(orders, now)
    release_at = latest_release_times(orders, policy)
    due_ids = {oid for oid, moment in release_at.items() if moment <= now}
    due = [o for o, _ in _cutoff_sequence(orders) if o.order_id in due_ids]
    rest = sorted((o for o in orders if o.order_id not in due_ids), key=urgency_key)

    released: list[PickOrder] = []
    held: list[PickOrder] = []
    items = 0
    for order in [*due, *rest]:
        fits_items = policy.max_items is None or items + order.items <= policy.max_items
        if len(released) < policy.max_orders and fits_items:
            released.append(order)
            items += order.items
        else:
            held.append(order)

    too_late = now + policy.cutoff_lead + _per_order(policy)
    held_ids = {o.order_id for o in held}
    at_risk = [
        o.order_id
        for o, cutoff in _cutoff_sequence(orders)
        if (o.order_id in due_ids and o.order_id in held_ids) or too_late > cutoff
    ]
    return WaveSelection(
        released=tuple(released),
        held=tuple(held),
        due=tuple(o.order_id for o in due),
        at_risk=tuple(at_risk),
        latest_release=release_at,
    )


def should_release(orders: Sequence[PickOrder], now: datetime, policy: WavePolicy) -> bool:
    """Automatic release: when an order is due, or enough orders wait to fill a wave."""
    if not orders:
        return False
    if len(orders) >= policy.fill_orders:
        return True
    return any(moment <= now for moment in latest_release_times(orders, policy).values())


def plan_wave(
    orders: Sequence[PickOrder],
    now: datetime,
    layouts: Mapping[str, Layout],
    wave_policy: WavePolicy | None = None,
    batch_policy: BatchPolicy | None = None,
) -> WavePlan:
    """Release a wave (``POST /waves``): select orders, batch them, route each batch."""
    selection = select_wave(orders, now, wave_policy or WavePolicy())
    batches = build_batches(selection.released, layouts, batch_policy or BatchPolicy())
    return WavePlan(selection, batches)
