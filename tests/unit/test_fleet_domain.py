"""Own-fleet planning, pure part and solver: plans are checked for every window, capacity
and shift, by ``check_plan`` and by a second, deliberately naive checker in this file
that recomputes travel from the coordinates (it shares no code with the planner)."""

from __future__ import annotations

import asyncio
import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wcs.domain.fleet import (
    Courier,
    GeoPoint,
    Instance,
    Plan,
    Route,
    Stop,
    TravelModel,
    Window,
    _fits,
    _insertions,
    _timed,
    build_instance,
    check_plan,
    haversine_m,
    nearest_neighbour,
    partition,
    repair,
    schedule_route,
    sub_instance,
    unassigned_reason,
)
from wcs.services.fleet import SolverOptions, run_solver, solve_in_process

H = 3600
DEPOT = GeoPoint(52.4370, 13.3860)
TRAVEL = TravelModel()


def naive_violations(
    couriers: list[Courier], stops: list[Stop], plan: Plan, travel: TravelModel
) -> list[str]:
    """Recompute a plan from scratch: own distance formula, own timing loop."""
    problems: list[str] = []
    by_id = {s.id: s for s in stops}
    fleet = {c.id: c for c in couriers}
    seen: list[str] = []
    for route in plan.routes:
        courier = fleet[route.courier_id]
        here, clock = courier.start, courier.shift.start
        grams = volume = 0
        for legs, stop_id in enumerate(route.stop_ids, start=1):
            stop = by_id[stop_id]
            seen.append(stop_id)
            # Spherical law of cosines: a different formula from the planner's haversine.
            a, b = here, stop.point
            cos_c = math.sin(math.radians(a.lat)) * math.sin(math.radians(b.lat)) + math.cos(
                math.radians(a.lat)
            ) * math.cos(math.radians(b.lat)) * math.cos(math.radians(b.lon - a.lon))
            metres = 6_371_008.8 * math.acos(max(-1.0, min(1.0, cos_c))) * travel.road_factor
            clock += metres / (travel.speed_kmh / 3.6)
            clock = max(clock, stop.window.start)
            # One second of slack per leg for the planner's whole-metre, whole-second legs.
            if clock > stop.window.end + legs:
                problems.append(f"{stop_id} late")
            clock += stop.service_s
            grams += stop.weight_g
            volume += stop.volume_cm3
            here = stop.point
        if grams > courier.capacity_g:
            problems.append(f"{route.courier_id} over weight")
        if volume > courier.capacity_cm3:
            problems.append(f"{route.courier_id} over volume")
        back = clock + haversine_m(here, courier.end) * travel.road_factor / (
            travel.speed_kmh / 3.6
        )
        if route.stop_ids and back > courier.shift.end + len(route.stop_ids) + 1:
            problems.append(f"{route.courier_id} overtime")
    if sorted(seen + list(plan.unassigned)) != sorted(by_id):
        problems.append("stops lost or duplicated")
    return problems


def random_day(
    rng: random.Random, n_stops: int, n_couriers: int, *, slots: float = 0.4
) -> tuple[list[Courier], list[Stop]]:
    couriers = [
        Courier(
            f"c{k}",
            capacity_g=rng.choice((40_000, 120_000, 400_000)),
            capacity_cm3=rng.choice((400_000, 2_000_000, 6_000_000)),
            shift=rng.choice((Window(8 * H, 16 * H), Window(11 * H, 19 * H))),
            start=DEPOT,
            end=rng.choice((DEPOT, GeoPoint(52.52, 13.40))),
        )
        for k in range(n_couriers)
    ]
    stops = []
    for i in range(n_stops):
        point = GeoPoint(52.45 + rng.random() * 0.15, 13.25 + rng.random() * 0.3)
        if rng.random() < slots:
            start = rng.choice((9, 11, 13, 15)) * H
            window = Window(start, start + 2 * H)
        else:
            window = Window(0, 48 * H)
        stops.append(
            Stop(f"s{i}", point, rng.randint(200, 25_000), rng.randint(1_000, 90_000), window, 180)
        )
    return couriers, stops


# -- the checker catches what it must ---------------------------------------------------


def _tiny() -> tuple[list[Courier], list[Stop], Instance]:
    couriers = [Courier("van", 10_000, 100_000, Window(8 * H, 12 * H), DEPOT, DEPOT)]
    stops = [
        Stop("a", GeoPoint(52.45, 13.39), 4_000, 30_000, Window(8 * H, 8 * H + 1800)),
        Stop("b", GeoPoint(52.47, 13.40), 4_000, 30_000, Window(0, 48 * H)),
        Stop("c", GeoPoint(52.50, 13.42), 4_000, 30_000, Window(0, 48 * H)),
    ]
    return couriers, stops, build_instance(couriers, stops, TRAVEL)


def test_check_plan_accepts_a_good_plan_and_names_each_broken_rule() -> None:
    couriers, stops, instance = _tiny()
    good = Plan((Route("van", ("a", "b")),), ("c",))
    assert check_plan(instance, good).ok
    assert naive_violations(couriers, stops, good, TRAVEL) == []

    def kinds(plan: Plan) -> set[str]:
        return {v.kind for v in check_plan(instance, plan).violations}

    assert kinds(Plan((Route("van", ("a", "b", "c")),))) == {"over_weight"}
    assert kinds(Plan((Route("van", ("b", "c", "a")),), ())) >= {"late", "over_weight"}
    assert kinds(Plan((Route("van", ("b", "a")),), ("c",))) == set()  # still in time
    assert kinds(Plan((Route("van", ("a",)),), ("b",))) == {"missing_stop"}
    assert kinds(Plan((Route("van", ("a", "a")),), ("b", "c"))) == {"duplicate_stop"}
    assert kinds(Plan((Route("van", ("a",)),), ("a", "b", "c"))) == {"duplicate_stop"}
    assert kinds(Plan((Route("bus", ("a",)),), ("b", "c"))) >= {"unknown_courier"}
    assert kinds(Plan((Route("van", ("a", "x")),), ("b", "c"))) == {"unknown_stop"}
    # The second route of a courier is not taken, so its stop is not planned either.
    assert kinds(Plan((Route("van", ("a",)), Route("van", ("b",))), ("c",))) == {
        "courier_twice",
        "missing_stop",
    }

    bulky = [*stops[:2], Stop("c", stops[2].point, 10, 90_000, Window(0, 48 * H))]
    inst = build_instance(couriers, bulky, TRAVEL)
    assert {
        v.kind for v in check_plan(inst, Plan((Route("van", ("a", "c")),), ("b",))).violations
    } == {"over_volume"}
    short = [Courier("van", 10_000, 100_000, Window(8 * H, 8 * H + 900), DEPOT, DEPOT)]
    inst = build_instance(short, stops, TRAVEL)
    report = check_plan(inst, Plan((Route("van", ("a", "b")),), ("c",)))
    assert {v.kind for v in report.violations} == {"overtime"}
    assert "after the shift ends at 08:15" in report.violations[0].message


def test_schedule_waits_for_windows_and_leaves_late_instead_of_idling() -> None:
    couriers = [Courier("van", 10_000, 100_000, Window(6 * H, 20 * H), DEPOT, DEPOT)]
    stops = [Stop("a", GeoPoint(52.45, 13.39), 1, 1, Window(10 * H, 11 * H), service_s=300)]
    instance = build_instance(couriers, stops, TRAVEL)
    schedule = schedule_route(instance, Route("van", ("a",)))
    [visit] = schedule.visits
    assert visit.start == 10 * H and visit.arrival == visit.start  # no waiting at the door
    assert schedule.depart > 6 * H
    assert schedule.back == visit.start + 300 + instance.duration[1][0]
    leg = haversine_m(DEPOT, stops[0].point) * TRAVEL.road_factor
    assert schedule.distance_m == pytest.approx(2 * leg, abs=2)


def test_travel_model() -> None:
    # Brandenburg Gate to the TV tower: 2.1 km as the crow flies.
    gate, tower = GeoPoint(52.5163, 13.3777), GeoPoint(52.5208, 13.4094)
    assert haversine_m(gate, tower) == pytest.approx(2_200, rel=0.05)
    assert TRAVEL.distance_m(gate, tower) == round(haversine_m(gate, tower) * 1.3)
    assert TRAVEL.seconds(25_000) == 3_600  # 25 km at 25 km/h
    with pytest.raises(ValueError, match="road_factor"):
        TravelModel(road_factor=0.9)
    with pytest.raises(ValueError, match="coordinate"):
        GeoPoint(91, 0)
    with pytest.raises(ValueError, match="before it starts"):
        Window(5, 4)


def test_build_instance_shares_points_and_refuses_duplicate_ids() -> None:
    couriers, stops, _ = _tiny()
    twin = Stop("d", stops[0].point, 1, 1, Window(0, 10))
    instance = build_instance(couriers, [*stops, twin], TRAVEL)
    assert len(instance.points) == 4  # depot + three addresses; "d" shares "a"'s
    assert instance.stop_point[0] == instance.stop_point[3]
    with pytest.raises(ValueError, match="unique"):
        build_instance(couriers, [*stops, stops[0]], TRAVEL)


# -- baseline, decomposition, repair: feasible by construction ------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 60), k=st.integers(1, 6))
def test_nearest_neighbour_plans_are_always_feasible(seed: int, n: int, k: int) -> None:
    couriers, stops = random_day(random.Random(seed), n, k)
    instance = build_instance(couriers, stops, TRAVEL)
    for weights in ((0.4, 0.4, 0.2), (1.0, 0.0, 0.0)):
        plan = nearest_neighbour(instance, speed_mps=TRAVEL.speed_mps, weights=weights)
        assert check_plan(instance, plan).ok
        assert naive_violations(couriers, stops, plan, TRAVEL) == []


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 300), k=st.integers(1, 20))
def test_partition_gives_every_stop_and_courier_one_part(seed: int, n: int, k: int) -> None:
    couriers, stops = random_day(random.Random(seed), n, k)
    instance = build_instance(couriers, stops, TRAVEL)
    parts = partition(instance, part_size=40)
    assert sorted(s for p in parts for s in p.stops) == list(range(n))
    assert sorted(c for p in parts for c in p.couriers) == list(range(k))
    assert all(p.couriers for p in parts)
    assert len(parts) == max(1, min(k, round(n / 40)))


def test_sub_instance_times_routes_exactly_as_the_whole() -> None:
    couriers, stops = random_day(random.Random(3), 40, 4)
    whole = build_instance(couriers, stops, TRAVEL)
    part = sub_instance(whole, [1, 3], list(range(10, 30)))
    route = Route(couriers[1].id, tuple(s.id for s in stops[10:16]))
    assert schedule_route(part, route) == schedule_route(whole, route)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 100_000), n=st.integers(2, 40), k=st.integers(1, 4))
def test_quick_insertion_check_agrees_with_the_full_check(seed: int, n: int, k: int) -> None:
    """The O(1) slack test repair uses says "fits" exactly where re-timing the route does."""
    rng = random.Random(seed)
    couriers, stops = random_day(rng, n, k, slots=0.6)
    instance = build_instance(couriers, stops, TRAVEL)
    plan = nearest_neighbour(instance, speed_mps=TRAVEL.speed_mps)
    by_id = instance.stop_by_id
    routes = {r.courier_id: [by_id[s] for s in r.stop_ids] for r in plan.routes}
    for c, courier in enumerate(instance.couriers):
        current = routes.get(courier.id, [])
        timed = _timed(instance, c, current)
        for stop_id in plan.unassigned or (stops[rng.randrange(n)].id,):
            s = by_id[stop_id]
            if s in current:
                continue
            quick = {at for _, at in _insertions(instance, c, timed, s)}
            full = {
                at
                for at in range(len(current) + 1)
                if _fits(
                    instance,
                    Route(
                        courier.id,
                        tuple(instance.stops[i].id for i in [*current[:at], s, *current[at:]]),
                    ),
                )
            }
            assert quick == full, (courier.id, stop_id)


def test_repair_inserts_where_it_fits_and_keeps_the_rest_unassigned() -> None:
    couriers, stops = random_day(random.Random(11), 30, 3)
    instance = build_instance(couriers, stops, TRAVEL)
    repaired = repair(instance, Plan((), tuple(s.id for s in stops)))
    assert repaired.planned > 0
    assert check_plan(instance, repaired).ok
    assert naive_violations(couriers, stops, repaired, TRAVEL) == []
    heavy = [Stop("lead", DEPOT, 10_000_000, 1, Window(0, 48 * H))]
    inst = build_instance(couriers, heavy, TRAVEL)
    assert repair(inst, Plan((), ("lead",))).unassigned == ("lead",)
    assert unassigned_reason(inst, "lead").startswith("heavier (10000.0 kg)")
    night = [Stop("owl", DEPOT, 1, 1, Window(2 * H, 3 * H))]
    inst = build_instance(couriers, night, TRAVEL)
    assert unassigned_reason(inst, "owl").startswith("no shift reaches it")
    assert unassigned_reason(build_instance([], night, TRAVEL), "owl") == (
        "no courier is available that day"
    )


# -- the solver's plans, checked without trusting the solver ---------------------------


@pytest.mark.parametrize(("seed", "n", "k"), [(1, 25, 3), (2, 80, 5), (3, 150, 6), (4, 12, 1)])
def test_solver_plans_respect_every_window_capacity_and_shift(seed: int, n: int, k: int) -> None:
    couriers, stops = random_day(random.Random(seed), n, k, slots=0.5)
    instance = build_instance(couriers, stops, TRAVEL)
    plan, parts = solve_in_process(instance, SolverOptions(budget_s=4, part_size=60))
    assert parts == max(1, min(k, round(n / 60)))
    report = check_plan(instance, plan)
    assert report.ok, report.violations
    assert naive_violations(couriers, stops, plan, TRAVEL) == []
    # The solver serves at least as many stops as the greedy dispatcher.
    greedy = nearest_neighbour(instance, speed_mps=TRAVEL.speed_mps)
    assert plan.planned >= greedy.planned > 0


async def test_solver_in_its_child_process_and_windows_that_bind() -> None:
    couriers = [
        Courier("early", 50_000, 1_000_000, Window(8 * H, 12 * H), DEPOT, DEPOT),
        Courier("late", 50_000, 1_000_000, Window(14 * H, 20 * H), DEPOT, DEPOT),
    ]
    rng = random.Random(5)
    stops = []
    for i in range(16):
        point = GeoPoint(52.47 + rng.random() * 0.06, 13.33 + rng.random() * 0.1)
        window = Window(9 * H, 11 * H) if i % 2 else Window(15 * H, 17 * H)
        stops.append(Stop(f"p{i}", point, 2_000, 20_000, window))
    result = await asyncio.wait_for(
        run_solver(couriers, stops, TRAVEL, SolverOptions(budget_s=3)), 30
    )
    plan = result.plan
    assert not plan.unassigned and result.parts == 1 and result.seconds > 0
    routes = {r.courier_id: set(r.stop_ids) for r in plan.routes}
    # Only the morning van can make the morning windows, only the evening van the others.
    assert routes["early"] == {f"p{i}" for i in range(1, 16, 2)}
    assert routes["late"] == {f"p{i}" for i in range(0, 16, 2)}
    assert naive_violations(couriers, stops, plan, TRAVEL) == []
    assert check_plan(build_instance(couriers, stops, TRAVEL), plan).ok
    empty = await run_solver([], stops[:2], TRAVEL, SolverOptions())
    assert empty.plan.unassigned == ("p0", "p1") and empty.plan.routes == ()
