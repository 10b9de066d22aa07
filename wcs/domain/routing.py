"""Picker routes through one single-block pick zone (geometry of design §8).

Every route starts and ends at the depot (front cross-aisle, in front of aisle 1) and
answers the stops in walking order (locations at the same aisle and bay form one
stop; levels and both sides of the aisle share the point), the walked polyline and
its length in metres.

Routers
-------
``s_shape_route``
    The traversal policy. Aisles holding a pick are visited left to right; each is
    walked end to end, the first from front to back, the next from back to front, and
    so on. Convention for an odd number of such aisles: the picker would otherwise
    finish at the back, so the last (rightmost) aisle is entered from the front, walked
    up to its farthest pick and left from the front again (a return). The walk then
    goes back along the front cross-aisle to the depot. Aisles without picks are never
    entered.
``largest_gap_route``
    The leftmost and rightmost aisles with picks are walked end to end; every aisle in
    between is entered from the back and from the front, each time up to the largest
    gap between adjacent picks (or between a cross-aisle and the nearest pick), so the
    widest stretch of that aisle is never walked. The back parts are done on the way
    out along the back cross-aisle, the front parts on the way home.
``optimal_route``
    The exact shortest route by Ratliff & Rosenthal's dynamic programme (1983); see
    below. Runs in time linear in the number of aisles.
``exact_route``
    Held-Karp over the pick points with shortest-path distances: exponential, for
    small instances only; it is the reference the dynamic programme is checked
    against.

The dynamic programme
---------------------
A tour is a connected multigraph on the block's walkable network (aisle segments
between consecutive pick points, cross-aisle segments between adjacent aisles) in
which every vertex has even degree; its Euler circuit is the walk. Vertex ``a_j`` is
the front end of aisle ``j``, ``b_j`` the back end. The tour is built left to right in
alternating stages:

- vertical stage ``j``: choose how aisle ``j`` is covered - ``traverse`` (each
  segment once, joining ``a_j`` and ``b_j``), ``double`` (each segment twice),
  ``front`` (from ``a_j`` up to the farthest pick and back), ``back`` (from ``b_j``
  down to the nearest pick and back), ``gap`` (``front`` and ``back`` around the
  largest gap) or ``none`` (only for an aisle without picks);
- horizontal stage ``j -> j+1``: 0, 1 or 2 copies of the front cross-aisle segment
  ``a_j a_{j+1}`` and of the back segment ``b_j b_{j+1}``.

What the partial graph built so far means for its completion is captured by an
equivalence class of the two frontier vertices ``(a, b)``: the degree class of each
(0 = no edge, odd, even and positive) and whether the two lie in one connected
component or in two. Every component must touch the frontier: one that does not can
never be joined again, so the state is refused (the programme stops at the rightmost
aisle with picks, so a closed-off piece before it always leaves picks unconnected).
Of the 3 x 3 x 2 combinations only six are reachable, Ratliff & Rosenthal's classes
(U,U,1C), (E,0,1C), (0,E,1C), (E,E,1C), (E,E,2C) and (0,0,0C) (U odd, E even and
positive, 0 no edge; 1C/2C one or two components); their seventh, a finished tour
(0,0,1C), is the acceptance test at the last aisle here. A stage is therefore a
fixed handful of transitions and the programme runs in O(A). When a frontier vertex
leaves the frontier its degree must be even, and the depot ``a_1`` must have been
reached. At the rightmost aisle with picks the accepted classes are: both degrees even
(at least one positive) and a single component. The chosen stages are replayed into
a multigraph whose Euler circuit, started at the depot, gives the walk; its length
is the programme's value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise, product
from typing import Literal

from wcs.domain.geometry import Layout, Location, PickPoint, Position
from wcs.errors import ValidationFailed

RouteMethod = Literal["s_shape", "largest_gap", "optimal", "exact"]

# Held-Karp holds 2**n * n partial costs: 12 points is ~50 k entries and well under a
# second; beyond that it is neither needed (the programme is exact) nor affordable.
EXACT_MAX_POINTS = 12


@dataclass(frozen=True, slots=True)
class Stop:
    """One place the picker stops; every location code reachable from it."""

    point: PickPoint
    codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Route:
    method: RouteMethod
    stops: tuple[Stop, ...]
    distance_m: float
    # The walk as straight legs along aisles and cross-aisles, depot to depot: what a
    # floor plan draws.
    waypoints: tuple[Position, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        """Location codes in walking order."""
        return tuple(code for stop in self.stops for code in stop.codes)


def group_stops(layout: Layout, locations: Iterable[Location]) -> dict[PickPoint, tuple[str, ...]]:
    """Location codes per pick point, each point checked against the layout."""
    seen: dict[str, Location] = {}
    for location in locations:
        known = seen.get(location.code)
        if known is not None and known.point != location.point:
            raise ValidationFailed(
                f"location {location.code} is given at two places: "
                f"aisle {known.aisle} bay {known.bay} and aisle {location.aisle} "
                f"bay {location.bay}",
                code=location.code,
            )
        layout.check(location.point)
        seen[location.code] = location
    grouped: dict[PickPoint, list[Location]] = {}
    for location in seen.values():
        grouped.setdefault(location.point, []).append(location)
    return {
        point: tuple(loc.code for loc in sorted(group, key=lambda loc: (loc.level, loc.code)))
        for point, group in sorted(grouped.items())
    }


def tour_length(layout: Layout, points: Sequence[PickPoint]) -> float:
    """Depot -> each point in the given order -> depot, by shortest walks."""
    here = layout.depot
    total = 0.0
    for point in points:
        there = layout.position(point)
        total += layout.walk(here, there)
        here = there
    return total + layout.walk(here, layout.depot)


def _finish(
    layout: Layout,
    method: RouteMethod,
    codes: dict[PickPoint, tuple[str, ...]],
    order: Sequence[PickPoint],
    waypoints: Sequence[Position],
) -> Route:
    compact: list[Position] = []
    for waypoint in waypoints:
        if not compact or compact[-1] != waypoint:
            compact.append(waypoint)
    stops = tuple(Stop(point, codes[point]) for point in order)
    return Route(method, stops, layout.polyline_length(compact), tuple(compact))


def _empty(layout: Layout, method: RouteMethod) -> Route:
    return Route(method, (), 0.0, (layout.depot,))


def _by_aisle(codes: dict[PickPoint, tuple[str, ...]]) -> dict[int, list[PickPoint]]:
    aisles: dict[int, list[PickPoint]] = {}
    for point in sorted(codes):
        aisles.setdefault(point.aisle, []).append(point)
    return aisles


def _largest_gap(ys: Sequence[float], length: float) -> int:
    """Index ``i`` such that the gap between bound ``i`` and ``i + 1`` of
    ``[0, *ys, length]`` is the largest (first one on ties)."""
    bounds = [0.0, *ys, length]
    gaps = [hi - lo for lo, hi in pairwise(bounds)]
    return gaps.index(max(gaps))


# --- S-shape and largest gap ------------------------------------------------------------


def s_shape_route(layout: Layout, locations: Iterable[Location]) -> Route:
    """Traversal routing; the odd-aisle convention is in the module docstring."""
    codes = group_stops(layout, locations)
    if not codes:
        return _empty(layout, "s_shape")
    length = layout.aisle_length_m
    aisles = _by_aisle(codes)
    order: list[PickPoint] = []
    way: list[Position] = [layout.depot]
    at_front = True
    for index, aisle in enumerate(sorted(aisles)):
        points = aisles[aisle]
        last = index == len(aisles) - 1
        if at_front:
            way.append(Position(aisle, 0.0))
            order.extend(points)
            way.extend(layout.position(p) for p in points)
            if last:
                way.append(Position(aisle, 0.0))
            else:
                way.append(Position(aisle, length))
                at_front = False
        else:
            way.append(Position(aisle, length))
            order.extend(reversed(points))
            way.extend(layout.position(p) for p in reversed(points))
            way.append(Position(aisle, 0.0))
            at_front = True
    way.append(layout.depot)
    return _finish(layout, "s_shape", codes, order, way)


def largest_gap_route(layout: Layout, locations: Iterable[Location]) -> Route:
    """Largest-gap routing (Hall 1993); the policy is in the module docstring."""
    codes = group_stops(layout, locations)
    if not codes:
        return _empty(layout, "largest_gap")
    length = layout.aisle_length_m
    aisles = _by_aisle(codes)
    numbers = sorted(aisles)
    order: list[PickPoint] = []
    way: list[Position] = [layout.depot]

    def visit(points: Iterable[PickPoint]) -> None:
        for point in points:
            order.append(point)
            way.append(layout.position(point))

    first, last = numbers[0], numbers[-1]
    if first == last:
        way.append(Position(first, 0.0))
        visit(aisles[first])
        way.append(Position(first, 0.0))
        way.append(layout.depot)
        return _finish(layout, "largest_gap", codes, order, way)

    middle = numbers[1:-1]
    split: dict[int, int] = {}
    for aisle in middle:
        ys = [layout.y(p.bay) for p in aisles[aisle]]
        split[aisle] = _largest_gap(ys, length)

    way.append(Position(first, 0.0))
    visit(aisles[first])
    way.append(Position(first, length))
    for aisle in middle:
        back_part = aisles[aisle][split[aisle] :]
        if back_part:
            way.append(Position(aisle, length))
            visit(reversed(back_part))
            way.append(Position(aisle, length))
    way.append(Position(last, length))
    visit(reversed(aisles[last]))
    way.append(Position(last, 0.0))
    for aisle in reversed(middle):
        front_part = aisles[aisle][: split[aisle]]
        if front_part:
            way.append(Position(aisle, 0.0))
            visit(front_part)
            way.append(Position(aisle, 0.0))
    way.append(layout.depot)
    return _finish(layout, "largest_gap", codes, order, way)


# --- Ratliff & Rosenthal ----------------------------------------------------------------

# Degree classes of a frontier vertex.
_ZERO, _ODD, _EVEN = 0, 1, 2

# (degree class of a, degree class of b, a and b in one component). The flag is only
# meaningful when both degrees are positive and is False otherwise, so each class has
# one spelling.
_State = tuple[int, int, bool]
_EMPTY: _State = (_ZERO, _ZERO, False)

VerticalOp = Literal["none", "traverse", "double", "front", "back", "gap"]
_WITH_PICKS: tuple[VerticalOp, ...] = ("traverse", "double", "front", "back", "gap")
_WITHOUT_PICKS: tuple[VerticalOp, ...] = ("none", "traverse", "double")

# Edges an option adds at the front end, at the back end, and whether it joins them.
_VERTICAL_EDGES: dict[VerticalOp, tuple[int, int, bool]] = {
    "none": (0, 0, False),
    "traverse": (1, 1, True),
    "double": (2, 2, True),
    "front": (2, 0, False),
    "back": (0, 2, False),
    "gap": (2, 2, False),
}


def _add_degree(cls: int, edges: int) -> int:
    if cls == _ZERO and edges == 0:
        return _ZERO
    # The class values were chosen so that their parity is the degree's parity.
    return _ODD if (cls + edges) % 2 else _EVEN


@cache
def _vertical_next(state: _State, op: VerticalOp) -> _State:
    da, db, same = state
    ea, eb, joins = _VERTICAL_EDGES[op]
    na, nb = _add_degree(da, ea), _add_degree(db, eb)
    if na == _ZERO or nb == _ZERO:
        return (na, nb, False)
    if joins:
        return (na, nb, True)
    if da != _ZERO and db != _ZERO:
        return (na, nb, same)
    # One end was bare before: whatever reached it now is a component of its own.
    return (na, nb, False)


@cache
def _horizontal_next(state: _State, ha: int, hb: int, depot_here: bool) -> _State | None:
    """Frontier class after adding ``ha``/``hb`` cross-aisle copies, or None if the
    partial tour could never be completed."""
    da, db, same = state
    # a_j and b_j leave the frontier: their degrees are final and must be even.
    if (da + ha) % 2 or (db + hb) % 2:
        return None
    if depot_here and da == _ZERO and ha == 0:
        return None
    # Union-find over a_j=0, b_j=1, a_{j+1}=2, b_{j+1}=3.
    parent = [0, 1, 2, 3]

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    def union(x: int, y: int) -> None:
        parent[find(x)] = find(y)

    if same:
        union(0, 1)
    if ha:
        union(0, 2)
    if hb:
        union(1, 3)
    reaching = {find(2)} if ha else set()
    if hb:
        reaching.add(find(3))
    present = {0: da != _ZERO or ha > 0, 1: db != _ZERO or hb > 0}
    for vertex, used in present.items():
        if used and find(vertex) not in reaching:
            return None
    joined = ha > 0 and hb > 0 and find(2) == find(3)
    return (ha, hb, joined)


def _closes(state: _State, depot_here: bool) -> bool:
    da, db, same = state
    if _ODD in (da, db) or (da == _ZERO and db == _ZERO):
        return False
    if da != _ZERO and db != _ZERO and not same:
        return False
    return not (depot_here and da == _ZERO)


_HORIZONTAL_COPIES: tuple[tuple[int, int], ...] = tuple(product(range(3), range(3)))


@dataclass(frozen=True, slots=True)
class _Plan:
    vertical: dict[int, VerticalOp]
    horizontal: dict[int, tuple[int, int]]  # aisle j -> copies (front, back) to j + 1
    cost: float


def _vertical_cost(op: VerticalOp, ys: Sequence[float], length: float) -> float:
    if op == "none":
        return 0.0
    if op == "traverse":
        return length
    if op == "double":
        return 2 * length
    if op == "front":
        return 2 * ys[-1]
    if op == "back":
        return 2 * (length - ys[0])
    bounds = [0.0, *ys, length]
    return 2 * (length - max(hi - lo for lo, hi in pairwise(bounds)))


def _solve(layout: Layout, ys_by_aisle: dict[int, list[float]]) -> _Plan:
    length = layout.aisle_length_m
    step = layout.aisle_spacing_m
    rightmost = max(ys_by_aisle)
    costs: dict[_State, float] = {_EMPTY: 0.0}
    # Per stage, the best predecessor of each state: (previous state, choice).
    vertical_back: list[dict[_State, tuple[_State, VerticalOp]]] = []
    horizontal_back: list[dict[_State, tuple[_State, tuple[int, int]]]] = []
    for aisle in range(1, rightmost + 1):
        ys = ys_by_aisle.get(aisle, [])
        options = [
            (op, _vertical_cost(op, ys, length)) for op in (_WITH_PICKS if ys else _WITHOUT_PICKS)
        ]
        after: dict[_State, float] = {}
        back_v: dict[_State, tuple[_State, VerticalOp]] = {}
        for state, cost in costs.items():
            for op, extra in options:
                nxt = _vertical_next(state, op)
                total = cost + extra
                if nxt not in after or total < after[nxt]:
                    after[nxt] = total
                    back_v[nxt] = (state, op)
        vertical_back.append(back_v)
        costs = after
        if aisle == rightmost:
            break
        after = {}
        back_h: dict[_State, tuple[_State, tuple[int, int]]] = {}
        for state, cost in costs.items():
            for ha, hb in _HORIZONTAL_COPIES:
                moved = _horizontal_next(state, ha, hb, aisle == 1)
                if moved is None:
                    continue
                total = cost + (ha + hb) * step
                if moved not in after or total < after[moved]:
                    after[moved] = total
                    back_h[moved] = (state, (ha, hb))
        horizontal_back.append(back_h)
        costs = after

    finals = [(cost, state) for state, cost in costs.items() if _closes(state, rightmost == 1)]
    # Picks exist, so a_1 -> farthest pick -> back is always a candidate.
    best_cost, state = min(finals)
    vertical: dict[int, VerticalOp] = {}
    horizontal: dict[int, tuple[int, int]] = {}
    for aisle in range(rightmost, 0, -1):
        state, op = vertical_back[aisle - 1][state]
        vertical[aisle] = op
        if aisle > 1:
            state, copies = horizontal_back[aisle - 2][state]
            horizontal[aisle - 1] = copies
    return _Plan(vertical, horizontal, best_cost)


def _plan_edges(
    layout: Layout, plan: _Plan, ys_by_aisle: dict[int, list[float]]
) -> list[tuple[Position, Position]]:
    length = layout.aisle_length_m
    edges: list[tuple[Position, Position]] = []

    def add(aisle: int, lo: float, hi: float, times: int) -> None:
        edges.extend([(Position(aisle, lo), Position(aisle, hi))] * times)

    for aisle, op in sorted(plan.vertical.items()):
        ys = ys_by_aisle.get(aisle, [])
        chain = [0.0, *ys, length]
        segments = list(pairwise(chain))
        if op == "traverse" or op == "double":
            for lo, hi in segments:
                add(aisle, lo, hi, 1 if op == "traverse" else 2)
        elif op == "front":
            for lo, hi in segments[: len(ys)]:
                add(aisle, lo, hi, 2)
        elif op == "back":
            for lo, hi in segments[1:]:
                add(aisle, lo, hi, 2)
        elif op == "gap":
            skip = _largest_gap(ys, length)
            for index, (lo, hi) in enumerate(segments):
                if index != skip:
                    add(aisle, lo, hi, 2)
    for aisle, (front, back) in sorted(plan.horizontal.items()):
        edges.extend([(Position(aisle, 0.0), Position(aisle + 1, 0.0))] * front)
        edges.extend([(Position(aisle, length), Position(aisle + 1, length))] * back)
    return edges


def _euler_circuit(start: Position, edges: Sequence[tuple[Position, Position]]) -> list[Position]:
    """Hierholzer's algorithm; deterministic for a given edge list."""
    incident: dict[Position, list[int]] = {}
    for index, (u, v) in enumerate(edges):
        incident.setdefault(u, []).append(index)
        incident.setdefault(v, []).append(index)
    used = [False] * len(edges)
    cursor = dict.fromkeys(incident, 0)
    stack = [start]
    circuit: list[Position] = []
    while stack:
        vertex = stack[-1]
        options = incident.get(vertex, [])
        while cursor.get(vertex, 0) < len(options) and used[options[cursor[vertex]]]:
            cursor[vertex] += 1
        if cursor.get(vertex, 0) < len(options):
            index = options[cursor[vertex]]
            used[index] = True
            u, v = edges[index]
            stack.append(v if u == vertex else u)
        else:
            circuit.append(stack.pop())
    if not all(used):
        raise AssertionError("route plan is not connected; the programme's states are wrong")
    circuit.reverse()
    return circuit


def optimal_route(layout: Layout, locations: Iterable[Location]) -> Route:
    """The shortest route (Ratliff & Rosenthal); see the module docstring."""
    codes = group_stops(layout, locations)
    if not codes:
        return _empty(layout, "optimal")
    aisles = _by_aisle(codes)
    ys_by_aisle = {aisle: [layout.y(p.bay) for p in points] for aisle, points in aisles.items()}
    plan = _solve(layout, ys_by_aisle)
    circuit = _euler_circuit(layout.depot, _plan_edges(layout, plan, ys_by_aisle))
    at = {layout.position(point): point for point in codes}
    order: list[PickPoint] = []
    seen: set[PickPoint] = set()
    for vertex in circuit:
        point = at.get(vertex)
        if point is not None and point not in seen:
            seen.add(point)
            order.append(point)
    return _finish(layout, "optimal", codes, order, circuit)


def optimal_distance(layout: Layout, points: Iterable[PickPoint]) -> float:
    """Length of the optimal route only: cheaper than ``optimal_route`` (no walk is
    built), for batching heuristics that compare many candidate sets."""
    ys_by_aisle: dict[int, list[float]] = {}
    for point in set(points):
        layout.check(point)
        ys_by_aisle.setdefault(point.aisle, []).append(layout.y(point.bay))
    if not ys_by_aisle:
        return 0.0
    for ys in ys_by_aisle.values():
        ys.sort()
    return _solve(layout, ys_by_aisle).cost


# --- Held-Karp reference ----------------------------------------------------------------


def exact_route(layout: Layout, locations: Iterable[Location]) -> Route:
    """Exact TSP over the pick points (Held-Karp); at most ``EXACT_MAX_POINTS``."""
    codes = group_stops(layout, locations)
    if not codes:
        return _empty(layout, "exact")
    points = sorted(codes)
    n = len(points)
    if n > EXACT_MAX_POINTS:
        raise ValidationFailed(
            f"exact routing is limited to {EXACT_MAX_POINTS} pick points, got {n}", points=n
        )
    where = [layout.position(p) for p in points]
    home = [layout.walk(layout.depot, w) for w in where]
    dist = [[layout.walk(a, b) for b in where] for a in where]
    inf = float("inf")
    full = (1 << n) - 1
    # best[mask][i]: shortest walk from the depot through the points in mask, ending at i.
    best = [[inf] * n for _ in range(full + 1)]
    came = [[-1] * n for _ in range(full + 1)]
    for i in range(n):
        best[1 << i][i] = home[i]
    for mask in range(1, full + 1):
        row = best[mask]
        for last in range(n):
            cost = row[last]
            if cost == inf:
                continue
            for nxt in range(n):
                if mask & (1 << nxt):
                    continue
                grown = mask | (1 << nxt)
                total = cost + dist[last][nxt]
                if total < best[grown][nxt]:
                    best[grown][nxt] = total
                    came[grown][nxt] = last
    end = min(range(n), key=lambda i: (best[full][i] + home[i], i))
    order_index: list[int] = []
    mask, at = full, end
    while at != -1:
        order_index.append(at)
        mask, at = mask & ~(1 << at), came[mask][at]
    order_index.reverse()
    order = [points[i] for i in order_index]
    way: list[Position] = [layout.depot]
    for target in [*(where[i] for i in order_index), layout.depot]:
        way.extend(layout.path(way[-1], target)[1:])
    return _finish(layout, "exact", codes, order, way)


ROUTERS: dict[RouteMethod, Callable[[Layout, Iterable[Location]], Route]] = {
    "s_shape": s_shape_route,
    "largest_gap": largest_gap_route,
    "optimal": optimal_route,
    "exact": exact_route,
}


def route(layout: Layout, locations: Iterable[Location], method: RouteMethod = "optimal") -> Route:
    return ROUTERS[method](layout, locations)
