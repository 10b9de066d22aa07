"""Order batching: invariants, a hand-checkable clustering, and the distance it saves."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.b_picking import generate_orders
from wcs.domain.batching import Batch, BatchPolicy, build_batches, order_by_order
from wcs.domain.geometry import Layout, Location
from wcs.domain.picking import PickLine, PickOrder
from wcs.domain.routing import exact_route, optimal_route
from wcs.errors import ValidationFailed

BLOCK = Layout(aisles=10, bays=30)
LAYOUTS = {"A": BLOCK}


def loc(aisle: int, bay: int, level: int = 1, zone: str = "A") -> Location:
    return Location(f"{zone}-{aisle:02d}-{bay:02d}-{level}", aisle, bay, level, zone)


def order(oid: str, *spots: tuple[int, int], qty: int = 1, zone: str = "A") -> PickOrder:
    lines = tuple(
        PickLine(n, f"SKU-{a}-{b}", qty, loc(a, b, zone=zone))
        for n, (a, b) in enumerate(spots, start=1)
    )
    return PickOrder(oid, lines)


def check_invariants(
    orders: list[PickOrder], batches: tuple[Batch, ...], policy: BatchPolicy
) -> None:
    rank = {o.order_id: n for n, o in enumerate(orders)}
    by_id = {o.order_id: o for o in orders}
    placed = [oid for b in batches for oid in b.orders]
    # each order in exactly one batch, never split
    assert sorted(placed) == sorted(rank)
    for number, batch in enumerate(batches, start=1):
        members = [by_id[oid] for oid in batch.orders]
        assert batch.number == number
        assert len(members) <= policy.max_orders
        assert batch.items == sum(o.items for o in members)
        assert batch.items <= policy.max_items or len(members) == 1
        # totes in release order; the first tote holds the batch's most urgent order
        assert [rank[oid] for oid in batch.orders] == sorted(rank[oid] for oid in batch.orders)
        # every location of its orders is a stop, once
        codes = {line.location.code for o in members for line in o.lines}
        assert sorted(batch.stops) == sorted(codes)
        assert batch.zones == tuple(sorted({z for o in members for z in o.zones}))
        assert math.isclose(batch.distance_m, sum(r.distance_m for r in batch.routes))
        # pick lists: one per order, all its lines, in walking order
        assert [pl.order_id for pl in batch.pick_lists] == list(batch.orders)
        assert [pl.tote for pl in batch.pick_lists] == list(range(1, len(members) + 1))
        walk = {code: n for n, code in enumerate(batch.stops)}
        for pick_list, member in zip(batch.pick_lists, members, strict=True):
            assert sorted(t.line for t in pick_list.tasks) == [ln.line for ln in member.lines]
            steps = [walk[t.location.code] for t in pick_list.tasks]
            assert steps == sorted(steps)
    # Priority: per zone group, each batch is opened by the most urgent order not yet
    # batched, and an order is never put ahead of ``window`` or more urgent ones.
    limit = len(orders) if policy.window is None else policy.window
    batch_of = {oid: b.number for b in batches for oid in b.orders}
    for zones in {o.zones for o in orders}:
        remaining = [o.order_id for o in orders if o.zones == zones]
        for batch in batches:
            if by_id[batch.orders[0]].zones != zones:
                continue
            assert batch.orders[0] == remaining[0]
            remaining = [oid for oid in remaining if oid not in batch.orders]
            for oid in batch.orders:
                overtaken = [
                    other
                    for other in remaining
                    if rank[other] < rank[oid] and batch_of[other] > batch.number
                ]
                assert len(overtaken) < limit
        assert remaining == []
    seeds = [rank[b.orders[0]] for b in batches]
    assert seeds == sorted(seeds)


def test_orders_cluster_by_aisle() -> None:
    # Release order alternates between the two ends of the block; carts of three put
    # the aisle 1 orders together and the aisle 10 orders together.
    orders = [
        order("o1", (1, 3)),
        order("o2", (10, 28)),
        order("o3", (1, 5)),
        order("o4", (10, 25)),
        order("o5", (1, 2), (1, 8)),
        order("o6", (10, 30)),
    ]
    policy = BatchPolicy(max_orders=3, max_items=10)
    batches = build_batches(orders, LAYOUTS, policy)
    assert [b.orders for b in batches] == [("o1", "o3", "o5"), ("o2", "o4", "o6")]
    # batch 1: up aisle 1 to bay 8 and back
    assert batches[0].distance_m == 16.0
    assert batches[0].stops == ("A-01-02-1", "A-01-03-1", "A-01-05-1", "A-01-08-1")
    check_invariants(orders, batches, policy)


def test_item_capacity_splits_carts() -> None:
    orders = [order("o1", (2, 2), qty=6), order("o2", (2, 3), qty=6), order("o3", (2, 4), qty=3)]
    batches = build_batches(orders, LAYOUTS, BatchPolicy(max_orders=8, max_items=10))
    assert [b.orders for b in batches] == [("o1", "o3"), ("o2",)]


def test_an_order_larger_than_a_cart_rides_alone() -> None:
    orders = [order("big", (3, 3), qty=50), order("small", (3, 4))]
    policy = BatchPolicy(max_orders=4, max_items=40)
    batches = build_batches(orders, LAYOUTS, policy)
    assert [b.orders for b in batches] == [("big",), ("small",)]
    check_invariants(orders, batches, policy)


def test_zones_are_not_mixed_and_multi_zone_batches_sum_their_routes() -> None:
    layouts = {"A": BLOCK, "B": Layout(aisles=4, bays=10)}
    a_only = order("a", (1, 4))
    b_only = order("b", (2, 2), zone="B")
    both = PickOrder(
        "ab", (PickLine(1, "x", 1, loc(1, 6)), PickLine(2, "y", 1, loc(1, 2, zone="B")))
    )
    batches = build_batches([a_only, b_only, both], layouts, BatchPolicy(max_orders=8))
    assert [(b.orders, b.zones) for b in batches] == [
        (("a",), ("A",)),
        (("b",), ("B",)),
        (("ab",), ("A", "B")),
    ]
    # zone A: up aisle 1 to bay 6 and back (12); zone B: up aisle 1 to bay 2 and back (4)
    assert batches[2].distance_m == 16.0
    assert batches[2].stops == ("A-01-06-1", "B-01-02-1")


def test_unknown_zone_and_duplicates_are_refused() -> None:
    with pytest.raises(ValidationFailed, match="no layout"):
        build_batches([order("x", (1, 1), zone="Z")], LAYOUTS)
    with pytest.raises(ValidationFailed, match="twice"):
        build_batches([order("x", (1, 1)), order("x", (1, 2))], LAYOUTS)
    with pytest.raises(ValidationFailed, match="outside"):
        build_batches([order("x", (11, 1))], LAYOUTS)


@st.composite
def waves(draw: st.DrawFn) -> list[PickOrder]:
    count = draw(st.integers(1, 30))
    spot = st.tuples(st.integers(1, 10), st.integers(1, 30))
    return [
        order(
            f"O{n:02d}",
            *draw(st.lists(spot, min_size=1, max_size=4, unique=True)),
            qty=draw(st.integers(1, 5)),
        )
        for n in range(count)
    ]


@settings(max_examples=60, deadline=None)
@given(
    waves(),
    st.integers(1, 6),
    st.integers(1, 25),
    st.sampled_from([None, 1, 3, 10]),
)
def test_batching_invariants(
    orders: list[PickOrder], max_orders: int, max_items: int, window: int | None
) -> None:
    policy = BatchPolicy(max_orders=max_orders, max_items=max_items, window=window)
    batches = build_batches(orders, LAYOUTS, policy)
    check_invariants(orders, batches, policy)
    assert build_batches(orders, LAYOUTS, policy) == batches  # deterministic


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10), st.integers(1, 30)), min_size=1, max_size=3))
def test_batch_routes_are_optimal(spots: list[tuple[int, int]]) -> None:
    orders = [order(f"O{n}", spot) for n, spot in enumerate(spots)]
    (batch,) = build_batches(orders, LAYOUTS, BatchPolicy(max_orders=8))
    best = exact_route(BLOCK, [line.location for o in orders for line in o.lines])
    assert math.isclose(batch.distance_m, best.distance_m)


def test_batched_and_routed_beats_order_by_order_s_shape() -> None:
    orders = generate_orders(random.Random(11), 120, BLOCK, "A")
    policy = BatchPolicy(max_orders=8, max_items=40)
    batches = build_batches(orders, LAYOUTS, policy)
    check_invariants(orders, batches, policy)
    baseline = sum(b.distance_m for b in order_by_order(orders, LAYOUTS, "s_shape"))
    batched = sum(b.distance_m for b in batches)
    assert batched <= 0.6 * baseline  # at least 40 % shorter
    # and the clustering is worth more than first-come carts routed just as well
    first_come = build_batches(orders, LAYOUTS, BatchPolicy(8, 40, window=1))
    assert batched < sum(b.distance_m for b in first_come)


def test_order_by_order_routes_each_order_alone() -> None:
    orders = [order("o1", (2, 5), (4, 25)), order("o2", (1, 20))]
    alone = order_by_order(orders, LAYOUTS, "s_shape")
    assert [b.orders for b in alone] == [("o1",), ("o2",)]
    # S-shape by hand: 3 + 31 + 6 + 31 + 9; then up aisle 1 to bay 20 and back
    assert [b.distance_m for b in alone] == [80.0, 40.0]
    assert (
        order_by_order(orders, LAYOUTS, "optimal")[1].distance_m
        == optimal_route(BLOCK, [loc(1, 20)]).distance_m
    )
