from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from wcs.domain.reservation import Availability, LineDemand, distribute, plan_reservation, take


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


# --- a batch's units shared among its orders (intake's group commit) ------------------

_orders = st.lists(
    st.lists(st.tuples(st.sampled_from("ABC"), st.integers(1, 5)), min_size=1, max_size=3),
    min_size=1,
    max_size=12,
)
_held = st.dictionaries(
    st.sampled_from("ABC"), st.lists(st.integers(1, 9), min_size=1, max_size=3), min_size=0
)


def _demands(orders: list[list[tuple[str, int]]]) -> list[list[LineDemand]]:
    return [
        [LineDemand(n, sku, qty) for n, (sku, qty) in enumerate(lines, start=1)] for lines in orders
    ]


@given(_orders, _held)
def test_distribute_hands_out_exactly_what_the_batch_holds(
    orders: list[list[tuple[str, int]]], piles: dict[str, list[int]]
) -> None:
    held = {
        sku: [Availability(f"{sku}{i}", q, i) for i, q in enumerate(qs)]
        for sku, qs in piles.items()
    }
    demands = _demands(orders)
    plans, leftover = distribute(demands, held)
    assert len(plans) == len(demands)
    given_out: dict[tuple[str, str], int] = {}
    for lines, plan in zip(demands, plans, strict=True):
        if plan.complete:  # all or nothing: each line exactly covered
            for line in lines:
                got = sum(a.qty for a in plan.allocations if a.line_id == line.line_id)
                assert got == line.qty
        else:
            assert plan.allocations == ()
        for a in plan.allocations:
            given_out[(a.sku, a.location)] = given_out.get((a.sku, a.location), 0) + a.qty
    for sku, loc, qty in leftover:
        given_out[(sku, loc)] = given_out.get((sku, loc), 0) + qty
    # Every unit held is either allocated or given back: never more, never fewer.
    assert given_out == {
        (sku, p.location): p.available for sku, ps in held.items() for p in ps if p.available
    }


@given(st.integers(0, 300), st.integers(1, 400))
def test_distribute_on_one_hot_sku_reserves_exactly_the_stock(stock: int, orders: int) -> None:
    """A flash sale in one batch: single units of one SKU, first come first served."""
    held = {"HOT": [Availability("L1", min(stock, orders))]} if min(stock, orders) else {}
    plans, leftover = distribute([[LineDemand(1, "HOT", 1)]] * orders, held)
    reserved = [p.complete for p in plans]
    assert sum(reserved) == min(stock, orders)
    assert reserved == sorted(reserved, reverse=True)  # the first orders get the units
    assert leftover == []


def test_distribute_lets_a_smaller_later_order_use_what_a_larger_one_could_not() -> None:
    held = {"A": [Availability("L1", 3)]}
    plans, leftover = distribute(
        [[LineDemand(1, "A", 2)], [LineDemand(1, "A", 2)], [LineDemand(1, "A", 1)]], held
    )
    assert [p.complete for p in plans] == [True, False, True]
    assert plans[1].shortages[0].missing == 1
    assert leftover == []


@given(st.lists(st.integers(0, 12), max_size=5), st.integers(1, 40))
def test_take_covers_from_one_pile_when_it_can(piles: list[int], need: int) -> None:
    stock = [Availability(f"L{i}", q, i) for i, q in enumerate(piles)]
    taken = take(need, stock)
    assert sum(q for _, q in taken) == min(need, sum(piles))
    if any(q >= need for q in piles):
        assert len(taken) == 1
        assert taken[0][1] == need
        sizes = {p.location: p.available for p in stock}
        assert sizes[taken[0][0]] == min(q for q in piles if q >= need)
