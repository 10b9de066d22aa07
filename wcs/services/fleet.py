"""The route solver for the own fleet: VROOM (through pyvroom), run in a child process.

Why VROOM and not OR-Tools' routing library (both install here):

- VROOM is built for exactly this problem: capacitated vehicle routing with time
  windows, several capacity dimensions (we use grams and cm³), per-vehicle shifts
  and start/end depots. It takes our own distance and duration matrices, so no map
  server is needed, and one call answers a complete plan (routes, arrival times,
  unassigned jobs) with no model code to write and one knob (exploration level).
- OR-Tools is the more general toolkit, and that is its cost here: we would write
  the model ourselves - transit callbacks, a time dimension with waiting slack, a
  capacity dimension each, disjunctions with penalties so that a stop may stay
  unassigned instead of making the whole day infeasible - and then choose and tune
  a first-solution strategy and a metaheuristic (guided local search only stops at
  its time limit). All of that is code and tuning to maintain for a problem VROOM
  covers as it is; its wheel is also several times larger.

Why a child process (``python -m wcs.services.fleet``, JSON in and out): VROOM
keeps the GIL for the whole solve, so in a thread it would freeze the API's event
loop for seconds; a crash or runaway in native code ends the child, not the API;
and a plan that overruns its budget is ended by killing the child.

Large days are solved in parts (``wcs.domain.fleet.partition``): VROOM's local
search grows much faster than linearly with the stops per instance. On the
benchmark's first day (500 stops, 20 vans, two cores) the whole day left to converge
took 147 s for 980 km; eight sectors of ~60 stops take about 5 s for 1151 km - a
sixth more distance for a thirtieth of the time, and still over a quarter less than
the nearest-neighbour dispatcher (see ``bench/b_fleet.py``). Stops a sector cannot
take are then inserted where they fit best in any route (``repair``). Each part gets
the remaining budget divided by the parts left, so the day keeps its budget.

The solver's answer is a proposal: the caller checks it against the instance it
built itself (``wcs.domain.fleet.check_plan``) and refuses it on any violation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from wcs.children import spawn_async
from wcs.domain.fleet import (
    Courier,
    GeoPoint,
    Instance,
    Plan,
    Route,
    Stop,
    TravelModel,
    Window,
    build_instance,
    merge,
    partition,
    repair,
    sub_instance,
)
from wcs.errors import WcsError

SOLVER_NAME = "vroom"
# The child needs a moment to start Python and load VROOM before its budget begins.
STARTUP_GRACE_S = 20.0


class PlanningFailed(WcsError):
    """The solver did not answer, or answered a plan that breaks the instance's rules."""

    code = "planning_failed"


@dataclass(frozen=True, slots=True)
class SolverOptions:
    budget_s: float = 6.0
    threads: int = 2
    part_size: int = 60
    exploration: int = 0  # VROOM 0-5; higher levels cost far more than they gain here


@dataclass(frozen=True, slots=True)
class SolverResult:
    plan: Plan
    parts: int
    seconds: float  # wall time of the child, start-up included


def _vroom_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{SOLVER_NAME} {version('pyvroom')}"
    except PackageNotFoundError:
        return SOLVER_NAME


def solver_name() -> str:
    return _vroom_version()


# -- in the child ----------------------------------------------------------------------


def _solve_part(instance: Instance, timeout_s: float, options: SolverOptions) -> Plan:
    import numpy as np
    import vroom

    if not instance.couriers or not instance.stops:
        return Plan((), tuple(s.id for s in instance.stops))
    problem = vroom.Input()
    distance = np.asarray(instance.distance, dtype=np.uint32)
    problem.set_durations_matrix("car", np.asarray(instance.duration, dtype=np.uint32))
    problem.set_distances_matrix("car", distance)
    # Cost is distance: the fleet's variable cost (fuel, wear) and the benchmark's metric.
    problem.set_costs_matrix("car", distance)
    for k, courier in enumerate(instance.couriers):
        problem.add_vehicle(
            vroom.Vehicle(
                k + 1,
                start=instance.courier_start[k],
                end=instance.courier_end[k],
                profile="car",
                capacity=[courier.capacity_g, courier.capacity_cm3],
                time_window=vroom.TimeWindow(courier.shift.start, courier.shift.end),
            )
        )
    for j, stop in enumerate(instance.stops):
        problem.add_job(
            vroom.Job(
                j + 1,
                location=instance.stop_point[j],
                default_service=stop.service_s,
                delivery=[stop.weight_g, stop.volume_cm3],
                time_windows=[vroom.TimeWindow(stop.window.start, stop.window.end)],
            )
        )
    solution = problem.solve(
        exploration_level=options.exploration,
        nb_threads=options.threads,
        timeout=timedelta(seconds=max(0.1, timeout_s)),
    )
    answer: dict[str, Any] = solution.to_dict()
    routes = []
    for route in answer.get("routes", []):
        stops = tuple(
            instance.stops[int(step["id"]) - 1].id
            for step in route["steps"]
            if step["type"] == "job"
        )
        if stops:
            routes.append(Route(instance.couriers[int(route["vehicle"]) - 1].id, stops))
    unassigned = tuple(instance.stops[int(u["id"]) - 1].id for u in answer.get("unassigned", []))
    return Plan(tuple(routes), unassigned)


def solve_in_process(
    instance: Instance, options: SolverOptions, *, started: float | None = None
) -> tuple[Plan, int]:
    """Solve part by part within ``options.budget_s`` from ``started`` (a monotonic
    time; default now); returns the plan and the number of parts."""
    deadline = (started if started is not None else time.monotonic()) + options.budget_s
    parts = partition(instance, part_size=options.part_size)
    plans: list[Plan] = []
    for n, part in enumerate(parts):
        piece = instance if len(parts) == 1 else sub_instance(instance, part.couriers, part.stops)
        share = (deadline - time.monotonic()) / (len(parts) - n)
        plans.append(_solve_part(piece, share, options))
    plan = merge(plans)
    if plan.unassigned:
        plan = repair(instance, plan)
    return plan, len(parts)


# -- wire format between the API process and the child ---------------------------------


def _point(p: GeoPoint) -> list[float]:
    return [p.lat, p.lon]


def encode_request(
    couriers: list[Courier], stops: list[Stop], travel: TravelModel, options: SolverOptions
) -> bytes:
    return json.dumps(
        {
            "travel": asdict(travel),
            "options": asdict(options),
            "couriers": [
                {
                    "id": c.id,
                    "capacity_g": c.capacity_g,
                    "capacity_cm3": c.capacity_cm3,
                    "shift": [c.shift.start, c.shift.end],
                    "start": _point(c.start),
                    "end": _point(c.end),
                }
                for c in couriers
            ],
            "stops": [
                {
                    "id": s.id,
                    "point": _point(s.point),
                    "weight_g": s.weight_g,
                    "volume_cm3": s.volume_cm3,
                    "window": [s.window.start, s.window.end],
                    "service_s": s.service_s,
                }
                for s in stops
            ],
        }
    ).encode()


def decode_request(raw: bytes) -> tuple[list[Courier], list[Stop], TravelModel, SolverOptions]:
    body = json.loads(raw)
    couriers = [
        Courier(
            c["id"],
            int(c["capacity_g"]),
            int(c["capacity_cm3"]),
            Window(*c["shift"]),
            GeoPoint(*c["start"]),
            GeoPoint(*c["end"]),
        )
        for c in body["couriers"]
    ]
    stops = [
        Stop(
            s["id"],
            GeoPoint(*s["point"]),
            int(s["weight_g"]),
            int(s["volume_cm3"]),
            Window(*s["window"]),
            int(s["service_s"]),
        )
        for s in body["stops"]
    ]
    return couriers, stops, TravelModel(**body["travel"]), SolverOptions(**body["options"])


def _encode_plan(plan: Plan, parts: int) -> bytes:
    return json.dumps(
        {
            "routes": [
                {"courier_id": r.courier_id, "stop_ids": list(r.stop_ids)} for r in plan.routes
            ],
            "unassigned": list(plan.unassigned),
            "parts": parts,
        }
    ).encode()


def _decode_plan(raw: bytes) -> tuple[Plan, int]:
    body = json.loads(raw)
    routes = tuple(
        Route(str(r["courier_id"]), tuple(map(str, r["stop_ids"]))) for r in body["routes"]
    )
    return Plan(routes, tuple(map(str, body["unassigned"]))), int(body["parts"])


def main() -> None:
    started = time.monotonic()
    couriers, stops, travel, options = decode_request(sys.stdin.buffer.read())
    instance = build_instance(couriers, stops, travel)
    plan, parts = solve_in_process(instance, options, started=started)
    sys.stdout.buffer.write(_encode_plan(plan, parts))
    sys.stdout.buffer.flush()


# -- in the API process ------------------------------------------------------------------


async def run_solver(
    couriers: list[Courier], stops: list[Stop], travel: TravelModel, options: SolverOptions
) -> SolverResult:
    """Solve in a child process; PlanningFailed when it fails or overruns its budget."""
    started = time.monotonic()
    if not couriers or not stops:
        return SolverResult(Plan((), tuple(s.id for s in stops)), 0, 0.0)
    proc = await spawn_async(
        sys.executable,
        "-m",
        "wcs.services.fleet",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(encode_request(couriers, stops, travel, options)),
            timeout=options.budget_s + STARTUP_GRACE_S,
        )
    except TimeoutError:
        raise PlanningFailed(
            f"the route solver did not answer within {options.budget_s + STARTUP_GRACE_S:.0f} s; "
            "try again, or plan fewer parcels per day"
        ) from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        raise PlanningFailed(
            f"the route solver failed (exit {proc.returncode}): {' | '.join(tail) or 'no output'}"
        )
    try:
        plan, parts = _decode_plan(out)
    except (ValueError, KeyError, TypeError) as exc:
        raise PlanningFailed(f"the route solver answered something unreadable: {exc}") from None
    return SolverResult(plan, parts, time.monotonic() - started)


if __name__ == "__main__":
    main()
