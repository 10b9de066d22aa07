"""Routes: hand-worked S-shape and largest-gap walks, and the dynamic programme checked
against an exact Held-Karp optimum on random small instances.

Default block, 10 aisles x 30 bays: aisles 3 m apart, bay b at y = b, aisle length 31,
depot at the front of aisle 1.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wcs.domain import routing
from wcs.domain.geometry import Layout, Location, PickPoint
from wcs.domain.routing import (
    EXACT_MAX_POINTS,
    Route,
    exact_route,
    group_stops,
    largest_gap_route,
    optimal_distance,
    optimal_route,
    route,
    s_shape_route,
    tour_length,
)
from wcs.errors import ValidationFailed

BLOCK = Layout(aisles=10, bays=30)


def locs(*points: tuple[int, int]) -> list[Location]:
    return [Location(f"A-{a:02d}-{b:02d}-1", a, b) for a, b in points]


def points_of(found: Route) -> list[tuple[int, int]]:
    return [(s.point.aisle, s.point.bay) for s in found.stops]


# --- S-shape by hand --------------------------------------------------------------------


def test_s_shape_single_aisle_is_a_return() -> None:
    # depot -> up aisle 1 to bay 20 -> back: 20 + 20
    found = s_shape_route(BLOCK, locs((1, 20), (1, 10)))
    assert found.distance_m == 40.0
    assert points_of(found) == [(1, 10), (1, 20)]


def test_s_shape_even_number_of_aisles() -> None:
    # front 1->2: 3; aisle 2 up: 31; back 2->4: 6; aisle 4 down: 31; front 4->1: 9
    found = s_shape_route(BLOCK, locs((4, 25), (2, 5)))
    assert found.distance_m == 80.0
    assert points_of(found) == [(2, 5), (4, 25)]


def test_s_shape_odd_number_of_aisles_returns_in_the_last() -> None:
    # aisle 1 up: 31; back 1->3: 6; aisle 3 down: 31; front 3->6: 9;
    # aisle 6 up to bay 12 and back: 24; front 6->1: 15
    found = s_shape_route(BLOCK, locs((1, 3), (3, 7), (6, 12), (6, 4)))
    assert found.distance_m == 116.0
    assert points_of(found) == [(1, 3), (3, 7), (6, 4), (6, 12)]


def test_s_shape_walks_down_in_reverse_bay_order() -> None:
    found = s_shape_route(BLOCK, locs((1, 2), (1, 9), (2, 3), (2, 28), (2, 14)))
    assert points_of(found) == [(1, 2), (1, 9), (2, 28), (2, 14), (2, 3)]
    assert found.distance_m == 31 + 3 + 31 + 3


def test_empty_route() -> None:
    for method in ("s_shape", "largest_gap", "optimal", "exact"):
        found = route(BLOCK, [], method)  # type: ignore[arg-type]
        assert found.stops == ()
        assert found.distance_m == 0.0
        assert found.waypoints == (BLOCK.depot,)


# --- largest gap and optimum by hand ----------------------------------------------------

GAP_CASE = ((1, 5), (3, 2), (3, 29), (5, 10))


def test_largest_gap_by_hand() -> None:
    # aisle 1 up: 31; back 1->3: 6; aisle 3 from the back to bay 29 and back: 4;
    # back 3->5: 6; aisle 5 down: 31; front 5->3: 6; aisle 3 from the front to bay 2
    # and back: 4; front 3->1: 6. The gap from bay 2 to bay 29 is never walked.
    found = largest_gap_route(BLOCK, locs(*GAP_CASE))
    assert found.distance_m == 94.0
    assert points_of(found) == [(1, 5), (3, 29), (5, 10), (3, 2)]


def test_optimal_by_hand() -> None:
    # Reaching (3, 29) needs two full aisles; traversing 1 and 5 (62) with the front and
    # back cross-aisles out to aisle 5 (24) and two short detours into aisle 3 (8) is
    # the cheapest: 94. S-shape pays 106 (31 + 6 + 31 + 6 + 20 + 12).
    assert optimal_route(BLOCK, locs(*GAP_CASE)).distance_m == 94.0
    assert s_shape_route(BLOCK, locs(*GAP_CASE)).distance_m == 106.0


def test_optimal_avoids_full_traversals_near_the_front() -> None:
    # up aisle 1 to bay 2 and back: 4; front 1->2: 3; up to bay 2 and back: 4; home: 3.
    # S-shape has to traverse both aisles: 31 + 3 + 31 + 3.
    picks = locs((1, 2), (2, 2))
    assert optimal_route(BLOCK, picks).distance_m == 14.0
    assert s_shape_route(BLOCK, picks).distance_m == 68.0
    assert largest_gap_route(BLOCK, picks).distance_m == 68.0


def test_optimal_single_aisle_far_right() -> None:
    # front to aisle 10: 27, up to bay 30: 30, then back the same way: 2 * 57 = 114;
    # the back way (traverse, 31 + 27 + 31 + 27 = 116) is longer.
    assert optimal_route(BLOCK, locs((10, 30))).distance_m == 114.0


# --- stops ------------------------------------------------------------------------------


def test_locations_at_one_point_make_one_stop() -> None:
    picks = [
        Location("A-02-05-3", 2, 5, 3),
        Location("A-02-05-1", 2, 5, 1),
        Location("B-side", 2, 5, 1),
        Location("A-03-01-1", 3, 1, 1),
        Location("A-02-05-1", 2, 5, 1),  # the same location twice
    ]
    found = optimal_route(BLOCK, picks)
    assert len(found.stops) == 2
    assert found.stops[0].codes == ("A-02-05-1", "B-side", "A-02-05-3")
    assert found.codes.count("A-02-05-1") == 1


def test_one_code_at_two_places_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="two places"):
        group_stops(BLOCK, [Location("X", 1, 1), Location("X", 1, 2)])


def test_location_outside_the_layout_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="outside"):
        optimal_route(BLOCK, [Location("X", 11, 1)])


def test_exact_route_refuses_large_instances() -> None:
    picks = [Location(f"L{i}", 1 + i % 10, 1 + i) for i in range(EXACT_MAX_POINTS + 1)]
    with pytest.raises(ValidationFailed, match="limited"):
        exact_route(BLOCK, picks)


# --- properties -------------------------------------------------------------------------


@st.composite
def instances(draw: st.DrawFn, max_points: int = 9) -> tuple[Layout, list[Location]]:
    layout = Layout(
        aisles=draw(st.integers(1, 7)),
        bays=draw(st.integers(1, 15)),
        aisle_spacing_m=draw(st.sampled_from([3.0, 0.5, 2.5, 8.0])),
        bay_spacing_m=draw(st.sampled_from([1.0, 0.8, 2.0])),
        cross_aisle_gap_m=draw(st.sampled_from([1.0, 0.0, 3.0])),
    )
    points = draw(
        st.lists(
            st.tuples(st.integers(1, layout.aisles), st.integers(1, layout.bays)),
            min_size=1,
            max_size=max_points,
        )
    )
    return layout, [Location(f"L{i}", a, b) for i, (a, b) in enumerate(points)]


def assert_well_formed(layout: Layout, found: Route, picks: list[Location]) -> None:
    """A real walk: depot to depot along aisles and cross-aisles, through every stop."""
    assert found.waypoints[0] == layout.depot
    assert found.waypoints[-1] == layout.depot
    assert math.isclose(found.distance_m, layout.polyline_length(found.waypoints))
    assert sorted(s.point for s in found.stops) == sorted({p.point for p in picks})
    assert sorted(found.codes) == sorted({p.code for p in picks})
    on_walk = set(found.waypoints)
    for stop in found.stops:
        assert layout.position(stop.point) in on_walk
    # Walking the stops in the given order never takes longer than the walk itself.
    assert tour_length(layout, [s.point for s in found.stops]) <= found.distance_m + 1e-9


@settings(max_examples=300, deadline=None)
@given(instances())
def test_dynamic_programme_equals_held_karp(case: tuple[Layout, list[Location]]) -> None:
    layout, picks = case
    best = exact_route(layout, picks)
    dp = optimal_route(layout, picks)
    assert math.isclose(dp.distance_m, best.distance_m, abs_tol=1e-9)
    assert math.isclose(optimal_distance(layout, [p.point for p in picks]), best.distance_m)
    # The stop order read off the Euler circuit is itself an optimal tour.
    assert math.isclose(tour_length(layout, [s.point for s in dp.stops]), dp.distance_m)
    for found in (best, dp):
        assert_well_formed(layout, found, picks)


@settings(max_examples=200, deadline=None)
@given(instances(max_points=40))
def test_heuristics_are_walks_and_never_beat_the_optimum(
    case: tuple[Layout, list[Location]],
) -> None:
    layout, picks = case
    best = optimal_route(layout, picks).distance_m
    for router in (s_shape_route, largest_gap_route):
        found = router(layout, picks)
        assert_well_formed(layout, found, picks)
        assert best <= found.distance_m + 1e-9


@settings(max_examples=200, deadline=None)
@given(instances(max_points=40))
def test_s_shape_length_formula(case: tuple[Layout, list[Location]]) -> None:
    """k aisles with picks, rightmost r: k full aisles and 2 (r - 1) spacings when k is
    even; when k is odd, k - 1 full aisles plus the return to the farthest pick of r."""
    layout, picks = case
    aisles = sorted({p.aisle for p in picks})
    k, r = len(aisles), aisles[-1]
    across = 2 * (r - 1) * layout.aisle_spacing_m
    if k % 2 == 0:
        expected = k * layout.aisle_length_m + across
    else:
        farthest = max(layout.y(p.bay) for p in picks if p.aisle == r)
        expected = (k - 1) * layout.aisle_length_m + 2 * farthest + across
    assert math.isclose(s_shape_route(layout, picks).distance_m, expected)


def test_routes_are_deterministic() -> None:
    picks = locs((3, 4), (7, 22), (1, 15), (7, 3), (9, 30), (2, 2), (5, 17))
    for router in (s_shape_route, largest_gap_route, optimal_route, exact_route):
        assert router(BLOCK, picks) == router(BLOCK, list(reversed(picks)))


def test_picks_sharing_a_point_with_another_do_not_change_the_route() -> None:
    base = locs((2, 5), (6, 20))
    more = [*base, Location("other-level", 2, 5, 4)]
    assert optimal_route(BLOCK, base).distance_m == optimal_route(BLOCK, more).distance_m
    assert points_of(optimal_route(BLOCK, more)) == points_of(optimal_route(BLOCK, base))


def test_point_order_is_by_pick_point() -> None:
    assert sorted(group_stops(BLOCK, locs((2, 3), (1, 9)))) == [PickPoint(1, 9), PickPoint(2, 3)]


def test_programme_reaches_exactly_the_six_classes_of_the_paper() -> None:
    """(U,U,1C), (E,0,1C), (0,E,1C), (E,E,1C), (E,E,2C), (0,0,0C) - and nothing else."""
    seen = {routing._EMPTY}
    todo = [routing._EMPTY]
    while todo:
        state = todo.pop()
        found: list[tuple[int, int, bool] | None] = [
            routing._vertical_next(state, op) for op in routing._VERTICAL_EDGES
        ]
        for ha, hb in routing._HORIZONTAL_COPIES:
            for depot_here in (True, False):
                found.append(routing._horizontal_next(state, ha, hb, depot_here))
        for nxt in found:
            if nxt is not None and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    odd, even = 1, 2
    assert seen == {
        (odd, odd, True),
        (even, 0, False),
        (0, even, False),
        (even, even, True),
        (even, even, False),
        (0, 0, False),
    }
