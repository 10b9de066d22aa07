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


def _take(need: int, stock: list[Availability]) -> list[tuple[str, int]]:
    """Units for one need: one location that covers it all if any (fewest walks,
    smallest such pile first so big piles stay whole), else the biggest piles first."""
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
        for location, qty in _take(line.qty, piles):
            remaining[line.sku][location] -= qty
            allocations.append(Allocation(line.line_id, line.sku, location, qty))
    return Plan(tuple(allocations), ())
