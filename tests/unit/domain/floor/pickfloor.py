"""A small pick station for the floor domain's tests: panels, items, tasks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from tests.unit.domain.floor.legal import check_ptl, check_tote_moves, of
from wcs.domain.floor.effects import Command, Effect
from wcs.domain.floor.machines import TaskState
from wcs.domain.floor.pick import BatchStarted, PickEvent, PickStation, Task, decide

STATION = "PS1"
PANEL = "PS1-PTL-1"
PANEL2 = "PS1-PTL-2"
SLOTS: Mapping[str, tuple[int, ...]] = {PANEL: (0, 1, 2, 3), PANEL2: (0, 1)}
# Item barcode -> SKU; each SKU also answers to its own code.
CODES: Mapping[str, str] = {
    "4006381333931": "SKU-A",
    "SKU-A": "SKU-A",
    "4006381333948": "SKU-B",
    "SKU-B": "SKU-B",
    "4006381333955": "SKU-C",
    "SKU-C": "SKU-C",
    "4006381333962": "SKU-D",
    "SKU-D": "SKU-D",
}
CODE = {sku: code for code, sku in CODES.items() if code != sku}


def task(
    id: int,
    seq: int,
    order: str,
    sku: str,
    qty: int,
    slot: int | None,
    *,
    panel: str | None = PANEL,
    picked: int = 0,
    state: TaskState = TaskState.OPEN,
) -> Task:
    """Task ``id`` of line ``id * 10``, reservation ``id * 100``, location ``L-<id>``."""
    return Task(
        id=id,
        seq=seq,
        order_id=order,
        line_id=id * 10,
        reservation_id=id * 100,
        sku=sku,
        location=f"L-{id}",
        qty=qty,
        picked=picked,
        state=state,
        panel=panel if slot is not None else None,
        slot=slot,
    )


def station(**changes: Any) -> PickStation:
    return replace(PickStation(STATION, SLOTS), **changes)


def run(state: PickStation, event: PickEvent) -> tuple[PickStation, list[Effect]]:
    """decide(), checked as every decision must be: deterministic, commands legal."""
    after, effects = decide(state, event)
    again, effects_again = decide(state, event)
    assert (again, effects_again) == (after, effects)
    check_ptl(of(Command, effects), SLOTS)
    check_tote_moves(effects)
    return after, effects


def started(
    tasks: Iterable[Task],
    totes: Mapping[str, str] | None = None,
    *,
    begun: frozenset[str] = frozenset(),
) -> tuple[PickStation, list[Effect]]:
    """A station with batch B1 just started (every order has a tote unless given)."""
    tasks = tuple(tasks)
    if totes is None:
        totes = {o: f"T-{o}" for o in sorted({t.order_id for t in tasks})}
    return run(station(), BatchStarted("B1", tasks, CODES, totes, begun))


Shown = tuple[str, str, dict[str, object]]  # a command as (device, name, fields)


def commands(effects: Iterable[Effect]) -> list[Shown]:
    return [(c.device, c.name, dict(c.fields)) for c in of(Command, effects)]


def light(slot: int, qty: int, panel: str = PANEL) -> Shown:
    return (panel, "light", {"slot": slot, "qty": qty, "color": "green"})


def red(slot: int, qty: int, panel: str = PANEL) -> Shown:
    return (panel, "light", {"slot": slot, "qty": qty, "color": "red", "blink": True})


def clear(slot: int, panel: str = PANEL) -> Shown:
    return (panel, "clear", {"slot": slot})
