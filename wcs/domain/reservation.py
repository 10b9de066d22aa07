"""Reservation planning: which locations give the units of each order line.

Pure: it sees a snapshot of availability and returns a plan. The persistence layer
applies the plan with conditional updates (``reserved + q <= on_hand``) so a
concurrent reservation that got there first makes the plan fail instead of
overselling; the caller then re-plans from fresh numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Availability:
    location: str
    available: int
    walk_rank: int = 0  # lower = nearer the depot; breaks ties


@dataclass(frozen=True, slots=True)
class LineDemand:
    line_id: int
    sku: str
    qty: int


@dataclass(frozen=True, slots=True)
class Allocation:
    line_id: int
    sku: str
    location: str
    qty: int


@dataclass(frozen=True, slots=True)
class Shortage:
    sku: str
    wanted: int
    available: int

    @property
    def missing(self) -> int:
        return self.wanted - self.available


@dataclass(frozen=True, slots=True)
class Plan:
    allocations: tuple[Allocation, ...]
    shortages: tuple[Shortage, ...]

    @property
    def complete(self) -> bool:
        return not self.shortages


def take(need: int, stock: Sequence[Availability]) -> list[tuple[str, int]]:
    """Units for one need: one location that covers it all if any (fewest walks,
    smallest such pile first so big piles stay whole), else the biggest piles first.

    Intake's batched take on PostgreSQL (``wcs.persistence.intake_store``) applies this
    rule inside one SQL statement to a batch's total demand per SKU; a test holds the
    two to the same answers."""
    covering = [s for s in stock if s.available >= need]
    if covering:
        best = min(covering, key=lambda s: (s.available, s.walk_rank, s.location))
        return [(best.location, need)]
    taken: list[tuple[str, int]] = []
    for pile in sorted(stock, key=lambda s: (-s.available, s.walk_rank, s.location)):
        if need == 0:
            break
        qty = min(need, pile.available)
        if qty > 0:
            taken.append((pile.location, qty))
            need -= qty
    return taken


def plan_reservation(
    lines: Sequence[LineDemand], availability: Mapping[str, Sequence[Availability]]
) -> Plan:
    """All-or-nothing per order: a plan is either complete or lists every shortage."""
    remaining: dict[str, dict[str, int]] = {
        sku: {a.location: a.available for a in piles} for sku, piles in availability.items()
    }
    ranks = {(sku, a.location): a.walk_rank for sku, piles in availability.items() for a in piles}
    wanted: dict[str, int] = {}
    for line in lines:
        wanted[line.sku] = wanted.get(line.sku, 0) + line.qty
    shortages = tuple(
        Shortage(sku, qty, sum(remaining.get(sku, {}).values()))
        for sku, qty in sorted(wanted.items())
        if sum(remaining.get(sku, {}).values()) < qty
    )
    if shortages:
        return Plan((), shortages)
    allocations: list[Allocation] = []
    for line in lines:
        piles = [
            Availability(loc, avail, ranks[(line.sku, loc)])
            for loc, avail in remaining[line.sku].items()
            if avail > 0
        ]
        for location, qty in take(line.qty, piles):
            remaining[line.sku][location] -= qty
            allocations.append(Allocation(line.line_id, line.sku, location, qty))
    return Plan(tuple(allocations), ())


def distribute(
    orders: Sequence[Sequence[LineDemand]], held: Mapping[str, Sequence[Availability]]
) -> tuple[list[Plan], list[tuple[str, str, int]]]:
    """Share the units a batch of orders holds among them, in arrival order.

    ``held`` is what the batch has already taken from stock for its total demand (per
    SKU and location). Each order is planned all-or-nothing over what earlier orders
    left, so an order that cannot be completed takes nothing and a later, smaller one
    may still fit. Returns one plan per order and the units nobody got
    (sku, location, qty), to be given back to stock.
    """
    remaining: dict[str, dict[str, int]] = {}
    ranks: dict[tuple[str, str], int] = {}
    for sku, piles in held.items():
        pool = remaining.setdefault(sku, {})
        for pile in piles:
            pool[pile.location] = pool.get(pile.location, 0) + pile.available
            ranks[(sku, pile.location)] = pile.walk_rank
    plans: list[Plan] = []
    for lines in orders:
        snapshot = {
            sku: [
                Availability(loc, qty, ranks[(sku, loc)])
                for loc, qty in remaining.get(sku, {}).items()
                if qty > 0
            ]
            for sku in {line.sku for line in lines}
        }
        plan = plan_reservation(lines, snapshot)
        for alloc in plan.allocations:
            remaining[alloc.sku][alloc.location] -= alloc.qty
        plans.append(plan)
    leftover = [
        (sku, loc, qty) for sku, pool in remaining.items() for loc, qty in pool.items() if qty > 0
    ]
    return plans, leftover
