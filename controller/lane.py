"""A committer's own database connection, kept from one batch to the next.

Taking a connection from the pool and giving it back costs about as much CPU as a
statement (some 75 us), once per batch, on the controller's hottest path. A lane
keeps its connection instead and only replaces it once it is broken (the database
restarted, the network dropped): the batch that met the break fails as before, the
committer retries it, and the retry connects afresh.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.persistence.db import reporting_outages


class Lane:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._conn: AsyncConnection | None = None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One unit of work on the lane's connection; commits on success."""
        with reporting_outages():
            if self._conn is None:
                self._conn = await self.engine.connect()
            conn = self._conn
            try:
                async with conn.begin():
                    yield conn
            except BaseException:
                if await _broken(conn):
                    await self.close(invalidate=True)
                raise

    async def close(self, *, invalidate: bool = False) -> None:
        """Give the connection back (``invalidate``: to be thrown away, it is broken)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            if invalidate and not conn.invalidated:
                await conn.invalidate()
            await conn.close()


async def _broken(conn: AsyncConnection) -> bool:
    if conn.closed or conn.invalidated:
        return True
    try:
        raw = (await conn.get_raw_connection()).driver_connection
    except Exception:
        return True
    is_closed = getattr(raw, "is_closed", None)  # asyncpg; aiosqlite has no such state
    return bool(is_closed()) if callable(is_closed) else False
