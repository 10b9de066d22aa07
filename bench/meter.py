"""CPU spent during a measured step, from ``/proc``: the whole machine, the processes
under test, this database's PostgreSQL backends and the load generator itself.

On a small machine the load generator, the broker, PostgreSQL and the system under
test share the cores; the CPU per event says where the time goes and what a machine
with more cores would sustain.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import asyncpg


@dataclass
class Usage:
    machine_busy: float = 0.0  # share of all cores, 0..1
    processes_cpu_s: float = 0.0  # the processes under test
    postgres_cpu_s: float = 0.0
    loadgen_cpu_s: float = 0.0  # this process


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def process_cpu_s(pids: set[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                parts = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile (a pooled connection closed)
        ticks += int(parts[11]) + int(parts[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


class Meter:
    """``await meter.start()`` ... ``usage = await meter.stop()`` around a step."""

    def __init__(self, pids: list[int], db_url: str) -> None:
        self.pids = set(pids)
        self.dsn = db_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self._start: tuple[tuple[int, int], float, float, float, set[int]] | None = None

    async def _backends(self) -> set[int]:
        conn = await asyncpg.connect(self.dsn)
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()"
            )
        finally:
            await conn.close()
        return {int(r[0]) for r in rows}

    async def start(self) -> None:
        backends = await self._backends()
        self._start = (
            machine_ticks(),
            process_cpu_s(self.pids),
            process_cpu_s(backends),
            _own_cpu_s(),
            backends,
        )

    async def stop(self) -> Usage:
        assert self._start is not None
        (busy0, total0), procs0, pg0, own0, backends = self._start
        busy1, total1 = machine_ticks()
        own1 = _own_cpu_s()
        return Usage(
            machine_busy=(busy1 - busy0) / max(1, total1 - total0),
            processes_cpu_s=process_cpu_s(self.pids) - procs0,
            # Backends that appeared during the step counted from zero: close enough.
            postgres_cpu_s=process_cpu_s(backends | await self._backends()) - pg0,
            loadgen_cpu_s=own1 - own0,
        )
