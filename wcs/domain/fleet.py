"""Own-fleet last-mile planning, the pure part: instances, plans and their checks.

The solver (``wcs.services.fleet``) only proposes an order of stops per courier.
Everything that decides whether a plan is acceptable lives here and is computed
from the instance alone, never from what the solver reports about its own answer:

- **Travel** (``TravelModel``): great-circle distance between coordinates times a
  road factor (streets are not straight lines; ~1.3 in a grid city), and time from
  an average van speed in town. No map server: coordinates come from the order or
  from the shipped postal-code centroid table (``wcs.fleet_data``).
- **Instance** (``build_instance``): couriers (capacity in grams and cubic
  centimetres, shift window, start and end depot) and stops (parcel weight and
  volume, delivery window, time at the door), with one distance and one duration
  matrix over the distinct points. Times are whole seconds from the plan day's
  local midnight; windows say when service may *start*, as customers are promised.
- **Schedule** (``schedule_route``): a route is timed forward from the start of the
  shift; arriving early means waiting for the window to open. The departure is then
  put off by the wait at the first stop, so a van does not idle at the door.
- **Check** (``check_plan``): every stop planned at most once and known, each
  courier used once, every service start inside its window, every van back at its
  end depot within its shift, weight and volume within capacity. An empty list
  means the plan is acceptable.
- **Baseline** (``nearest_neighbour``): courier after courier, always drive to the
  nearest stop that still fits (capacity, window, time to get home). It is what a
  dispatcher does by hand and what the solver is measured against.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class GeoPoint:
    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not (-90.0 <= self.lat <= 90.0 and -180.0 <= self.lon <= 180.0):
            raise ValueError(f"not a coordinate: lat {self.lat}, lon {self.lon}")


def haversine_m(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle distance in metres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class TravelModel:
    """Road distance and driving time from straight-line distance."""

    road_factor: float = 1.3
    speed_kmh: float = 25.0

    def __post_init__(self) -> None:
        if self.road_factor < 1.0:
            raise ValueError("road_factor below 1 would make roads shorter than straight lines")
        if self.speed_kmh <= 0:
            raise ValueError("speed_kmh must be positive")

    def distance_m(self, a: GeoPoint, b: GeoPoint) -> int:
        return round(haversine_m(a, b) * self.road_factor)

    @property
    def speed_mps(self) -> float:
        return self.speed_kmh / 3.6

    def seconds(self, distance_m: int) -> int:
        return math.ceil(distance_m / self.speed_mps)


@dataclass(frozen=True, slots=True)
class Window:
    """Seconds from the plan day's origin; both ends included."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")

    def overlap(self, other: Window) -> Window | None:
        start, end = max(self.start, other.start), min(self.end, other.end)
        return Window(start, end) if start <= end else None


@dataclass(frozen=True, slots=True)
class Courier:
    id: str
    capacity_g: int
    capacity_cm3: int
    shift: Window
    start: GeoPoint
    end: GeoPoint


@dataclass(frozen=True, slots=True)
class Stop:
    id: str
    point: GeoPoint
    weight_g: int
    volume_cm3: int
    window: Window
    service_s: int = 180


@dataclass(frozen=True, slots=True)
class Instance:
    couriers: tuple[Courier, ...]
    stops: tuple[Stop, ...]
    points: tuple[GeoPoint, ...]
    distance: tuple[tuple[int, ...], ...]  # metres, points x points
    duration: tuple[tuple[int, ...], ...]  # seconds
    courier_start: tuple[int, ...]  # index into points, per courier
    courier_end: tuple[int, ...]
    stop_point: tuple[int, ...]  # index into points, per stop

    @property
    def stop_by_id(self) -> dict[str, int]:
        return {s.id: i for i, s in enumerate(self.stops)}

    @property
    def courier_by_id(self) -> dict[str, int]:
        return {c.id: i for i, c in enumerate(self.couriers)}


def build_instance(
    couriers: Sequence[Courier], stops: Sequence[Stop], travel: TravelModel
) -> Instance:
    """Index the distinct points and fill both matrices; ids must be unique."""
    for kind, ids in (("courier", [c.id for c in couriers]), ("stop", [s.id for s in stops])):
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"{kind} ids must be unique: {dup}")
    index: dict[GeoPoint, int] = {}

    def at(point: GeoPoint) -> int:
        # Parcels geocoded by postal code share a centroid: one matrix row serves all.
        return index.setdefault(point, len(index))

    courier_start = tuple(at(c.start) for c in couriers)
    courier_end = tuple(at(c.end) for c in couriers)
    stop_point = tuple(at(s.point) for s in stops)
    points = tuple(index)
    distance = _distance_matrix(points, travel)
    duration = tuple(tuple(travel.seconds(d) for d in row) for row in distance)
    return Instance(
        tuple(couriers),
        tuple(stops),
        points,
        distance,
        duration,
        courier_start,
        courier_end,
        stop_point,
    )


def _distance_matrix(
    points: Sequence[GeoPoint], travel: TravelModel
) -> tuple[tuple[int, ...], ...]:
    """``travel.distance_m`` for every pair: trigonometry once per point, each pair once
    (the distance is symmetric), since a day of 500 stops has a quarter million pairs."""
    rad = [(math.radians(p.lat), math.radians(p.lon)) for p in points]
    cos_lat = [math.cos(lat) for lat, _ in rad]
    scale = 2 * EARTH_RADIUS_M * travel.road_factor
    n = len(points)
    rows = [[0] * n for _ in range(n)]
    for i in range(n):
        lat1, lon1 = rad[i]
        c1 = cos_lat[i]
        row = rows[i]
        for j in range(i + 1, n):
            lat2, lon2 = rad[j]
            h = (
                math.sin((lat2 - lat1) / 2) ** 2
                + c1 * cos_lat[j] * math.sin((lon2 - lon1) / 2) ** 2
            )
            row[j] = rows[j][i] = round(scale * math.asin(min(1.0, math.sqrt(h))))
    return tuple(tuple(row) for row in rows)


# -- plans and their schedules --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    courier_id: str
    stop_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    routes: tuple[Route, ...]
    unassigned: tuple[str, ...] = ()

    @property
    def planned(self) -> int:
        return sum(len(r.stop_ids) for r in self.routes)


@dataclass(frozen=True, slots=True)
class Visit:
    stop_id: str
    arrival: int
    start: int  # service start: max(arrival, window start)
    departure: int
    distance_m: int  # from the previous point
    late_s: int = 0  # service start past the window's end (0 when on time)


@dataclass(frozen=True, slots=True)
class Schedule:
    courier_id: str
    depart: int
    visits: tuple[Visit, ...]
    back: int  # arrival at the end depot
    distance_m: int
    load_g: int
    load_cm3: int

    @property
    def duration_s(self) -> int:
        return self.back - self.depart


def schedule_route(instance: Instance, route: Route) -> Schedule:
    """Time a route from the instance's matrices (earliest service, departure put off)."""
    c = instance.courier_by_id[route.courier_id]
    courier = instance.couriers[c]
    by_id = instance.stop_by_id
    stops = [instance.stops[by_id[s]] for s in route.stop_ids]
    legs = [instance.courier_start[c], *(instance.stop_point[by_id[s]] for s in route.stop_ids)]
    first_wait = 0
    if stops:
        reach = courier.shift.start + instance.duration[legs[0]][legs[1]]
        first_wait = max(0, stops[0].window.start - reach)
    depart = courier.shift.start + first_wait
    now, place, total = depart, legs[0], 0
    visits: list[Visit] = []
    for stop, point in zip(stops, legs[1:], strict=True):
        d = instance.distance[place][point]
        arrival = now + instance.duration[place][point]
        start = max(arrival, stop.window.start)
        now = start + stop.service_s
        visits.append(Visit(stop.id, arrival, start, now, d, max(0, start - stop.window.end)))
        total += d
        place = point
    end = instance.courier_end[c]
    total += instance.distance[place][end]
    back = now + instance.duration[place][end]
    return Schedule(
        courier.id,
        depart,
        tuple(visits),
        back,
        total,
        sum(s.weight_g for s in stops),
        sum(s.volume_cm3 for s in stops),
    )


@dataclass(frozen=True, slots=True)
class Violation:
    kind: str  # unknown_stop, duplicate_stop, missing_stop, unknown_courier, ...
    message: str
    courier_id: str | None = None
    stop_id: str | None = None


@dataclass(frozen=True, slots=True)
class PlanReport:
    schedules: tuple[Schedule, ...]
    violations: tuple[Violation, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def distance_m(self) -> int:
        return sum(s.distance_m for s in self.schedules)


def _clock(seconds: int) -> str:
    days, rest = divmod(seconds, 86_400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}"
    return text if not days else f"{text} (+{days} d)"


def check_plan(instance: Instance, plan: Plan) -> PlanReport:
    """Every constraint of the instance, recomputed; see the module docstring."""
    problems: list[Violation] = []
    by_id = instance.stop_by_id
    couriers = instance.courier_by_id
    seen: dict[str, str] = {}
    used: set[str] = set()
    schedules: list[Schedule] = []
    for route in plan.routes:
        who = route.courier_id
        if who not in couriers:
            problems.append(Violation("unknown_courier", f"courier {who} is not in the instance"))
            continue
        if who in used:
            problems.append(Violation("courier_twice", f"courier {who} has two routes", who))
            continue
        used.add(who)
        known: list[str] = []
        for stop_id in route.stop_ids:
            if stop_id not in by_id:
                problems.append(
                    Violation(
                        "unknown_stop", f"stop {stop_id} is not in the instance", who, stop_id
                    )
                )
            elif stop_id in seen:
                problems.append(
                    Violation(
                        "duplicate_stop",
                        f"stop {stop_id} is planned for {seen[stop_id]} and {who}",
                        who,
                        stop_id,
                    )
                )
            else:
                seen[stop_id] = who
                known.append(stop_id)
        schedule = schedule_route(instance, Route(who, tuple(known)))
        schedules.append(schedule)
        problems.extend(_route_violations(instance, couriers[who], schedule))
    for stop_id in plan.unassigned:
        if stop_id not in by_id:
            problems.append(
                Violation("unknown_stop", f"unassigned stop {stop_id} is not in the instance")
            )
        elif stop_id in seen:
            problems.append(
                Violation(
                    "duplicate_stop",
                    f"stop {stop_id} is both planned for {seen[stop_id]} and unassigned",
                    seen[stop_id],
                    stop_id,
                )
            )
    accounted = set(seen) | set(plan.unassigned)
    for stop in instance.stops:
        if stop.id not in accounted:
            problems.append(
                Violation("missing_stop", f"stop {stop.id} is neither planned nor unassigned")
            )
    return PlanReport(tuple(schedules), tuple(problems))


def _route_violations(instance: Instance, c: int, schedule: Schedule) -> Iterable[Violation]:
    courier = instance.couriers[c]
    by_id = instance.stop_by_id
    who = courier.id
    if schedule.load_g > courier.capacity_g:
        yield Violation(
            "over_weight",
            f"{who} carries {schedule.load_g / 1000:.1f} kg; the van takes "
            f"{courier.capacity_g / 1000:.1f} kg",
            who,
        )
    if schedule.load_cm3 > courier.capacity_cm3:
        yield Violation(
            "over_volume",
            f"{who} carries {schedule.load_cm3 / 1e6:.3f} m³; the van holds "
            f"{courier.capacity_cm3 / 1e6:.3f} m³",
            who,
        )
    for visit in schedule.visits:
        window = instance.stops[by_id[visit.stop_id]].window
        if visit.late_s:
            yield Violation(
                "late",
                f"{who} reaches stop {visit.stop_id} at {_clock(visit.start)}, after its "
                f"window {_clock(window.start)}-{_clock(window.end)}",
                who,
                visit.stop_id,
            )
    if schedule.visits and schedule.back > courier.shift.end:
        yield Violation(
            "overtime",
            f"{who} is back at {_clock(schedule.back)}, after the shift ends at "
            f"{_clock(courier.shift.end)}",
            who,
        )


# -- decomposition and repair ------------------------------------------------------


def sub_instance(instance: Instance, couriers: Sequence[int], stops: Sequence[int]) -> Instance:
    """The part of ``instance`` with these couriers and stops; matrices are sliced, not
    recomputed, so a plan of the part is timed exactly as in the whole."""
    used = sorted(
        {instance.courier_start[c] for c in couriers}
        | {instance.courier_end[c] for c in couriers}
        | {instance.stop_point[s] for s in stops}
    )
    new = {old: i for i, old in enumerate(used)}
    return Instance(
        tuple(instance.couriers[c] for c in couriers),
        tuple(instance.stops[s] for s in stops),
        tuple(instance.points[i] for i in used),
        tuple(tuple(instance.distance[i][j] for j in used) for i in used),
        tuple(tuple(instance.duration[i][j] for j in used) for i in used),
        tuple(new[instance.courier_start[c]] for c in couriers),
        tuple(new[instance.courier_end[c]] for c in couriers),
        tuple(new[instance.stop_point[s]] for s in stops),
    )


@dataclass(frozen=True, slots=True)
class Part:
    couriers: tuple[int, ...]
    stops: tuple[int, ...]


def partition(instance: Instance, *, part_size: int) -> tuple[Part, ...]:
    """Split a large instance into angular sectors around the depots ("cluster first,
    route second"), each with a share of the couriers in proportion to its stops.

    Sectors are contiguous in angle, cut first at the widest empty angle so that no
    cluster of stops straddles the cut. Couriers go to the sector nearest their start
    depot, the largest sectors choosing first. One part when the instance is small.
    """
    n, fleet = len(instance.stops), len(instance.couriers)
    k = min(fleet, max(1, round(n / max(1, part_size))))
    if k <= 1:
        return (Part(tuple(range(fleet)), tuple(range(n))),)
    starts = [instance.points[i] for i in instance.courier_start]
    lat0 = sum(p.lat for p in starts) / len(starts)
    lon0 = sum(p.lon for p in starts) / len(starts)
    shrink = math.cos(math.radians(lat0))

    def angle(p: GeoPoint) -> float:
        return math.atan2(p.lat - lat0, (p.lon - lon0) * shrink)

    order = sorted(range(n), key=lambda s: (angle(instance.stops[s].point), instance.stops[s].id))
    angles = [angle(instance.stops[s].point) for s in order]
    gaps = [(angles[(i + 1) % n] - angles[i]) % (2 * math.pi) if n > 1 else 0.0 for i in range(n)]
    cut = (max(range(n), key=lambda i: gaps[i]) + 1) % n
    order = order[cut:] + order[:cut]
    bounds = [round(i * n / k) for i in range(k + 1)]
    groups = [order[bounds[i] : bounds[i + 1]] for i in range(k)]

    # Largest remainder, at least one courier per sector.
    quotas = [len(g) / n * fleet for g in groups]
    counts = [max(1, math.floor(q)) for q in quotas]
    while sum(counts) > fleet:
        i = max(range(k), key=lambda i: (counts[i] - quotas[i], counts[i]))
        counts[i] -= 1
    while sum(counts) < fleet:
        i = max(range(k), key=lambda i: (quotas[i] - counts[i], len(groups[i])))
        counts[i] += 1
    free = set(range(fleet))
    chosen: list[tuple[int, ...]] = [()] * k
    for i in sorted(range(k), key=lambda i: (-len(groups[i]), i)):
        pts = [instance.stops[s].point for s in groups[i]]
        centre = GeoPoint(sum(p.lat for p in pts) / len(pts), sum(p.lon for p in pts) / len(pts))
        near = sorted(
            free,
            key=lambda c: (haversine_m(instance.points[instance.courier_start[c]], centre), c),
        )
        chosen[i] = tuple(sorted(near[: counts[i]]))
        free -= set(chosen[i])
    return tuple(Part(chosen[i], tuple(sorted(groups[i]))) for i in range(k))


def _fits(instance: Instance, route: Route) -> bool:
    schedule = schedule_route(instance, route)
    return not any(_route_violations(instance, instance.courier_by_id[route.courier_id], schedule))


@dataclass(frozen=True, slots=True)
class _Timed:
    """A route timed for insertions: earliest starts and how much delay each can absorb."""

    points: tuple[int, ...]  # start depot, stops, end depot
    depart: tuple[int, ...]  # per point but the end: when the van leaves it
    start: tuple[int, ...]  # per point: service start (arrival for the depots)
    slack: tuple[int, ...]  # per point: delay it can take without breaking anything after
    load_g: int
    load_cm3: int


def _timed(instance: Instance, c: int, stops: Sequence[int]) -> _Timed:
    courier = instance.couriers[c]
    points = (
        instance.courier_start[c],
        *(instance.stop_point[s] for s in stops),
        instance.courier_end[c],
    )
    depart = [courier.shift.start]
    start = [courier.shift.start]
    arrive = [courier.shift.start]
    for k, s in enumerate(stops, start=1):
        stop = instance.stops[s]
        arrival = depart[-1] + instance.duration[points[k - 1]][points[k]]
        begin = max(arrival, stop.window.start)
        arrive.append(arrival)
        start.append(begin)
        depart.append(begin + stop.service_s)
    back = depart[-1] + instance.duration[points[-2]][points[-1]]
    arrive.append(back)
    start.append(back)
    # Savelsbergh's forward slack: a delay at k is absorbed by waiting further on, up to
    # every later window's end and the end of the shift.
    slack = [0] * len(points)
    slack[-1] = courier.shift.end - back
    for k in range(len(points) - 2, 0, -1):
        end = instance.stops[stops[k - 1]].window.end
        wait_next = start[k + 1] - arrive[k + 1]
        slack[k] = min(end - start[k], wait_next + slack[k + 1])
    return _Timed(
        points,
        tuple(depart),
        tuple(start),
        tuple(slack),
        sum(instance.stops[s].weight_g for s in stops),
        sum(instance.stops[s].volume_cm3 for s in stops),
    )


def _insertions(instance: Instance, c: int, timed: _Timed, s: int) -> Iterable[tuple[int, int]]:
    """(added metres, position) for every place ``s`` fits into the timed route."""
    courier, stop = instance.couriers[c], instance.stops[s]
    if (
        timed.load_g + stop.weight_g > courier.capacity_g
        or timed.load_cm3 + stop.volume_cm3 > courier.capacity_cm3
    ):
        return
    j = instance.stop_point[s]
    last = len(timed.points) - 1
    for a in range(last):
        here, there = timed.points[a], timed.points[a + 1]
        begin = max(timed.depart[a] + instance.duration[here][j], stop.window.start)
        if begin > stop.window.end:
            continue
        arrival = begin + stop.service_s + instance.duration[j][there]
        if a + 1 == last:
            if arrival > courier.shift.end:
                continue
        elif arrival - timed.start[a + 1] > timed.slack[a + 1]:
            continue
        added = instance.distance[here][j] + instance.distance[j][there]
        yield added - instance.distance[here][there], a


def repair(instance: Instance, plan: Plan) -> Plan:
    """Insert unassigned stops where they add the least distance and break nothing.

    Used after solving the parts separately: a stop one sector could not take may fit
    into a neighbour's route or an idle courier's. Most urgent windows go first. Each
    route is timed once per change, so trying a position costs O(1); the chosen
    insertion is checked in full before it is made.
    """
    by_id = instance.stop_by_id
    couriers = instance.courier_by_id
    routes: dict[str, list[int]] = {c.id: [] for c in instance.couriers}
    for route in plan.routes:
        routes[route.courier_id] = [by_id[s] for s in route.stop_ids]
    timed = {cid: _timed(instance, couriers[cid], stops) for cid, stops in routes.items()}
    left: list[str] = []
    pending = sorted(
        (s for s in plan.unassigned if s in by_id),
        key=lambda s: (instance.stops[by_id[s]].window.end, s),
    )
    for stop_id in pending:
        s = by_id[stop_id]
        options = sorted(
            (added, cid, at)
            for cid, stops in routes.items()
            for added, at in _insertions(instance, couriers[cid], timed[cid], s)
        )
        for _, cid, at in options:
            trial = [*routes[cid][:at], s, *routes[cid][at:]]
            if _fits(instance, Route(cid, tuple(instance.stops[i].id for i in trial))):
                routes[cid] = trial
                timed[cid] = _timed(instance, couriers[cid], trial)
                break
        else:
            left.append(stop_id)
    kept = tuple(
        Route(cid, tuple(instance.stops[i].id for i in stops))
        for cid, stops in routes.items()
        if stops
    )
    return Plan(kept, tuple(sorted(left)))


def merge(plans: Iterable[Plan]) -> Plan:
    plans = list(plans)
    return Plan(
        tuple(r for p in plans for r in p.routes),
        tuple(s for p in plans for s in p.unassigned),
    )


def unassigned_reason(instance: Instance, stop_id: str) -> str:
    """Why a stop could not be planned, as specifically as the instance tells."""
    stop = instance.stops[instance.stop_by_id[stop_id]]
    if not instance.couriers:
        return "no courier is available that day"
    if all(c.capacity_g < stop.weight_g for c in instance.couriers):
        return f"heavier ({stop.weight_g / 1000:.1f} kg) than any available van takes"
    if all(c.capacity_cm3 < stop.volume_cm3 for c in instance.couriers):
        return f"bulkier ({stop.volume_cm3 / 1e6:.3f} m³) than any available van holds"
    point = instance.stop_point[instance.stop_by_id[stop_id]]
    reachable = False
    for k, courier in enumerate(instance.couriers):
        start = max(
            courier.shift.start + instance.duration[instance.courier_start[k]][point],
            stop.window.start,
        )
        back = start + stop.service_s + instance.duration[point][instance.courier_end[k]]
        if start <= stop.window.end and back <= courier.shift.end:
            reachable = True
            break
    if not reachable:
        return (
            f"no shift reaches it within its window {_clock(stop.window.start)}-"
            f"{_clock(stop.window.end)} and gets back in time"
        )
    return "the vans are full or out of time on their routes; add a courier or widen its window"


# -- baseline --------------------------------------------------------------------------


# Solomon's weights for distance, time gap and urgency (his "time-oriented nearest
# neighbour", 1987); time terms are turned into metres at the model's speed.
NN_WEIGHTS = (0.4, 0.4, 0.2)


def nearest_neighbour(
    instance: Instance,
    *,
    speed_mps: float,
    weights: tuple[float, float, float] = NN_WEIGHTS,
) -> Plan:
    """Greedy baseline: each courier in turn drives to the "nearest" stop that still fits.

    Nearness is Solomon's time-oriented measure: distance, plus the time until service
    could start there (driving and waiting), plus how little slack its window has left.
    With ``weights=(1, 0, 0)`` it is the plain nearest neighbour by distance, which
    strands the stops of early windows far away.
    """
    w_dist, w_time, w_urgency = weights
    remaining = set(range(len(instance.stops)))
    routes: list[Route] = []
    for c, courier in enumerate(instance.couriers):
        place, now = instance.courier_start[c], courier.shift.start
        load_g = load_cm3 = 0
        chosen: list[str] = []
        end = instance.courier_end[c]
        while remaining:
            best: tuple[float, str, int] | None = None
            for s in remaining:
                stop = instance.stops[s]
                if (
                    load_g + stop.weight_g > courier.capacity_g
                    or load_cm3 + stop.volume_cm3 > courier.capacity_cm3
                ):
                    continue
                point = instance.stop_point[s]
                arrival = now + instance.duration[place][point]
                start = max(arrival, stop.window.start)
                if start > stop.window.end:
                    continue
                if start + stop.service_s + instance.duration[point][end] > courier.shift.end:
                    continue
                score = (
                    w_dist * instance.distance[place][point]
                    + w_time * (start - now) * speed_mps
                    + w_urgency * (stop.window.end - arrival) * speed_mps
                )
                key = (score, stop.id, s)
                if best is None or key < best:
                    best = key
            if best is None:
                break
            s = best[2]
            stop = instance.stops[s]
            point = instance.stop_point[s]
            now = max(now + instance.duration[place][point], stop.window.start) + stop.service_s
            place = point
            load_g += stop.weight_g
            load_cm3 += stop.volume_cm3
            chosen.append(stop.id)
            remaining.discard(s)
        if chosen:
            routes.append(Route(courier.id, tuple(chosen)))
    unassigned = tuple(sorted(instance.stops[s].id for s in remaining))
    return Plan(tuple(routes), unassigned)


def summarise(report: PlanReport, instance: Instance) -> Mapping[str, float]:
    """Totals for reports and benchmarks."""
    planned = sum(len(s.visits) for s in report.schedules)
    return {
        "routes": float(sum(1 for s in report.schedules if s.visits)),
        "stops": float(planned),
        "unassigned": float(len(instance.stops) - planned),
        "distance_km": report.distance_m / 1000,
        "driving_h": sum(s.duration_s for s in report.schedules if s.visits) / 3600,
    }
