"""Fault injection at random moments: what goes wrong on a real floor, on purpose.

- controller: SIGKILL (no drain, no goodbye), restarted after up to 1.5 s;
- broker: Mosquitto stopped and started again on the same port (its persistence
  keeps the sessions and their queued messages);
- database: the drill's own PostgreSQL server (``PrivatePostgres``, never the
  machine's) restarted (a fast shutdown: every connection of every process is cut) or
  SIGKILLed whole and started again after up to 2 s (crash recovery); the drill waits
  until it answers again;
- device: a simulated scanner or PTL panel unplugged for a few seconds;
- drivers: the ``wcs drivers`` process SIGKILLed and restarted.

The schedule is drawn from a seeded random generator, so a failing drill can be
replayed with the same seed (it is printed with the report).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from device_sim.floor import SimFloor
from tests.faults.procs import Service
from wcs.mqtt.mosquitto import PrivateMosquitto
from wcs.persistence.private_postgres import PrivatePostgres

KINDS = (
    "controller_kill",
    "broker_restart",
    "pg_restart",
    "pg_kill",
    "device_unplug",
    "drivers_kill",
)


@dataclass(frozen=True)
class FaultPlan:
    controller_kills: int = 3
    broker_restarts: int = 1
    pg_restarts: int = 1
    pg_kills: int = 0
    device_unplugs: int = 1
    drivers_kills: int = 1

    def schedule(self, rng: random.Random) -> list[str]:
        kinds = (
            ["controller_kill"] * self.controller_kills
            + ["broker_restart"] * self.broker_restarts
            + ["pg_restart"] * self.pg_restarts
            + ["pg_kill"] * self.pg_kills
            + ["device_unplug"] * self.device_unplugs
            + ["drivers_kill"] * self.drivers_kills
        )
        rng.shuffle(kinds)
        return kinds


@dataclass
class FaultLog:
    done: Counter[str] = field(default_factory=Counter)
    timeline: list[tuple[float, str, str]] = field(default_factory=list)
    pg_down_s: list[float] = field(default_factory=list)


async def wait_for_postgres(dsn: str, timeout_s: float = 90.0) -> float:
    """Seconds until a query answers again."""
    started = time.monotonic()
    deadline = started + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            conn = await asyncpg.connect(dsn, timeout=2)
            try:
                await conn.fetchval("SELECT 1")
            finally:
                await conn.close()
            return time.monotonic() - started
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            last = exc
            await asyncio.sleep(0.2)
    raise TimeoutError(f"PostgreSQL did not come back within {timeout_s:.0f}s: {last!r}")


class Injector:
    def __init__(
        self,
        plan: FaultPlan,
        rng: random.Random,
        *,
        controllers: Sequence[Service],
        broker: PrivateMosquitto,
        drivers: Service | None,
        sim: SimFloor | None,
        sim_devices: Sequence[str],
        postgres: PrivatePostgres,
        pg_dsn: str,
    ) -> None:
        self.plan = plan
        self.rng = rng
        self.controllers = list(controllers)
        self.broker = broker
        self.drivers = drivers
        self.sim = sim
        self.sim_devices = list(sim_devices)
        self.postgres = postgres
        self.pg_dsn = pg_dsn
        self.log = FaultLog()
        self._began = time.monotonic()

    def _note(self, kind: str, detail: str) -> None:
        self.log.done[kind] += 1
        self.log.timeline.append((time.monotonic() - self._began, kind, detail))

    async def run(self, seconds: float) -> None:
        """Spread the plan's faults over ``seconds`` (none in the first and last 10%)."""
        kinds = self.plan.schedule(self.rng)
        if not kinds:
            await asyncio.sleep(seconds)
            return
        window = seconds * 0.8
        moments = sorted(seconds * 0.1 + self.rng.uniform(0, window) for _ in kinds)
        for at, kind in zip(moments, kinds, strict=True):
            delay = self._began + at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await getattr(self, kind)()
        rest = self._began + seconds - time.monotonic()
        if rest > 0:
            await asyncio.sleep(rest)

    async def controller_kill(self) -> None:
        # In turn, so that with several controllers each one dies as often.
        victim = self.controllers[self.log.done["controller_kill"] % len(self.controllers)]
        await asyncio.to_thread(victim.kill)
        down = self.rng.uniform(0.0, 1.5)
        await asyncio.sleep(down)
        victim.start()
        self._note("controller_kill", f"{victim.name} down {down:.1f}s")

    async def broker_restart(self) -> None:
        await asyncio.to_thread(self.broker.stop)
        down = self.rng.uniform(0.2, 2.0)
        await asyncio.sleep(down)
        await asyncio.to_thread(self.broker.start)
        self._note("broker_restart", f"down {down:.1f}s")

    async def pg_restart(self) -> None:
        started = time.monotonic()
        await asyncio.to_thread(self.postgres.restart)
        await wait_for_postgres(self.pg_dsn)
        took = time.monotonic() - started
        self.log.pg_down_s.append(took)
        self._note("pg_restart", f"back after {took:.1f}s")

    async def pg_kill(self) -> None:
        started = time.monotonic()
        await asyncio.to_thread(self.postgres.kill)
        down = self.rng.uniform(0.2, 2.0)
        await asyncio.sleep(down)
        await asyncio.to_thread(self.postgres.start)
        await wait_for_postgres(self.pg_dsn)
        took = time.monotonic() - started
        self.log.pg_down_s.append(took)
        self._note("pg_kill", f"SIGKILL, down {down:.1f}s, back after {took:.1f}s")

    async def device_unplug(self) -> None:
        if self.sim is None or not self.sim_devices:
            return
        device = self.rng.choice(self.sim_devices)
        down = self.rng.uniform(1.0, 4.0)
        async with self.sim[device].outage():
            await asyncio.sleep(down)
        self._note("device_unplug", f"{device} unplugged {down:.1f}s")

    async def drivers_kill(self) -> None:
        if self.drivers is None:
            return
        await asyncio.to_thread(self.drivers.kill)
        down = self.rng.uniform(0.2, 2.0)
        await asyncio.sleep(down)
        self.drivers.start()
        self._note("drivers_kill", f"down {down:.1f}s")
