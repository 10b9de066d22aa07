from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from wcs.domain.reservation import Availability, LineDemand, plan_reservation


def test_one_location_covering_the_line_is_preferred() -> None:
    plan = plan_reservation(
        [LineDemand(1, "A", 3)],
        {"A": [Availability("L1", 2), Availability("L2", 10), Availability("L3", 4)]},
    )
    assert plan.complete
    assert [(a.location, a.qty) for a in plan.allocations] == [("L3", 3)]


def test_split_across_locations_biggest_first() -> None:
    plan = plan_reservation(
        [LineDemand(1, "A", 7)], {"A": [Availability("L1", 2), Availability("L2", 5)]}
    )
    assert [(a.location, a.qty) for a in plan.allocations] == [("L2", 5), ("L1", 2)]


def test_shortage_reserves_nothing_and_names_every_short_sku() -> None:
    plan = plan_reservation(
        [LineDemand(1, "A", 2), LineDemand(2, "B", 5), LineDemand(3, "C", 1)],
        {"A": [Availability("L1", 9)], "B": [Availability("L2", 3)], "C": []},
    )
    assert not plan.complete
    assert plan.allocations == ()
    assert [(s.sku, s.missing) for s in plan.shortages] == [("B", 2), ("C", 1)]


@given(
    st.lists(st.tuples(st.sampled_from("ABC"), st.integers(1, 8)), min_size=1, max_size=5),
    st.dictionaries(
        st.sampled_from("ABC"),
        st.lists(st.integers(0, 6), max_size=4),
    ),
)
def test_plan_never_exceeds_availability(
    lines: list[tuple[str, int]], piles: dict[str, list[int]]
) -> None:
    availability = {
        sku: [Availability(f"{sku}{i}", q) for i, q in enumerate(qs)] for sku, qs in piles.items()
    }
    demand = [LineDemand(i, sku, qty) for i, (sku, qty) in enumerate(lines)]
    plan = plan_reservation(demand, availability)
    taken: dict[str, int] = {}
    for a in plan.allocations:
        taken[a.location] = taken.get(a.location, 0) + a.qty
    for piles_ in availability.values():
        for pile in piles_:
            assert taken.get(pile.location, 0) <= pile.available
    if plan.complete:
        for line in demand:
            assert sum(a.qty for a in plan.allocations if a.line_id == line.line_id) == line.qty
    else:
        assert plan.allocations == ()


class StockMachine(RuleBasedStateMachine):
    """Orders, receipts and cancellations in any order: stock never goes negative,
    reserved never exceeds on hand, and every unit is accounted for."""

    def __init__(self) -> None:
        super().__init__()
        self.on_hand = {"L1": 5, "L2": 3}
        self.reserved = {"L1": 0, "L2": 0}
        self.received = 8
        self.orders: dict[int, list[tuple[str, int]]] = {}
        self.next_id = 0

    def _availability(self) -> dict[str, list[Availability]]:
        return {
            "A": [Availability(loc, self.on_hand[loc] - self.reserved[loc]) for loc in self.on_hand]
        }

    @rule(qty=st.integers(1, 6))
    def order(self, qty: int) -> None:
        plan = plan_reservation([LineDemand(1, "A", qty)], self._availability())
        if plan.complete:
            self.next_id += 1
            self.orders[self.next_id] = [(a.location, a.qty) for a in plan.allocations]
            for a in plan.allocations:
                self.reserved[a.location] += a.qty

    @rule(loc=st.sampled_from(["L1", "L2"]), qty=st.integers(1, 4))
    def receive(self, loc: str, qty: int) -> None:
        self.on_hand[loc] += qty
        self.received += qty

    @precondition(lambda self: bool(self.orders))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.orders)))
        for loc, qty in self.orders.pop(order_id):
            self.reserved[loc] -= qty

    @invariant()
    def never_oversold(self) -> None:
        for loc in self.on_hand:
            assert 0 <= self.reserved[loc] <= self.on_hand[loc]
        held = sum(q for allocs in self.orders.values() for _, q in allocs)
        assert held == sum(self.reserved.values())
        assert sum(self.on_hand.values()) == self.received


TestStockMachine = StockMachine.TestCase
TestStockMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
