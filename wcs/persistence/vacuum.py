"""Vacuum and analyze of the WCS's own tables when PostgreSQL's autovacuum does not.

Our hottest statements are prepared once per connection, and PostgreSQL plans a
prepared statement from its table statistics. A server that runs without
autovacuum never refreshes them, so a statement first planned against an empty
table keeps that plan for ever: measured on such a server, intake's key look-up
stayed a sequential scan of ``orders`` (11 ms a batch after 30,000 orders, growing)
and the outbox marks a bitmap scan of every unpublished row, and intake's p50 at
half its highest rate went from 15 ms to 180-250 ms within a minute. Dead rows
(the outbox marks each row it publishes) pile up the same way.

So with ``WCS_VACUUM=auto`` (the default) one process of the installation, holding
the ``vacuum`` lease, checks the server's ``autovacuum`` setting; when it is off,
that process does autovacuum's job for our tables only, with autovacuum's own
thresholds (:func:`due`): every second it reads ``pg_stat_user_tables`` and
vacuums or analyzes the tables past them, a few at a time (``run_once``). ``on``
does this whatever the server's setting; ``off`` leaves it to the database's
administrator. SQLite needs none of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, Self

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.persistence.db import OUTAGE_ERRORS
from wcs.persistence.leases import Lease
from wcs.persistence.schema import Base
from wcs.retry import Outage
from wcs.tasks import background, every

log = logging.getLogger(__name__)

Mode = Literal["auto", "on", "off"]

# PostgreSQL's defaults for autovacuum_{vacuum,analyze}_{threshold,scale_factor}.
VACUUM_BASE, VACUUM_SCALE = 50, 0.2
ANALYZE_BASE, ANALYZE_SCALE = 50, 0.1


@dataclass(frozen=True, slots=True)
class TableStats:
    name: str
    rows: float  # pg_class.reltuples as of the last vacuum or analyze; -1 never
    dead: int
    changed: int  # rows inserted, updated or deleted since the last analyze


@dataclass(frozen=True, slots=True)
class Work:
    table: str
    vacuum: bool
    analyze: bool

    @property
    def statement(self) -> str:
        verb = (
            "VACUUM (ANALYZE)"
            if self.vacuum and self.analyze
            else ("VACUUM" if self.vacuum else "ANALYZE")
        )
        return f'{verb} "{self.table}"'


def due(stats: list[TableStats]) -> list[Work]:
    """The tables autovacuum would vacuum or analyze now, with its default thresholds,
    the furthest past them first."""
    work: list[tuple[float, Work]] = []
    for t in stats:
        rows = max(t.rows, 0.0)
        over_vacuum = t.dead / (VACUUM_BASE + VACUUM_SCALE * rows)
        over_analyze = t.changed / (ANALYZE_BASE + ANALYZE_SCALE * rows)
        if over_vacuum > 1 or over_analyze > 1:
            urgency = max(over_vacuum, over_analyze)
            work.append((urgency, Work(t.name, over_vacuum > 1, over_analyze > 1)))
    return [w for _, w in sorted(work, key=lambda item: -item[0])]


_STATS = text(
    "SELECT s.relname, c.reltuples, s.n_dead_tup, s.n_mod_since_analyze"
    " FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid"
    " WHERE s.schemaname = current_schema()"
)


@dataclass
class VacuumStats:
    rounds: int = 0
    vacuums: int = 0
    analyzes: int = 0


class Vacuuming:
    """Run as ``async with Vacuuming(engine, mode):`` in every long-running process;
    the lease makes one of them do the work."""

    LEASE = "vacuum"
    ROUND_BUDGET_S = 0.05

    def __init__(self, engine: AsyncEngine, mode: Mode = "auto", *, interval_s: float = 1.0):
        self._engine = engine
        self._mode: Mode = mode
        self._interval_s = interval_s
        self._tables = frozenset(Base.metadata.tables)
        self._lease = Lease(engine, self.LEASE, ttl=timedelta(seconds=max(30.0, 3 * interval_s)))
        self._outage = Outage("vacuum of the WCS tables", log, expected=OUTAGE_ERRORS)
        self._stack = contextlib.AsyncExitStack()
        self._task: asyncio.Task[None] | None = None
        self.stats = VacuumStats()
        self._done_at: dict[str, float] = {}  # table -> monotonic time of its last turn

    @property
    def finished(self) -> bool:
        """Nothing to do here: off, SQLite, or the server's autovacuum is on."""
        return self._task is None or self._task.done()

    async def __aenter__(self) -> Self:
        if self._mode != "off" and self._engine.dialect.name == "postgresql":
            self._task = await self._stack.enter_async_context(
                background("vacuum", self._lease.run(self._job))
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _job(self) -> None:
        if self._mode == "auto":
            async with self._engine.connect() as conn:
                if await conn.scalar(text("SELECT current_setting('autovacuum')")) == "on":
                    return  # the server does it; giving the lease up ends the task
            log.info(
                "PostgreSQL's autovacuum is off: this installation vacuums and analyzes "
                "its own tables (WCS_VACUUM=off leaves that to the database's administrator)"
            )
        await every(self._interval_s, self._round, self._outage)

    async def _round(self) -> None:
        # Not run_once's list: ``every`` runs a round that returns something true
        # again at once, and the statistics of a table just vacuumed lag behind.
        await self.run_once()

    async def run_once(self) -> list[Work]:
        """One look at the statistics, and the work they call for, the table done
        longest ago first, for about ``ROUND_BUDGET_S`` at most (one statement at least).

        A burst of them (an analyze of every table an intake minute has grown) took a
        core for a quarter of a second, and on two cores the orders arriving
        meanwhile waited it out; the rest waits for the next round."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(_STATS)).all()
            await conn.rollback()
        stats = [TableStats(r[0], float(r[1]), int(r[2]), int(r[3])) for r in rows]
        work = sorted(
            due([t for t in stats if t.name in self._tables]),
            key=lambda w: self._done_at.get(w.table, 0.0),
        )
        self.stats.rounds += 1
        done: list[Work] = []
        if not work:
            return done
        started = time.monotonic()
        async with self._engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            # Paced as autovacuum paces itself, so a vacuum does not take the machine
            # from the work it tidies up after. The statistics sample 3,000 rows, not
            # 30,000: our statements look rows up by key, and the full sample of a
            # table of orders took 200-350 ms of a core.
            await auto.execute(text("SET vacuum_cost_delay = '2ms'"))
            await auto.execute(text("SET default_statistics_target = 10"))
            try:
                for w in work:
                    if done and time.monotonic() - started > self.ROUND_BUDGET_S:
                        break
                    t0 = time.monotonic()
                    await auto.execute(text(w.statement))
                    self._done_at[w.table] = time.monotonic()
                    log.debug("%s took %.0f ms", w.statement, 1000 * (time.monotonic() - t0))
                    done.append(w)
            except BaseException:
                # Cut off mid-statement (an outage, or the process stopping): the
                # connection is closed rather than reset, since a statement on it now
                # could fail and replace this error - a cancellation among them.
                with contextlib.suppress(Exception):
                    await auto.invalidate()
                raise
            # The connection goes back to the pool: its next user gets the defaults.
            await auto.execute(text("RESET vacuum_cost_delay"))
            await auto.execute(text("RESET default_statistics_target"))
        self.stats.vacuums += sum(w.vacuum for w in done)
        self.stats.analyzes += sum(w.analyze for w in done)
        return done
