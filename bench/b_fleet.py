"""Own-fleet route planning: VROOM plans against a nearest-neighbour dispatcher.

Generated day (Berlin, the own fleet's area): stops scattered a few hundred metres
around the shipped postal-code centroids, so they are as dense as the districts in
the table; 30 % of them have a two-hour slot between 09:00 and 19:00, the rest may
be delivered any time. Parcels 0.3-20 kg (median ~2 kg) and 2-80 l. Vans take
800 kg and 10 m³; 60 % drive 08:00-17:00, the others 11:00-20:00 (the evening
slots). Every van starts and ends at the warehouse on the southern edge of the city.
Travel and time at the door as the product plans them (``TravelModel`` defaults,
3 min per stop).

Baseline: Solomon's time-oriented nearest neighbour (distance, time until service
can start, urgency of the window), van after van, which is how a dispatcher builds
routes by hand. The plain distance-only nearest neighbour is shown beside it: it
strands early-window stops, so its distance is not comparable.

Measured: total distance of each plan (both checked by ``check_plan``, independent
of the solver), the improvement (target: at least 15 % shorter), and the planning
time of the product's path - child process, instance, solve, and the check in the
parent - for 500 stops and 20 vans (target: under 10 s), over several seeds.
"""

from __future__ import annotations

import asyncio
import math
import random
import statistics
import time

from bench.report import BenchOptions, Section
from wcs.domain.fleet import (
    Courier,
    GeoPoint,
    Instance,
    PlanReport,
    Stop,
    TravelModel,
    Window,
    build_instance,
    check_plan,
    nearest_neighbour,
)
from wcs.fleet_data import centroids
from wcs.services.fleet import SolverOptions, SolverResult, run_solver, solver_name

NAME = "fleet"

WAREHOUSE = GeoPoint(52.4370, 13.3860)  # Mariendorf, the southern edge of Berlin
HOUR = 3600
SLOTS = tuple(range(9, 19, 2))  # 09-11, 11-13, ..., 17-19
SLOT_SHARE = 0.3
EARLY_SHARE = 0.6
SCATTER_M = 600.0
TARGET_GAIN = 0.15
TARGET_SECONDS = 10.0


def generate(rng: random.Random, n_stops: int, n_couriers: int) -> tuple[list[Courier], list[Stop]]:
    berlin = [p for _, p in centroids().points("DE")]
    couriers = []
    for k in range(n_couriers):
        early = k < round(n_couriers * EARLY_SHARE)
        shift = Window(8 * HOUR, 17 * HOUR) if early else Window(11 * HOUR, 20 * HOUR)
        couriers.append(
            Courier(f"van-{k + 1:02d}", 800_000, 10_000_000, shift, WAREHOUSE, WAREHOUSE)
        )
    stops = []
    for i in range(n_stops):
        centre = rng.choice(berlin)
        north, east = rng.gauss(0, SCATTER_M), rng.gauss(0, SCATTER_M)
        point = GeoPoint(
            centre.lat + north / 111_320,
            centre.lon + east / (111_320 * math.cos(math.radians(centre.lat))),
        )
        if rng.random() < SLOT_SHARE:
            start = rng.choice(SLOTS) * HOUR
            window = Window(start, start + 2 * HOUR)
        else:
            window = Window(8 * HOUR, 20 * HOUR)
        weight = min(20_000, max(300, round(rng.lognormvariate(math.log(2_000), 0.8))))
        volume = min(80_000, max(2_000, round(rng.lognormvariate(math.log(10_000), 0.7))))
        stops.append(Stop(f"p{i:04d}", point, weight, volume, window, 180))
    return couriers, stops


async def _plan(
    couriers: list[Courier], stops: list[Stop], travel: TravelModel, options: SolverOptions
) -> tuple[float, Instance, SolverResult, PlanReport]:
    """The product's path: solve in the child, check in this process."""
    started = time.perf_counter()
    result = await run_solver(couriers, stops, travel, options)
    instance = build_instance(couriers, stops, travel)
    report = check_plan(instance, result.plan)
    return time.perf_counter() - started, instance, result, report


def run(opts: BenchOptions) -> Section:
    n_stops, n_couriers, seeds = (120, 6, 1) if opts.quick else (500, 20, 3)
    travel = TravelModel()
    options = SolverOptions()
    section = Section(f"Own-fleet routing: {n_stops} stops x {n_couriers} vans, {solver_name()}")
    gains: list[float] = []
    seconds: list[float] = []
    solver_km: list[float] = []
    nn_km: list[float] = []
    plain: list[tuple[int, float]] = []
    served_all = True
    violations = 0
    parts = 0
    for seed in range(seeds):
        couriers, stops = generate(random.Random(f"fleet:{seed}"), n_stops, n_couriers)
        took, instance, result, report = asyncio.run(_plan(couriers, stops, travel, options))
        baseline = check_plan(instance, nearest_neighbour(instance, speed_mps=travel.speed_mps))
        greedy_plan = nearest_neighbour(instance, speed_mps=travel.speed_mps, weights=(1, 0, 0))
        greedy = check_plan(instance, greedy_plan)
        violations += len(report.violations) + len(baseline.violations) + len(greedy.violations)
        served_all &= result.plan.planned == n_stops
        served_all &= sum(len(s.visits) for s in baseline.schedules) == n_stops
        gains.append(1 - report.distance_m / baseline.distance_m)
        seconds.append(took)
        solver_km.append(report.distance_m / 1000)
        nn_km.append(baseline.distance_m / 1000)
        plain.append((greedy_plan.planned, greedy.distance_m / 1000))
        parts = result.parts

    section.add("seeds (instances)", seeds)
    section.add("solver plan distance (mean)", statistics.fmean(solver_km), "km")
    section.add("time-oriented nearest neighbour (mean)", statistics.fmean(nn_km), "km")
    section.add(
        "distance saved vs nearest neighbour (worst seed)",
        min(gains) * 100,
        "%",
        f">= {TARGET_GAIN * 100:.0f} %",
        min(gains) >= TARGET_GAIN and served_all,
    )
    section.add("distance saved (mean)", statistics.fmean(gains) * 100, "%")
    section.add(
        "planning time (slowest seed)",
        max(seconds),
        "s",
        f"< {TARGET_SECONDS:.0f} s",
        max(seconds) < TARGET_SECONDS,
    )
    section.add("every stop planned by both", "yes" if served_all else "NO")
    section.add("violations (windows, capacity, shifts)", violations, "", "0", violations == 0)
    section.add("sectors solved", parts)
    served = min(p[0] for p in plain)
    section.add("plain nearest neighbour: stops it could serve (worst seed)", f"{served}/{n_stops}")
    section.notes.append(
        f"solver budget {options.budget_s:.0f} s, {options.threads} threads, exploration "
        f"{options.exploration}, ~{options.part_size} stops per sector; travel: road factor "
        f"{travel.road_factor}, {travel.speed_kmh:.0f} km/h; plain nearest neighbour "
        f"{statistics.fmean(p[1] for p in plain):.0f} km for the stops it served"
    )
    return section
