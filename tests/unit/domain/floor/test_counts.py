"""Cycle count rules (``wcs.domain.floor.counts``): judging, booking, the schedule."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.domain.floor.legal import of
from wcs.domain.floor import counts
from wcs.domain.floor.counts import (
    Book,
    Count,
    CountClosed,
    CountPolicy,
    Held,
    Pile,
    RecountBySameCounter,
    accept,
    judge,
    to_release,
)
from wcs.domain.floor.effects import Adjust, Alert, Record, SaveCount
from wcs.domain.floor.machines import CountState

POLICY = CountPolicy(recount_units=2, recount_pct=5.0)
T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)


def count(state: CountState = CountState.OPEN, **kw: object) -> Count:
    return Count(7, "SKU-A", "A-01-01-1", counts.ABC, state, **kw)  # type: ignore[arg-type]


def test_a_count_that_finds_the_book_closes_as_matched() -> None:
    done, effects = judge(count(), 12, "ann", Book(12, 3), POLICY)
    assert done.state == CountState.DONE
    assert of(Adjust, effects) == []
    assert of(SaveCount, effects)[0].result == counts.MATCHED
    assert of(Record, effects)[0].ok


def test_a_small_difference_is_booked_at_once_with_who_and_why() -> None:
    done, effects = judge(count(), 10, "ann", Book(12, 3, unit_value_minor=250), POLICY)
    assert done.state == CountState.DONE
    (adjust,) = of(Adjust, effects)
    assert adjust == Adjust(7, "SKU-A", "A-01-01-1", -2, 12, 10, counts.ABC, "ann", "ann", (), -500)
    assert of(SaveCount, effects)[0].result == counts.ADJUSTED
    assert not of(Record, effects)[0].ok


@pytest.mark.parametrize(
    ("book", "found", "recount"), [(12, 9, True), (100, 95, False), (100, 94, True)]
)
def test_the_threshold_is_units_or_a_share_of_the_book(
    book: int, found: int, recount: bool
) -> None:
    after, effects = judge(count(), found, "ann", Book(book, 0), POLICY)
    assert (after.state == CountState.RECOUNT) is recount
    assert bool(of(Adjust, effects)) is not recount


def test_a_big_difference_is_counted_again_by_someone_else() -> None:
    first, _ = judge(count(), 5, "ann", Book(12, 0), POLICY)
    assert first.state == CountState.RECOUNT and first.first_delta == -7 and first.first_by == "ann"
    with pytest.raises(RecountBySameCounter):
        judge(first, 5, "ann", Book(12, 0), POLICY)
    # Two units were picked between the counts: the same difference, confirmed.
    done, effects = judge(first, 3, "bob", Book(10, 0), POLICY)
    assert done.state == CountState.DONE
    (adjust,) = of(Adjust, effects)
    assert (adjust.delta, adjust.counted_by, adjust.book, adjust.counted) == (-7, "bob", 10, 3)


def test_a_recount_that_finds_the_book_closes_without_booking() -> None:
    first, _ = judge(count(), 5, "ann", Book(12, 0), POLICY)
    done, effects = judge(first, 12, "bob", Book(12, 0), POLICY)
    assert done.state == CountState.DONE and of(Adjust, effects) == []


def test_counts_that_disagree_go_to_a_supervisor_who_books_one() -> None:
    first, _ = judge(count(), 5, "ann", Book(12, 0), POLICY)
    review, effects = judge(first, 8, "bob", Book(12, 0), POLICY)
    assert review.state == CountState.REVIEW and of(Adjust, effects) == []
    with pytest.raises(CountClosed):
        judge(review, 8, "cid", Book(12, 0), POLICY)
    done, effects = accept(review, "sue", Book(12, 0))
    (adjust,) = of(Adjust, effects)
    assert (adjust.delta, adjust.counted_by, adjust.accepted_by) == (-4, "bob", "sue")
    assert done.state == CountState.DONE
    with pytest.raises(CountClosed):
        accept(done, "sue", Book(8, 0))


def test_a_supervisor_may_book_what_they_count_now() -> None:
    done, effects = accept(count(), "sue", Book(12, 0), qty=15)
    assert of(Adjust, effects)[0].delta == 3 and done.state == CountState.DONE
    with pytest.raises(CountClosed):
        accept(count(), "sue", Book(12, 0))  # nothing counted yet: nothing to accept


def test_fewer_units_than_reserved_release_the_newest_movable_reservations() -> None:
    held = (
        Held(1, "O-old", 3, movable=True),
        Held(2, "O-batch", 2, movable=False),
        Held(3, "O-new", 2, movable=True),
    )
    _, effects = judge(count(), 6, "ann", Book(8, 7, held), POLICY)
    (adjust,) = of(Adjust, effects)
    assert adjust.release == (3,)
    _, effects = judge(count(), 3, "ann", Book(4, 7, held), POLICY)
    assert of(Adjust, effects)[0].release == (3, 1)


def test_a_difference_that_would_strand_reservations_on_a_batch_waits_for_review() -> None:
    held = (Held(2, "O-batch", 5, movable=False),)
    review, effects = judge(count(), 3, "ann", Book(5, 5, held), POLICY)
    assert review.state == CountState.REVIEW and of(Adjust, effects) == []
    assert "being picked" in (review.note or "")
    with pytest.raises(CountClosed, match="being picked"):
        accept(review, "sue", Book(5, 5, held))
    # Once the batch has picked them, the supervisor books the difference.
    done, effects = accept(review, "sue", Book(5, 0))
    assert done.state == CountState.DONE and of(Adjust, effects)[0].delta == -2


def test_a_pile_adjusted_again_within_the_period_raises_an_alert() -> None:
    _, effects = judge(count(), 11, "ann", Book(12, 0, adjusted_recently=0), POLICY)
    assert of(Alert, effects) == []
    _, effects = judge(count(), 11, "ann", Book(12, 0, adjusted_recently=1), POLICY)
    (alert,) = of(Alert, effects)
    assert alert.code == "location_adjusted_twice" and alert.subject == "A-01-01-1"


held_lists = st.lists(st.tuples(st.integers(1, 6), st.booleans()), max_size=6).map(
    lambda xs: tuple(Held(n, f"O{n}", q, m) for n, (q, m) in enumerate(xs, 1))
)


@given(
    held=held_lists,
    free=st.integers(0, 10),
    found=st.integers(0, 30),
    first=st.integers(0, 30),
    recount=st.booleans(),
)
def test_booking_never_leaves_more_reserved_than_on_hand(
    held: tuple[Held, ...], free: int, found: int, first: int, recount: bool
) -> None:
    """Property: whatever is counted, a booked difference together with the
    reservations it releases leaves reserved <= on hand, releases only reservations
    that may move, and a count that cannot be booked so books nothing."""
    reserved = sum(h.qty for h in held)
    book = Book(reserved + free, reserved, held)
    start = count()
    if recount:
        start, _ = judge(start, first, "ann", book, POLICY)
    if start.state != CountState.RECOUNT and recount:
        return
    after, effects = judge(start, found, "bob", book, POLICY)
    adjusts = of(Adjust, effects)
    assert len(adjusts) <= 1
    if adjusts:
        (adjust,) = adjusts
        released = [h for h in held if h.reservation_id in adjust.release]
        assert all(h.movable for h in released)
        assert len(released) == len(adjust.release)
        assert reserved - sum(h.qty for h in released) <= book.on_hand + adjust.delta
        assert adjust.book + adjust.delta == adjust.counted == found
        assert after.state == CountState.DONE
    else:
        assert after.state in (CountState.DONE, CountState.RECOUNT, CountState.REVIEW)
        if after.state == CountState.DONE:
            assert found == book.on_hand


@given(held=held_lists, on_hand=st.integers(0, 40))
def test_release_is_minimal_newest_first(held: tuple[Held, ...], on_hand: int) -> None:
    reserved = sum(h.qty for h in held)
    chosen = to_release(held, on_hand, reserved)
    movable = [h for h in reversed(held) if h.movable]
    if reserved <= on_hand:
        assert chosen == ()
    elif sum(h.qty for h in movable) < reserved - on_hand:
        assert chosen is None
    else:
        assert chosen is not None
        assert list(chosen) == movable[: len(chosen)]
        # Without its last one, the release would not be enough.
        assert reserved - sum(h.qty for h in chosen[:-1]) > on_hand


# --- the ABC schedule -----------------------------------------------------------------


def test_classes_follow_the_share_of_units_picked() -> None:
    picked = {"A1": 500, "A2": 300, "B1": 100, "B2": 50, "C1": 40, "C2": 10}
    klass = counts.classes(picked, [*picked, "NEVER"], POLICY)
    assert klass == {
        "A1": "A",
        "A2": "A",
        "B1": "B",
        "B2": "B",
        "C1": "C",
        "C2": "C",
        "NEVER": "C",
    }


@given(
    picked=st.dictionaries(
        st.sampled_from([f"S{n}" for n in range(8)]), st.integers(0, 500), min_size=1
    ),
    offsets=st.lists(st.integers(0, 7 * 24), min_size=8, max_size=8),
)
def test_every_pile_is_counted_once_a_period_and_fast_movers_more_often(
    picked: dict[str, int], offsets: list[int]
) -> None:
    """Property: a station that counts what is due every hour for two periods counts
    every pile at least once in any period-long window, and an A pile at least as
    often as a C pile."""
    policy = CountPolicy(period_s=7 * 24 * 3600.0)
    skus = [f"S{n}" for n in range(8)]
    klass = counts.classes(picked, skus, policy)
    last = {s: T0 - timedelta(hours=h) for s, h in zip(skus, offsets, strict=True)}
    done: dict[str, list[datetime]] = {s: [] for s in skus}
    now = T0
    end = T0 + timedelta(days=14)
    while now <= end:
        piles = [Pile(s, f"L-{s}", last[s]) for s in skus]
        for pile in counts.due(piles, klass, now, policy):
            last[pile.sku] = now
            done[pile.sku].append(now)
        now += timedelta(hours=1)
    period = timedelta(seconds=policy.period_s)
    for sku in skus:
        marks = [T0 - timedelta(hours=offsets[skus.index(sku)]), *done[sku], end]
        gaps = [b - a for a, b in itertools.pairwise(marks)]
        assert max(gaps) <= period + timedelta(hours=1), (sku, klass[sku])
    a = [len(done[s]) for s in skus if klass[s] == "A"]
    c = [len(done[s]) for s in skus if klass[s] == "C"]
    if a and c:
        assert min(a) >= max(c)


def test_due_piles_come_most_overdue_first() -> None:
    klass = {"X": "A", "Y": "C"}
    piles = [
        Pile("Y", "L-Y", T0 - timedelta(days=8)),
        Pile("X", "L-X", T0 - timedelta(days=3)),
        Pile("X", "L-X2", T0 - timedelta(hours=1)),
    ]
    assert [p.location for p in counts.due(piles, klass, T0, POLICY)] == ["L-X", "L-Y"]
