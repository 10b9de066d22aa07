"""The physical world of a simulated shift: slotting, shelves, totes, parcels, census."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from demo.shop import plan_orders
from device_sim.gs1 import is_valid
from device_sim.people import Pace, Rates
from device_sim.world import Drift, World, plan_slotting

LOCATIONS = [f"A-0{aisle}-0{bay}-1" for aisle in range(1, 5) for bay in range(1, 5)]


def test_slotting_fills_every_location_and_covers_demand() -> None:
    slotting = plan_slotting(LOCATIONS, expected_orders=300, seed=5)
    assert set(slotting.homes) == set(LOCATIONS)
    skus = {a.sku for a in slotting.articles}
    assert set(slotting.homes.values()) == skus
    assert all(is_valid(a.barcode) and len(a.barcode) == 13 for a in slotting.articles)
    # Real units weigh a little more or less than the catalogue says, never much.
    assert all(abs(a.true_weight_g / a.weight_g - 1) <= 0.015 for a in slotting.articles)
    assert any(a.true_weight_g != a.weight_g for a in slotting.articles)
    # Slow movers start with empty shelves; every other article is stocked for the shift.
    assert slotting.slow_movers and slotting.slow_movers < skus
    per_sku: Counter[str] = Counter()
    for location, qty in slotting.opening.items():
        per_sku[slotting.homes[location]] += qty
    for sku in skus:
        if sku in slotting.slow_movers:
            assert per_sku[sku] == 0
        else:
            assert per_sku[sku] >= 300 * 3 / len(slotting.fast_movers)
    # Some articles live in two places (a short pick can be re-planned elsewhere).
    assert any(len(slotting.locations_of(sku)) == 2 for sku in skus)


def test_slotting_and_orders_repeat_with_the_seed() -> None:
    one = plan_slotting(LOCATIONS, expected_orders=50, seed=3)
    assert one == plan_slotting(LOCATIONS, expected_orders=50, seed=3)
    assert one.homes != plan_slotting(LOCATIONS, expected_orders=50, seed=4).homes
    orders = plan_orders(50, one, seed=3)
    assert orders == plan_orders(50, one, seed=3)
    kinds = Counter(o.kind for o in orders)
    assert kinds["invalid"] >= 1 and kinds["backorder"] >= 1
    assert len({o.external_id for o in orders}) == 50
    slow = next(iter(one.slow_movers))
    for order in orders:
        skus = [line["sku"] for line in order.body["lines"]]
        assert len(skus) == len(set(skus))
        assert (slow in skus) == (order.kind == "backorder")


def test_units_are_never_created_or_lost() -> None:
    slotting = plan_slotting(LOCATIONS, expected_orders=20, seed=1)
    world = World(slotting, seed=1)
    location = sorted(loc for loc, qty in slotting.opening.items() if qty)[0]
    sku = world.shelves[location].sku
    world.put_away(location, 10)
    tote = world.empty_tote()
    tote.order_id = "o1"
    tote.units += world.take(location, 4)
    assert world.damage(location, 2) == 2
    census = world.census()[sku]
    assert (census.received, census.on_shelves, census.in_totes, census.damaged) == (10, 4, 4, 2)
    assert census.accounted == census.received
    # Units somebody holds but put nowhere are missing from the census ...
    loose = world.take(location, 100)
    assert len(loose) == 4 and world.shelves[location].units == 0
    assert world.census()[sku].accounted == 6
    # ... until they are back on their shelf.
    world.put_back(loose)
    assert world.shelves[location].units == 4
    parcel = world.seal(tote, "106141411234567897", "S")
    assert len(parcel.units) == 4 and not tote.units and parcel.order_id == "o1"
    census = world.census()[sku]
    assert (census.in_totes, census.in_parcels, census.accounted) == (0, 4, 10)
    # The emptied tote goes back on the stack and is handed out again.
    assert world.empty_tote().code == tote.code


def test_emptying_a_tote_that_holds_units_is_refused() -> None:
    world = World(plan_slotting(LOCATIONS, expected_orders=5, seed=1), seed=1)
    location = next(iter(world.shelves))
    world.put_away(location, 1)
    tote = world.empty_tote()
    tote.units += world.take(location, 1)
    with pytest.raises(ValueError, match="still holds"):
        world.return_tote(tote)


def test_decisions_are_keyed_not_sequenced() -> None:
    world = World(plan_slotting(LOCATIONS, expected_orders=5, seed=9), seed=9)
    first = [world.rng("pick", "SHOP-1", "SKU-001", 1).random() for _ in range(3)]
    # Same key, same draw, whatever was drawn in between.
    world.rng("pack", "SHOP-2", 1).random()
    assert first == [world.rng("pick", "SHOP-1", "SKU-001", 1).random() for _ in range(3)]
    assert world.rng("pick", "SHOP-1", "SKU-001", 2).random() != first[0]
    assert World(world.slotting, seed=10).rng("pick", "SHOP-1", "SKU-001", 1).random() != first[0]


def test_rates_and_pace_are_checked() -> None:
    with pytest.raises(ValueError, match="mispick"):
        Rates(mispick=1.5)
    with pytest.raises(ValueError, match="speed"):
        Pace(0)


def test_with_reserve_faces_hold_a_third_and_the_rest_waits_in_reserve() -> None:
    plain = plan_slotting(LOCATIONS, expected_orders=60, seed=5)
    slotting = plan_slotting(LOCATIONS, expected_orders=60, seed=5, reserve=True)
    assert not plain.faces and not plain.reserves
    # Every location of a stocked article is a face; slow movers have none.
    assert {f.location for f in slotting.faces} == {
        loc for loc, sku in plain.homes.items() if sku not in plain.slow_movers
    }
    for face in slotting.faces:
        assert 1 <= face.min_qty < face.max_qty and face.max_qty >= 6
        assert slotting.opening[face.location] <= face.max_qty
    # One reserve per stocked article, holding the rest: the same units as without.
    assert len(slotting.reserves) == len(slotting.fast_movers)
    for sku in slotting.fast_movers:
        assert sum(slotting.opening[loc] for loc in slotting.locations_of(sku)) == sum(
            plain.opening[loc] for loc in plain.locations_of(sku)
        )
        (back,) = [loc for loc in slotting.locations_of(sku) if loc in slotting.reserves]
        assert back.startswith("R-") and slotting.put_away_at(sku) == back
    slow = sorted(slotting.slow_movers)[0]
    assert slotting.put_away_at(slow) == slotting.locations_of(slow)[0]


def test_shelves_drift_unseen_and_every_unit_is_still_accounted_for() -> None:
    def stocked(seed: int) -> World:
        world = World(plan_slotting(LOCATIONS, expected_orders=60, seed=5, reserve=True), seed)
        for location, qty in sorted(world.slotting.opening.items()):
            if qty:
                world.put_away(location, qty)
        return world

    world = stocked(2)
    before = {loc: shelf.units for loc, shelf in world.shelves.items()}
    drifted = world.drift(Drift(lost=0.5, misplaced=0.5, most=0.5))
    assert any(d.to is None for d in drifted) and any(d.to is not None for d in drifted)
    # The same seed drifts the same shelves the same way.
    assert stocked(2).drift(Drift(lost=0.5, misplaced=0.5, most=0.5)) == drifted
    for location, shelf in world.shelves.items():
        assert shelf.units >= 0
        assert shelf.units - before[location] == world.drifted[location]
    for d in drifted:
        if d.to is not None:  # misplaced: to another location of the same article
            assert world.shelves[d.to].sku == d.sku != "" and d.to != d.location
        # at most half of what the shelf held then (its own units, and any put there)
        held = before[d.location] + sum(e.units for e in drifted if e.to == d.location)
        assert 1 <= d.units <= max(1, int(held * 0.5))
    # Lost units leave the shelves but not the census; misplaced ones stay on shelves.
    for sku, census in world.census().items():
        assert census.lost == sum(d.units for d in drifted if d.sku == sku and d.to is None)
        assert census.accounted == census.received
    assert World(world.slotting, 2).drift(Drift()) == []  # nothing stocked, nothing drifts
    with pytest.raises(ValueError, match="lost"):
        Drift(lost=2.0)


async def test_one_person_at_a_shelf_at_a_time() -> None:
    world = World(plan_slotting(LOCATIONS, expected_orders=5, seed=1), seed=1)
    a, b = sorted(world.shelves)[:2]
    order: list[str] = []

    async def person(name: str, *shelves: str) -> None:
        async with world.at_shelf(*shelves):
            order.append(f"{name} in")
            await asyncio.sleep(0.01)
            order.append(f"{name} out")

    # Taken in a fixed order whatever order they are named in: no two people deadlock.
    await asyncio.wait_for(
        asyncio.gather(person("p1", a, b), person("p2", b, a), person("p3", b)), 2
    )
    # Nobody was at a shelf while another stood there: every "in" is followed by its "out".
    assert len(order) == 6 and order[0] == "p1 in"
    for n in range(0, 6, 2):
        assert order[n + 1] == order[n].replace(" in", " out")
