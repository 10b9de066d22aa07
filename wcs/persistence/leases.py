"""Named leases in the database: one holder at a time for singleton jobs.

Works the same on SQLite and PostgreSQL (a conditional update, then an insert that
loses cleanly on a primary-key race), so it needs no advisory locks.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, delete, insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.persistence.tables import leases
from wcs.timeutil import utcnow


async def acquire_lease(engine: AsyncEngine, name: str, holder: str, ttl: timedelta) -> bool:
    """Take or renew ``name`` for ``holder``; False when someone else holds it."""
    now = utcnow()
    async with engine.begin() as conn:
        result = await conn.execute(
            update(leases)
            .where(
                and_(
                    leases.c.name == name,
                    or_(leases.c.holder == holder, leases.c.expires_at < now),
                )
            )
            .values(holder=holder, expires_at=now + ttl)
        )
        if result.rowcount == 1:
            return True
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(leases).values(name=name, holder=holder, expires_at=now + ttl)
            )
    except IntegrityError:
        return False
    return True


async def release_lease(engine: AsyncEngine, name: str, holder: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            delete(leases).where(and_(leases.c.name == name, leases.c.holder == holder))
        )
