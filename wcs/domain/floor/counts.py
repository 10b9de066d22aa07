"""Cycle counts: when a pile is counted, what a count means, how the books follow.

A pile is the stock of one SKU at one location. The rules, as a stock controller
can check them by hand:

- **Triggers.** A pile is counted after a short pick or a mispick at its location,
  when its book reaches zero (an empty face is the cheapest count there is), on the
  ABC schedule, or when a supervisor asks. A pile has at most one open count.
- **ABC schedule.** SKUs are ranked by the units picked in the last period: the
  ones making the first 80 % of the units are A, the next 15 % B, the rest (and
  those never picked) C. A pile is due once its last count (or, never counted, its
  set-up) is older than the period divided by its class's counts per period (A 4,
  B 2, C 1): fast movers are counted more often, every pile at least once a period.
- **Blind.** The counter keys what is there; nobody counting is shown the book.
- **Judging.** The difference is ``counted - book``, the book taken when the count
  is keyed (so picks made between two counts do not look like a difference). No
  difference: matched. Within the tolerance (``max(units, pct of the book)``): the
  difference is booked at once. Above it: someone else counts again. A recount that
  finds the same difference confirms it (booked); one that finds none closes the
  count as matched; any other answer goes to a supervisor, who books a difference.
- **Booking.** Every booked difference is a ``stock_moves`` row and an audit row
  (pile, book, counted, difference, value, reason, who counted, who accepted,
  when). Booking never leaves more units reserved than on hand: when the counted
  units are fewer than those reserved there, reservations are released newest first
  until the rest fit and their orders are planned again (reserved elsewhere, or
  backordered). A reservation whose order is on an active batch cannot be moved
  while it is picked: then the count waits for a supervisor.
- **Alert.** A pile adjusted twice within the alert period raises
  ``location_adjusted_twice``: something keeps going wrong there.

Pure: the edge reads the book (``Book``) and the schedule's facts and applies the
effects; nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from wcs.domain.floor.effects import Adjust, Alert, Effect, Record, SaveCount
from wcs.domain.floor.machines import COUNT_MOVES, CountState, step
from wcs.errors import Conflict

# Why a count was opened.
SHORT_PICK = "short_pick"
MISPICK = "mispick"
ZERO = "zero"
ABC = "abc"
SUPERVISOR = "supervisor"
MOVE_SHORT = "move_short"
REASONS = (SHORT_PICK, MISPICK, ZERO, ABC, SUPERVISOR, MOVE_SHORT)

# What a finished count found (the ``result`` column).
MATCHED = "matched"
ADJUSTED = "adjusted"

CLASSES = ("A", "B", "C")
OPEN_STATES = (CountState.OPEN, CountState.COUNTING, CountState.RECOUNT, CountState.REVIEW)


class RecountBySameCounter(Conflict):
    code = "recount_by_same_counter"


class CountClosed(Conflict):
    code = "count_closed"


@dataclass(frozen=True, slots=True)
class CountPolicy:
    """When a difference needs a second counter, and how the ABC schedule runs."""

    recount_units: int = 2
    recount_pct: float = 5.0
    period_s: float = 7 * 24 * 3600.0
    per_period: Mapping[str, int] = field(default_factory=lambda: {"A": 4, "B": 2, "C": 1})
    a_share: float = 0.8
    b_share: float = 0.95

    def tolerance(self, book: int) -> int:
        """The largest difference booked without a recount."""
        return max(self.recount_units, math.floor(max(book, 0) * self.recount_pct / 100))

    def interval(self, klass: str) -> timedelta:
        return timedelta(seconds=self.period_s / max(self.per_period.get(klass, 1), 1))


@dataclass(frozen=True, slots=True)
class Count:
    id: int
    sku: str
    location: str
    reason: str
    state: CountState = CountState.OPEN
    # The difference the first count found and who made it (a recount must be
    # someone else's); the latest difference, for a supervisor's review.
    first_delta: int | None = None
    first_by: str | None = None
    last_delta: int | None = None
    last_by: str | None = None
    note: str | None = None
    # Counting at a pick station: the slot that shows it, the location's label
    # scanned, the units scanned so far (shown on the slot: never the book).
    panel: str | None = None
    slot: int | None = None
    located: bool = False
    units: int = 0

    def moved(self, state: CountState) -> Count:
        return replace(self, state=step(COUNT_MOVES, f"count {self.id}", self.state, state))

    def saved(self, result: str | None = None, counted: int | None = None) -> SaveCount:
        return SaveCount(
            self.id,
            self.state,
            self.first_delta,
            self.first_by,
            self.last_delta,
            self.last_by,
            result,
            counted,
            self.note,
        )


@dataclass(frozen=True, slots=True)
class Held:
    """An active reservation at the pile, as the books know it."""

    reservation_id: int
    order_id: str
    qty: int
    movable: bool  # its order can be planned again (not on an active batch)


@dataclass(frozen=True, slots=True)
class Book:
    """The pile as the books have it when a count is keyed."""

    on_hand: int
    reserved: int
    held: tuple[Held, ...] = ()  # oldest first
    unit_value_minor: int | None = None
    adjusted_recently: int = 0  # adjustments of the pile within the alert period


def to_release(held: Sequence[Held], on_hand: int, reserved: int) -> tuple[Held, ...] | None:
    """The reservations to release so that ``reserved <= on_hand`` holds again: newest
    first, movable ones only; None when those are not enough."""
    need = reserved - on_hand
    if need <= 0:
        return ()
    chosen: list[Held] = []
    for h in reversed(held):
        if need <= 0:
            break
        if h.movable and h.qty > 0:
            chosen.append(h)
            need -= h.qty
    return tuple(chosen) if need <= 0 else None


def judge(
    count: Count,
    qty: int,
    by: str,
    book: Book,
    policy: CountPolicy,
) -> tuple[Count, list[Effect]]:
    """A count keyed: ``qty`` units found by ``by``; the book as it is now."""
    if count.state in (CountState.DONE, CountState.CANCELLED):
        raise CountClosed(f"count {count.id} is {count.state}")
    if count.state == CountState.REVIEW:
        raise CountClosed(f"count {count.id} waits for a supervisor: accept a difference")
    if qty < 0:
        raise ValueError("a count cannot find fewer than no units")
    delta = qty - book.on_hand
    recount = count.state == CountState.RECOUNT
    if recount and by == count.first_by:
        raise RecountBySameCounter(
            f"count {count.id}: the recount must be made by someone other than {by}"
        )
    counted = replace(count, last_delta=delta, last_by=by, panel=None, slot=None)
    if not recount:
        counted = replace(counted, first_delta=delta, first_by=by)
    effects: list[Effect] = [
        Record(
            "count",
            delta == 0,
            None,
            None,
            {
                "count_id": count.id,
                "sku": count.sku,
                "location": count.location,
                "difference": delta,
                "by": by,
                "recount": recount,
            },
        )
    ]
    if delta == 0:
        done = counted.moved(CountState.DONE)
        return done, [*effects, done.saved(MATCHED, qty)]
    confirmed = recount and delta == count.first_delta
    if confirmed or (not recount and abs(delta) <= policy.tolerance(book.on_hand)):
        return _book(counted, qty, delta, book, counted_by=by, accepted_by=by, effects=effects)
    if recount:
        review = replace(counted.moved(CountState.REVIEW), note="the counts disagree")
        return review, [*effects, review.saved(None, qty)]
    again = counted.moved(CountState.RECOUNT)
    return again, [*effects, again.saved(None, qty)]


def accept(
    count: Count, by: str, book: Book, *, qty: int | None = None
) -> tuple[Count, list[Effect]]:
    """A supervisor books a difference: the one last found, or ``qty`` counted now."""
    if count.state in (CountState.DONE, CountState.CANCELLED):
        raise CountClosed(f"count {count.id} is {count.state}")
    if qty is not None:
        count = replace(count, last_delta=qty - book.on_hand, last_by=by)
    if count.last_delta is None:
        raise CountClosed(f"count {count.id} has not been counted yet: key a quantity")
    delta = count.last_delta
    counted = book.on_hand + delta
    if delta == 0:
        done = count.moved(CountState.DONE)
        return done, [done.saved(MATCHED, counted)]
    return _book(
        count,
        counted,
        delta,
        book,
        counted_by=count.last_by or by,
        accepted_by=by,
        effects=[],
        supervisor=True,
    )


def _book(
    count: Count,
    counted: int,
    delta: int,
    book: Book,
    *,
    counted_by: str,
    accepted_by: str,
    effects: list[Effect],
    supervisor: bool = False,
) -> tuple[Count, list[Effect]]:
    after = book.on_hand + delta
    if after < 0:
        raise ValueError("a difference cannot take a pile below zero")
    release = to_release(book.held, after, book.reserved)
    if release is None:
        note = (
            f"{book.reserved} units are reserved here, {after} counted, and the orders "
            "holding them are being picked: accept once their picks are done"
        )
        if count.state == CountState.REVIEW and supervisor:
            raise CountClosed(f"count {count.id}: {note}")
        review = replace(count.moved(CountState.REVIEW), note=note)
        return review, [*effects, review.saved(None, counted)]
    done = replace(count.moved(CountState.DONE), note=None)
    value = None if book.unit_value_minor is None else delta * book.unit_value_minor
    effects = [
        *effects,
        done.saved(ADJUSTED, counted),
        Adjust(
            count.id,
            count.sku,
            count.location,
            delta,
            book.on_hand,
            counted,
            count.reason,
            counted_by,
            accepted_by,
            tuple(h.reservation_id for h in release),
            value,
        ),
    ]
    if book.adjusted_recently >= 1:
        effects.append(
            Alert(
                "location_adjusted_twice",
                "warning",
                f"{count.location}: {count.sku} adjusted again ({delta:+d}) within the "
                "alert period; look for a cause at that location",
                count.location,
            )
        )
    return done, effects


# --- the ABC schedule -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pile:
    sku: str
    location: str
    last: datetime  # the last count closed there, or the pile's set-up
    on_hand: int = 0  # the book now (a pile just picked empty is counted)


def classes(picked: Mapping[str, int], skus: Iterable[str], policy: CountPolicy) -> dict[str, str]:
    """A, B or C per SKU by its share of the units picked (ties by SKU code)."""
    ranked = sorted(((n, s) for s, n in picked.items() if n > 0), key=lambda p: (-p[0], p[1]))
    total = sum(n for n, _ in ranked)
    result = dict.fromkeys(skus, "C")
    running = 0
    for n, sku in ranked:
        share = running / total  # the share of units of the SKUs ranked before it
        result[sku] = "A" if share < policy.a_share else "B" if share < policy.b_share else "C"
        running += n
    return result


def due(
    piles: Iterable[Pile], klass: Mapping[str, str], now: datetime, policy: CountPolicy
) -> list[Pile]:
    """The piles whose next scheduled count has come, most overdue first."""
    late: list[tuple[timedelta, Pile]] = []
    for pile in piles:
        over = now - pile.last - policy.interval(klass.get(pile.sku, "C"))
        if over >= timedelta(0):
            late.append((over, pile))
    late.sort(key=lambda p: (-p[0], p[1].location, p[1].sku))
    return [p for _, p in late]
