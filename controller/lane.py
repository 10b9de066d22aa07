"""A committer's own database connection, kept from one batch to the next.

Taking a connection from the pool and giving it back costs about as much CPU as a
statement (some 75 us), once per batch, on the controller's hottest path. A lane
keeps its connection instead, with its executor and the statements prepared on it
(``wcs.persistence.direct``), and only replaces it once it is broken (the database
restarted, the network dropped): the batch that met the break fails as before, the
committer retries it, and the retry connects afresh.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine

from wcs.persistence.db import connection_broken, reporting_outages
from wcs.persistence.direct import Direct


class Lane:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.db: Direct | None = None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Direct]:
        """One unit of work on the lane's connection; commits on success."""
        with reporting_outages():
            if self.db is None:
                conn = await self.engine.connect()
                try:
                    self.db = await Direct.of(conn)
                except BaseException:
                    await conn.close()
                    raise
            db = self.db
            try:
                async with db.transaction():
                    yield db
            except BaseException as exc:
                lost = db.broken or getattr(exc, "connection_invalidated", False)
                if lost or await connection_broken(db.conn):
                    await self.close(invalidate=True)
                raise

    async def close(self, *, invalidate: bool = False) -> None:
        """Give the connection back (``invalidate``: to be thrown away, it is broken)."""
        db, self.db = self.db, None
        if db is None:
            return
        conn = db.conn
        with contextlib.suppress(Exception):
            if invalidate and not conn.invalidated:
                await conn.invalidate()
            await conn.close()
