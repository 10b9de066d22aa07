"""Replenishment rules (``wcs.domain.floor.replenish``): when, how many, from where,
and which reservations go with the units."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wcs.domain.floor import replenish
from wcs.domain.floor.effects import NewMove
from wcs.domain.floor.replenish import Face, Reserve, carry, plan


def face(on_hand: int, *, incoming: int = 0, primary: bool = True) -> Face:
    return Face("A-01-01-1", "SKU-A", 4, 20, on_hand, 0, incoming, primary)


def test_a_face_at_or_above_its_minimum_with_nobody_waiting_needs_nothing() -> None:
    assert plan(face(4), [Reserve("R-1", 100, 0)], 0) == []


def test_a_face_below_its_minimum_is_filled_up_to_its_maximum() -> None:
    assert plan(face(3), [Reserve("R-1", 100, 0)], 0) == [
        NewMove("SKU-A", "R-1", "A-01-01-1", 17, replenish.LOW)
    ]


def test_units_already_on_their_way_count_as_there() -> None:
    assert plan(face(1, incoming=10), [Reserve("R-1", 100, 0)], 0) == []


def test_waiting_orders_get_their_units_plus_the_fill() -> None:
    moves = plan(face(10), [Reserve("R-1", 100, 6, held=6)], 6)
    assert moves == [NewMove("SKU-A", "R-1", "A-01-01-1", 16, replenish.DEMAND)]
    # Only the SKU's primary face takes the waiting demand.
    assert plan(face(10, primary=False), [Reserve("R-1", 100, 6, held=6)], 6) == []


def test_moves_come_from_the_piles_holding_waiting_units_first_then_the_fullest() -> None:
    reserves = [Reserve("R-1", 50, 0), Reserve("R-2", 5, 5, held=5), Reserve("R-3", 8, 0)]
    moves = plan(face(0), reserves, 5)
    assert [(m.src, m.qty) for m in moves] == [("R-2", 5), ("R-1", 20)]


def test_units_promised_to_orders_that_do_not_wait_stay() -> None:
    # R-1 holds 10, of which 8 are reserved for an order picking from there directly.
    assert [m.qty for m in plan(face(0), [Reserve("R-1", 10, 8)], 0)] == [2]
    assert plan(face(0), [Reserve("R-1", 10, 10)], 0) == []


@given(
    on_hand=st.integers(0, 30),
    incoming=st.integers(0, 10),
    waiting=st.integers(0, 20),
    piles=st.lists(
        st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(0, 40), st.integers(0, 40)),
        max_size=4,
    ),
)
def test_a_plan_never_takes_more_than_a_pile_may_give(
    on_hand: int, incoming: int, waiting: int, piles: list[tuple[int, int, int, int]]
) -> None:
    reserves = []
    for n, (a, b, c, d) in enumerate(piles):
        on, res = max(a, b), min(a, b)
        held = min(c, res)
        reserves.append(Reserve(f"R-{n}", on, res, held, min(d, on - (res - held))))
    the_face = face(on_hand, incoming=incoming)
    moves = plan(the_face, reserves, waiting)
    by_src = {r.location: r for r in reserves}
    assert all(m.qty > 0 and m.qty <= by_src[m.src].movable for m in moves)
    assert len({m.src for m in moves}) == len(moves)
    total = sum(m.qty for m in moves)
    want = waiting + max(0, the_face.max_qty - on_hand - incoming)
    if waiting or on_hand + incoming < the_face.min_qty:
        assert total == min(want, sum(r.movable for r in reserves))
    else:
        assert moves == []


@given(
    moved=st.integers(0, 60),
    held=st.lists(st.integers(1, 10), max_size=5),
    others=st.integers(0, 20),
    free=st.integers(0, 20),
    face_on_hand=st.integers(0, 30),
    face_reserved=st.integers(0, 30),
)
def test_every_unit_moved_is_conserved_and_both_piles_stay_consistent(
    moved: int,
    held: list[int],
    others: int,
    free: int,
    face_on_hand: int,
    face_reserved: int,
) -> None:
    """Property: the units leaving the reserve are the units arriving at the face,
    reserved units move with them (never more than moved, never a reservation split
    into more than it was), and neither pile ends with more reserved than on hand."""
    face_reserved = min(face_reserved, face_on_hand)
    reservations = [(n, q) for n, q in enumerate(held, 1)]
    reserved = sum(held) + others
    on_hand = reserved + free
    result = carry(moved, reservations, on_hand, reserved)
    carried = sum(q for _, q in result.reservations)
    src = (on_hand - result.booked, reserved - carried)
    dst = (face_on_hand + result.booked, face_reserved + carried)
    # Conservation: what one pile loses the other gains, units and reservations both.
    assert src[0] + dst[0] == on_hand + face_on_hand
    assert src[1] + dst[1] == reserved + face_reserved
    assert 0 <= result.booked <= moved
    assert carried <= result.booked
    assert 0 <= src[1] <= src[0] and 0 <= dst[1] <= dst[0]
    limits = dict(reservations)
    assert all(0 < q <= limits[rid] for rid, q in result.reservations)
    # Oldest first: only the last carried reservation may be carried in part.
    ids = [rid for rid, _ in result.reservations]
    assert ids == list(range(1, len(ids) + 1))
    assert all(q == limits[rid] for rid, q in result.reservations[:-1])
    # As much of the waiting orders' units go as the move allows.
    assert carried == min(result.booked, sum(held))
    # The books move all that was moved unless the pile's book cannot give it.
    assert result.booked == min(moved, on_hand - others)
