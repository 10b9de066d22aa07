"""The lease rows: which controller instance holds which station (design §2).

``stations`` has a row per station of the floor (holder, expiry, epoch) and
``controller_instances`` a heartbeat per live instance. This module holds the
statements on them; what to take, keep or hand over is the controller's
(``controller.runtime``).

- The epoch grows with every change of holder: a batch commits only while its
  stations' epochs are the ones its instance took (the fence, in ``controller.store``).
- An instance renews only the stations it serves. One started again under a name that
  still holds rows releases them first: renewing by name would keep leases alive that
  nobody serves.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from controller.stations import FLOOR, StationSpec
from wcs.persistence.db import insert_skipping_duplicates
from wcs.persistence.tables import controller_instances, stations
from wcs.timeutil import utcnow


class Leases:
    """The lease statements of one instance."""

    def __init__(self, engine: AsyncEngine, instance: str, ttl: timedelta) -> None:
        self.engine = engine
        self.instance = instance
        self.ttl = ttl

    async def register(self, specs: Iterable[StationSpec]) -> None:
        """The instance is alive, holds nothing, and every station has its row."""
        now = utcnow()
        specs = list(specs)
        async with self.engine.begin() as conn:
            # Instances starting together on a new floor insert the same rows: the
            # first one's stand, the others' are nothing.
            if specs:
                await conn.execute(
                    insert_skipping_duplicates(conn.dialect.name, stations, "id"),
                    [
                        {
                            "id": s.id,
                            "kind": s.kind,
                            "holder": None,
                            "epoch": 0,
                            "expires_at": None,
                            "down": False,
                            "down_reason": None,
                            "updated_at": now,
                        }
                        for s in specs
                    ],
                )
            await conn.execute(
                update(stations)
                .where(stations.c.holder == self.instance)
                .values(holder=None, expires_at=None, updated_at=now)
            )
            await self._heartbeat(conn, now)

    async def renew(self, serving: Iterable[str]) -> tuple[int, dict[str, int]]:
        """Heartbeat and renew the stations served: (live instances, station -> epoch of
        each renewed). A station served but not renewed was taken by another."""
        now = utcnow()
        async with self.engine.begin() as conn:
            await self._heartbeat(conn, now)
            live = await conn.scalar(
                select(func.count())
                .select_from(controller_instances)
                .where(controller_instances.c.seen_at >= now - self.ttl)
            )
            renewed = {
                r.id: int(r.epoch)
                for r in await conn.execute(
                    update(stations)
                    .where(
                        and_(stations.c.holder == self.instance, stations.c.id.in_(list(serving)))
                    )
                    .values(expires_at=now + self.ttl)
                    .returning(stations.c.id, stations.c.epoch)
                )
            }
        return int(live or 1), renewed

    async def take_free(self, among: Iterable[str], wanted: int) -> list[tuple[str, int]]:
        """Up to ``wanted`` stations nobody holds (or whose lease ran out), the floor
        first: (station, its new epoch) of each taken."""
        now = utcnow()
        free_now = or_(stations.c.holder.is_(None), stations.c.expires_at < now)
        taken: list[tuple[str, int]] = []
        async with self.engine.begin() as conn:
            free = (
                await conn.scalars(
                    select(stations.c.id)
                    .where(and_(stations.c.id.in_(list(among)), free_now))
                    .order_by((stations.c.id == FLOOR).desc(), stations.c.id)
                    .limit(wanted)
                )
            ).all()
            for sid in free:
                epoch = await conn.scalar(
                    update(stations)
                    .where(and_(stations.c.id == sid, free_now))
                    .values(
                        holder=self.instance,
                        epoch=stations.c.epoch + 1,
                        expires_at=now + self.ttl,
                        updated_at=now,
                    )
                    .returning(stations.c.epoch)
                )
                if epoch is not None:
                    taken.append((sid, int(epoch)))
        return taken

    async def release(self, station: str, epoch: int) -> None:
        """Give a station back at once (a hand-over), if it is still ours at ``epoch``."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(stations)
                .where(
                    and_(
                        stations.c.id == station,
                        stations.c.holder == self.instance,
                        stations.c.epoch == epoch,
                    )
                )
                .values(holder=None, expires_at=None, updated_at=utcnow())
            )

    async def leave(self) -> None:
        """The instance stops: it no longer counts among the live ones."""
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(controller_instances).where(controller_instances.c.instance == self.instance)
            )

    async def _heartbeat(self, conn: AsyncConnection, now: datetime) -> None:
        result = await conn.execute(
            update(controller_instances)
            .where(controller_instances.c.instance == self.instance)
            .values(seen_at=now)
        )
        if result.rowcount == 0:
            await conn.execute(
                insert(controller_instances).values(
                    instance=self.instance, started_at=now, seen_at=now
                )
            )
