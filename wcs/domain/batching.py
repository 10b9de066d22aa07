"""Order batching: the orders of a wave onto pick carts, each cart routed optimally.

Input is the wave's orders in release order (the first is the most urgent). A batch
is one cart: at most ``max_orders`` orders (one tote each) and ``max_items`` units.
An order is never split: all its lines travel in one batch.

Heuristic (a seed algorithm with route-based selection, in the family of de Koster,
van der Poort & Wolters 1999):

- Orders are grouped by the set of zones they touch; a batch never mixes groups,
  so a cart does not wander into a zone most of its orders do not need.
- Seed: the most urgent order not yet batched opens the next batch, so batches are
  numbered in urgency order and the first tote of each holds its most urgent order.
- Fill: candidates are the next ``window`` unbatched orders after the seed in release
  order (the whole wave when ``window`` is None). This is the priority guarantee: an
  order joins a cart only while fewer than ``window`` more urgent orders are left
  waiting for later carts, so an order due for a carrier cut-off (released first)
  cannot be pushed to the last cart of a large wave. The default (five carts' worth)
  walks 2-5 % more than an unlimited window on the benchmark. Each
  candidate that fits the capacity gets a quick score in aisle space -
  the aisle lengths it adds (aisles the batch does not visit yet) plus the extra
  cross-aisle walk when it reaches further right; the ``shortlist`` best are then
  scored exactly by the optimal route length of the grown batch, and the cheapest
  joins (ties: the more urgent). Filling stops when the cart is full or nothing fits.
- An order that alone exceeds ``max_items`` rides alone on a cart of its own.

Each batch is routed with the exact optimal route (``wcs.domain.routing``), zone by
zone in zone-name order when a group spans several zones (each zone is its own
block with its own depot, so the batch distance is the sum of the zone routes).
The result depends only on the input: no randomness, ties broken by release order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from wcs.domain.geometry import Layout, PickPoint
from wcs.domain.picking import PickOrder, PickTask
from wcs.domain.routing import Route, RouteMethod, optimal_distance, route
from wcs.errors import ValidationFailed


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    max_orders: int = 8  # totes on one cart
    max_items: int = 40  # units one cart carries
    window: int | None = 40  # candidates after the seed; see the module docstring
    shortlist: int = 8  # candidates re-scored with the exact router

    def __post_init__(self) -> None:
        if self.max_orders < 1 or self.max_items < 1:
            raise ValidationFailed("a cart must hold at least one order and one item")
        if self.window is not None and self.window < 1:
            raise ValidationFailed("window must be positive when set")
        if self.shortlist < 1:
            raise ValidationFailed("shortlist must be at least 1")


@dataclass(frozen=True, slots=True)
class OrderPickList:
    """One order's share of a batch: its tote on the cart and its tasks in walking order."""

    order_id: str
    tote: int
    tasks: tuple[PickTask, ...]


@dataclass(frozen=True, slots=True)
class Batch:
    number: int  # 1-based, in the order the carts should go out
    zones: tuple[str, ...]
    orders: tuple[str, ...]  # order ids; the i-th goes in tote i + 1
    stops: tuple[str, ...]  # location codes in walking order
    distance_m: float
    items: int
    pick_lists: tuple[OrderPickList, ...]
    routes: tuple[Route, ...]  # one per zone, in ``zones`` order


def _points(order: PickOrder) -> dict[str, set[PickPoint]]:
    by_zone: dict[str, set[PickPoint]] = {}
    for line in order.lines:
        by_zone.setdefault(line.location.zone, set()).add(line.location.point)
    return by_zone


def _check(orders: Sequence[PickOrder], layouts: Mapping[str, Layout]) -> None:
    ids = [o.order_id for o in orders]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise ValidationFailed(f"orders given twice: {', '.join(dupes)}", orders=dupes)
    for order in orders:
        for line in order.lines:
            layout = layouts.get(line.location.zone)
            if layout is None:
                raise ValidationFailed(
                    f"order {order.order_id} line {line.line}: zone "
                    f"{line.location.zone!r} has no layout",
                    order_id=order.order_id,
                    zone=line.location.zone,
                )
            layout.check(line.location.point)


class _Cart:
    """A batch under construction, with what the quick score needs."""

    def __init__(self, layouts: Mapping[str, Layout]) -> None:
        self.layouts = layouts
        self.members: list[int] = []
        self.items = 0
        self.points: dict[str, set[PickPoint]] = {}
        self.aisles: dict[str, set[int]] = {}

    def add(self, index: int, order: PickOrder, points: dict[str, set[PickPoint]]) -> None:
        self.members.append(index)
        self.items += order.items
        for zone, pts in points.items():
            self.points.setdefault(zone, set()).update(pts)
            self.aisles.setdefault(zone, set()).update(p.aisle for p in pts)

    def quick_score(self, points: dict[str, set[PickPoint]]) -> float:
        score = 0.0
        for zone, pts in points.items():
            layout = self.layouts[zone]
            mine = self.aisles.get(zone, set())
            theirs = {p.aisle for p in pts}
            score += len(theirs - mine) * layout.aisle_length_m
            reach = max(mine, default=1)
            score += 2 * layout.aisle_spacing_m * max(0, max(theirs) - reach)
        return score

    def exact_with(self, points: dict[str, set[PickPoint]]) -> float:
        total = 0.0
        for zone in sorted(self.points.keys() | points.keys()):
            merged = self.points.get(zone, set()) | points.get(zone, set())
            total += optimal_distance(self.layouts[zone], merged)
        return total


def _fill(
    group: list[int],
    orders: Sequence[PickOrder],
    points: list[dict[str, set[PickPoint]]],
    layouts: Mapping[str, Layout],
    policy: BatchPolicy,
) -> list[list[int]]:
    remaining = list(group)  # indices into ``orders``, in release order
    carts: list[list[int]] = []
    while remaining:
        cart = _Cart(layouts)
        seed = remaining.pop(0)
        cart.add(seed, orders[seed], points[seed])
        while len(cart.members) < policy.max_orders and remaining:
            pool = remaining if policy.window is None else remaining[: policy.window]
            fitting = [i for i in pool if cart.items + orders[i].items <= policy.max_items]
            if not fitting:
                break
            ranked = sorted(fitting, key=lambda i: (cart.quick_score(points[i]), i))
            shortlist = ranked[: policy.shortlist]
            chosen = min(shortlist, key=lambda i: (cart.exact_with(points[i]), i))
            cart.add(chosen, orders[chosen], points[chosen])
            remaining.remove(chosen)
        carts.append(cart.members)
    return carts


def _batch(
    number: int,
    members: list[int],
    orders: Sequence[PickOrder],
    layouts: Mapping[str, Layout],
    method: RouteMethod,
) -> Batch:
    chosen = [orders[i] for i in sorted(members)]
    zones = sorted({zone for order in chosen for zone in order.zones})
    routes = tuple(
        route(
            layouts[zone],
            [line.location for o in chosen for line in o.lines if line.location.zone == zone],
            method,
        )
        for zone in zones
    )
    step: dict[tuple[str, str], int] = {}
    for zone, zone_route in zip(zones, routes, strict=True):
        for code in zone_route.codes:
            step[(zone, code)] = len(step)
    pick_lists = tuple(
        OrderPickList(
            order_id=order.order_id,
            tote=tote,
            tasks=tuple(
                sorted(
                    order.tasks,
                    key=lambda t: (step[(t.location.zone, t.location.code)], t.line),
                )
            ),
        )
        for tote, order in enumerate(chosen, start=1)
    )
    return Batch(
        number=number,
        zones=tuple(zones),
        orders=tuple(o.order_id for o in chosen),
        stops=tuple(code for r in routes for code in r.codes),
        distance_m=sum(r.distance_m for r in routes),
        items=sum(o.items for o in chosen),
        pick_lists=pick_lists,
        routes=routes,
    )


def build_batches(
    orders: Sequence[PickOrder],
    layouts: Mapping[str, Layout],
    policy: BatchPolicy | None = None,
    method: RouteMethod = "optimal",
) -> tuple[Batch, ...]:
    """Batch the wave's orders (given most urgent first) and route every batch.

    ``method`` other than "optimal" is for comparisons; batches are still formed by
    optimal route length.
    """
    policy = policy or BatchPolicy()
    _check(orders, layouts)
    points = [_points(order) for order in orders]
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, order in enumerate(orders):
        groups.setdefault(order.zones, []).append(index)
    carts = [
        cart for group in groups.values() for cart in _fill(group, orders, points, layouts, policy)
    ]
    carts.sort(key=min)
    return tuple(
        _batch(n, members, orders, layouts, method) for n, members in enumerate(carts, start=1)
    )


def order_by_order(
    orders: Sequence[PickOrder],
    layouts: Mapping[str, Layout],
    method: RouteMethod = "s_shape",
) -> tuple[Batch, ...]:
    """Every order on a cart of its own: the baseline that batching is measured
    against (design §8 names order-by-order S-shape)."""
    _check(orders, layouts)
    return tuple(_batch(i + 1, [i], orders, layouts, method) for i in range(len(orders)))
