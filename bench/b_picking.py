"""Pick planning: walking distance of batched, optimally routed waves vs order by order.

Generated floor: one 10-aisle x 30-bay block (design §8 spacings), 4 levels, one SKU
per location, stored at random. SKU popularity is Zipf-like (a few SKUs take most
lines, as in e-commerce assortments); orders have 1-5 lines of 1-3 units. Orders carry
priorities, SLA deadlines and three carrier cut-offs, and are released in capped
waves; each wave is batched onto 8-tote carts and every batch routed optimally.

Reported: total walk of the baseline (every order on its own, S-shape), of the
batched and optimally routed plan (target: at least 40 % shorter), the decomposition
between the two (order by order + optimal, carts filled first come first served +
optimal, batched + S-shape), the route-quality ratio
against an exact Held-Karp optimum on small instances (target: at most 5 % above),
and planning time per wave.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from bench.report import BenchOptions, Section, summarize_ms
from wcs.domain.batching import BatchPolicy, build_batches, order_by_order
from wcs.domain.geometry import Layout, Location
from wcs.domain.picking import PickLine, PickOrder
from wcs.domain.routing import exact_route, largest_gap_route, optimal_route, s_shape_route
from wcs.domain.waves import WavePolicy, plan_wave

NAME = "picking"

ZONE = "A"
LAYOUT = Layout(aisles=10, bays=30)
LEVELS = 4
LINES_WEIGHTS = (35, 25, 18, 12, 10)  # P(1 line) .. P(5 lines)
QTY_WEIGHTS = (70, 20, 10)  # P(qty 1) .. P(qty 3)
ZIPF_S = 1.0
START = datetime(2025, 11, 28, 8, 0, tzinfo=UTC)  # a peak day
CUTOFFS = {"dhl": START + timedelta(hours=6), "ups": START + timedelta(hours=8), "own": None}


def locations(layout: Layout = LAYOUT, zone: str = ZONE, levels: int = LEVELS) -> list[Location]:
    return [
        Location(f"{zone}-{aisle:02d}-{bay:02d}-{level}", aisle, bay, level, zone)
        for aisle in range(1, layout.aisles + 1)
        for bay in range(1, layout.bays + 1)
        for level in range(1, levels + 1)
    ]


def generate_orders(
    rng: random.Random,
    count: int,
    layout: Layout = LAYOUT,
    zone: str = ZONE,
    start: datetime = START,
) -> list[PickOrder]:
    """``count`` orders on a randomly stored, Zipf-popular assortment."""
    slots = locations(layout, zone)
    rng.shuffle(slots)  # random storage: popularity has nothing to do with position
    weights = [1 / (rank**ZIPF_S) for rank in range(1, len(slots) + 1)]
    orders: list[PickOrder] = []
    for n in range(count):
        wanted = rng.choices(range(1, len(LINES_WEIGHTS) + 1), LINES_WEIGHTS)[0]
        chosen: list[int] = []
        while len(chosen) < wanted:
            sku = rng.choices(range(len(slots)), weights)[0]
            if sku not in chosen:
                chosen.append(sku)
        lines = tuple(
            PickLine(
                line=i + 1,
                sku=f"SKU{sku:05d}",
                qty=rng.choices((1, 2, 3), QTY_WEIGHTS)[0],
                location=slots[sku],
            )
            for i, sku in enumerate(chosen)
        )
        carrier = rng.choice(sorted(CUTOFFS))
        orders.append(
            PickOrder(
                order_id=f"O{n:05d}",
                lines=lines,
                priority=rng.choices(range(10), (30, 20, 15, 10, 8, 6, 4, 3, 2, 2))[0],
                sla_deadline=start + timedelta(hours=rng.randint(4, 48)),
                carrier=carrier,
                cutoff=CUTOFFS[carrier],
                ready_at=start - timedelta(minutes=rng.randint(0, 600)),
            )
        )
    return orders


def _small_instances(section: Section, rng: random.Random, count: int) -> None:
    worst = {"optimal": 0.0, "s_shape": 0.0, "largest_gap": 0.0}
    total = dict.fromkeys(worst, 0.0)
    slots = locations()
    for _ in range(count):
        picks = rng.sample(slots, rng.randint(2, 9))
        best = exact_route(LAYOUT, picks).distance_m
        for name, router in (
            ("optimal", optimal_route),
            ("s_shape", s_shape_route),
            ("largest_gap", largest_gap_route),
        ):
            ratio = router(LAYOUT, picks).distance_m / best - 1
            worst[name] = max(worst[name], ratio)
            total[name] += ratio
    section.add(
        "optimal (DP) vs exact, worst",
        100 * worst["optimal"],
        "% above",
        "<= 5 %",
        worst["optimal"] <= 0.05,
    )
    section.add("optimal (DP) vs exact, mean", 100 * total["optimal"] / count, "% above")
    section.add("S-shape vs exact, mean", 100 * total["s_shape"] / count, "% above")
    section.add("largest gap vs exact, mean", 100 * total["largest_gap"] / count, "% above")
    section.notes.append(
        f"small instances: {count} random sets of 2-9 locations, exact optimum by Held-Karp"
    )


def run(opts: BenchOptions) -> Section:
    section = Section("Pick planning: batching and routing (10 aisles x 30 bays)")
    rng = random.Random(20251128)
    n_orders = 80 if opts.quick else 400
    orders = generate_orders(rng, n_orders)
    layouts = {ZONE: LAYOUT}
    wave_policy = WavePolicy(max_orders=40 if opts.quick else 100, pick_rate_per_hour=250)
    batch_policy = BatchPolicy(max_orders=8, max_items=40)

    pending = list(orders)
    now = START
    plan_times: list[float] = []
    batched = 0.0
    batches = 0
    waves: list[list[PickOrder]] = []
    while pending:
        started = time.perf_counter()
        plan = plan_wave(pending, now, layouts, wave_policy, batch_policy)
        plan_times.append(time.perf_counter() - started)
        batched += plan.distance_m
        batches += len(plan.batches)
        waves.append(list(plan.selection.released))
        released = {o.order_id for o in plan.selection.released}
        pending = [o for o in pending if o.order_id not in released]
        now += timedelta(minutes=20)

    baseline = sum(b.distance_m for b in order_by_order(orders, layouts, "s_shape"))
    single_optimal = sum(b.distance_m for b in order_by_order(orders, layouts, "optimal"))
    batched_s_shape = sum(
        b.distance_m
        for wave in waves
        for b in build_batches(wave, layouts, batch_policy, method="s_shape")
    )
    # window=1: each cart takes the next orders in release order, no clustering.
    first_come = BatchPolicy(batch_policy.max_orders, batch_policy.max_items, window=1)
    batched_first_come = sum(
        b.distance_m for wave in waves for b in build_batches(wave, layouts, first_come)
    )
    # What the priority window costs: candidates from the whole wave instead.
    unlimited = BatchPolicy(batch_policy.max_orders, batch_policy.max_items, window=None)
    batched_unlimited = sum(
        b.distance_m for wave in waves for b in build_batches(wave, layouts, unlimited)
    )
    saving = 1 - batched / baseline
    lines = sum(len(o.lines) for o in orders)
    section.add("orders / lines", f"{n_orders} / {lines}")
    section.add("waves / batches", f"{len(waves)} / {batches}")
    section.add("order-by-order S-shape (baseline)", baseline, "m")
    section.add("order-by-order optimal", single_optimal, "m")
    section.add("first-come carts + optimal", batched_first_come, "m")
    section.add("batched + S-shape", batched_s_shape, "m")
    section.add("batched + optimal", batched, "m")
    section.add("batched + optimal, unlimited window", batched_unlimited, "m")
    section.add(
        "batched + optimal vs baseline", 100 * saving, "% shorter", ">= 40 %", saving >= 0.40
    )
    section.add("walk per order, batched + optimal", batched / n_orders, "m")
    timing = summarize_ms(plan_times)
    section.add("planning time per wave, p50", timing["p50"], "ms")
    section.add("planning time per wave, max", timing["max"], "ms")
    _small_instances(section, rng, 60 if opts.quick else 400)
    section.notes.append(
        f"wave cap {wave_policy.max_orders} orders; carts of {batch_policy.max_orders} totes "
        f"/ {batch_policy.max_items} items, candidate window {batch_policy.window}; "
        f"Zipf s={ZIPF_S} over {len(locations())} SKUs"
    )
    return section
