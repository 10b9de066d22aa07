"""Replenishment of pick faces from reserve locations.

A pick face is a pick location assigned to one SKU with a minimum and a maximum.
Reserve locations hold the bulk; their units are promised to orders like any others,
but nobody picks from a reserve shelf: an order whose units are reserved there waits
(it is not released into a wave) until a move brings them to its face. The rules:

- **When.** A face gets a move when its units (on the shelf plus those already on
  their way) fall below its minimum, or when orders wait for units held in reserve
  (the waiting demand reaches the SKU's primary face, the first of its faces).
- **How many.** The waiting demand not yet on its way, plus what fills the face up
  to its maximum.
- **From where.** Reserve piles holding waiting units first, then the fullest; a
  pile gives what it holds, less units on other moves and units reserved for orders
  that do not wait for a move.
- **Before the picks.** The face's pick station does its moves before its next
  batch (the orders that need them are released only once the units are there).
- **The reservations follow the units.** A move's units carry the waiting orders'
  reservations from the reserve pile to the face, oldest first, so those orders can
  be released; a move never leaves a pile with more reserved than on hand.
- **Short.** A move confirmed with fewer units than asked means the reserve held
  fewer: what was found moves, and the reserve pile is counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from wcs.domain.floor.effects import NewMove, SaveMove
from wcs.domain.floor.machines import MOVE_MOVES, MoveState, step

LOW = "min"  # the face fell below its minimum
DEMAND = "demand"  # orders wait for units in reserve


@dataclass(frozen=True, slots=True)
class Face:
    location: str
    sku: str
    min_qty: int
    max_qty: int
    on_hand: int
    reserved: int
    incoming: int = 0  # units of open moves to this face
    primary: bool = True  # receives the SKU's waiting demand


@dataclass(frozen=True, slots=True)
class Reserve:
    """A reserve pile of the face's SKU."""

    location: str
    on_hand: int
    reserved: int
    held: int = 0  # reserved units of orders waiting for a move
    outgoing: int = 0  # units of open moves from it

    @property
    def movable(self) -> int:
        return max(0, self.on_hand - self.outgoing - (self.reserved - self.held))


@dataclass(frozen=True, slots=True)
class Move:
    id: int
    sku: str
    src: str
    dst: str
    qty: int
    reason: str
    state: MoveState = MoveState.OPEN
    moved: int = 0
    # At a pick station: the face's slot, the source's label scanned, units scanned.
    panel: str | None = None
    slot: int | None = None
    fetched: bool = False

    @property
    def left(self) -> int:
        return self.qty - self.moved

    def moved_to(self, state: MoveState) -> Move:
        return replace(self, state=step(MOVE_MOVES, f"move {self.id}", self.state, state))

    def saved(self) -> SaveMove:
        return SaveMove(self.id, self.state, self.moved)


def plan(face: Face, reserves: Sequence[Reserve], waiting: int) -> list[NewMove]:
    """The moves a face needs now. ``waiting``: units of its SKU reserved in reserve
    for waiting orders and not on their way yet (counted at the primary face only)."""
    demand = max(0, waiting) if face.primary else 0
    level = face.on_hand + face.incoming
    if demand == 0 and level >= face.min_qty:
        return []
    want = demand + max(0, face.max_qty - level)
    moves: list[NewMove] = []
    for pile in sorted(reserves, key=lambda r: (-(r.held - r.outgoing), -r.movable, r.location)):
        if want <= 0:
            break
        qty = min(want, pile.movable)
        if qty > 0:
            reason = DEMAND if demand > 0 else LOW
            moves.append(NewMove(face.sku, pile.location, face.location, qty, reason))
            want -= qty
    return moves


@dataclass(frozen=True, slots=True)
class Carry:
    booked: int  # units the books move (at most what the pile can give up)
    reservations: tuple[tuple[int, int], ...]  # (reservation id, units carried)


def carry(moved: int, held: Sequence[tuple[int, int]], on_hand: int, reserved: int) -> Carry:
    """Which reservations go with ``moved`` units leaving a reserve pile.

    ``held``: the reservations of waiting orders there, (id, units), oldest first;
    the rest of ``reserved`` belongs to orders that do not wait for a move. The books
    move at most what the pile holds beyond those; the waiting orders' reserved units
    go with the moved ones, oldest first (the last one split if need be), so that
    neither pile is left with more reserved than on hand."""
    waiting = sum(q for _, q in held)
    booked = max(0, min(moved, on_hand - (reserved - waiting)))
    left = booked
    carried: list[tuple[int, int]] = []
    for rid, qty in held:
        if left <= 0:
            break
        take = min(qty, left)
        if take > 0:
            carried.append((rid, take))
            left -= take
    return Carry(booked, tuple(carried))
