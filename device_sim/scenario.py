"""A whole simulated shift on a simulated floor: people, goods and the devices they use.

::

    world = World(plan_slotting(locations, expected_orders=300, seed=7), seed=7)
    async with Handheld(api_url, token) as hh, Shift(sim, world, hh, ShiftOptions()) as shift:
        ...                      # orders arrive through the API meanwhile
        shift.raise_if_failed()  # a person who got stuck fails the shift loudly

:class:`Shift` puts one person at every station of the floor (see
:mod:`device_sim.people`), plus goods-in, the outbound dock and the exception desk,
each as a named task. The people act only through the simulated devices (scanners,
PTL panels, scales, printers, the conveyor) and what a handheld shows of the API;
goods are modelled in :class:`device_sim.world.World`.

A shift is reproducible: every decision (a mispick, damaged units, a stray object on
the scale, a failed QC) is drawn from the run's seed and the order's reference, so the
same seed makes the same mistakes on the same orders however the timing falls out.
``speed`` divides the time people take for their work; the system is never slowed
down or sped up.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from device_sim.floor import SimFloor
from device_sim.handheld import Handheld
from device_sim.people import Crew, Pace, Person, Rates, ShiftError, ShiftStats, Timings, crew_for
from device_sim.world import World
from wcs.logs import get_logger

log = get_logger("device_sim.scenario")

__all__ = ["Rates", "Shift", "ShiftError", "ShiftOptions", "ShiftStats", "Timings"]


@dataclass(frozen=True)
class ShiftOptions:
    speed: float = 50.0
    rates: Rates = field(default_factory=Rates)
    timings: Timings = field(default_factory=Timings)
    # How often people look at the handheld while waiting for the system.
    poll_s: float = 0.05
    # How long anyone waits for the system before declaring the shift stuck.
    wait_s: float = 30.0


class Shift:
    """Everybody at work on the floor; ``async with`` starts and stops them."""

    def __init__(
        self, sim: SimFloor, world: World, handheld: Handheld, options: ShiftOptions | None = None
    ) -> None:
        self.options = options or ShiftOptions()
        self.world = world
        self.crew = Crew(
            sim=sim,
            world=world,
            handheld=handheld,
            pace=Pace(self.options.speed, self.options.timings),
            rates=self.options.rates,
            poll_s=self.options.poll_s,
            wait_s=self.options.wait_s,
        )
        self.people: list[Person] = crew_for(self.crew)
        self._tasks: list[asyncio.Task[None]] = []
        self.failure: BaseException | None = None
        self.failed = asyncio.Event()

    @property
    def stats(self) -> ShiftStats:
        return self.crew.stats

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        for person in self.people:
            task = loop.create_task(person.run(), name=f"person:{person.name}")
            task.add_done_callback(self._ended)
            self._tasks.append(task)
        log.info("shift started", people=[p.name for p in self.people])
        return self

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            exc = ShiftError(f"{task.get_name()} went home early")
        log.error("person stopped working", task=task.get_name(), error=repr(exc))
        if self.failure is None:
            self.failure = exc
            self.failed.set()

    def raise_if_failed(self) -> None:
        if self.failure is not None:
            raise ShiftError(f"the shift is stuck: {self.failure}") from self.failure

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
