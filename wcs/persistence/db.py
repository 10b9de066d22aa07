"""Engine construction: the same code runs on SQLite (embedded) and PostgreSQL.

SQLite needs three things to behave under concurrent writers: WAL (readers do not
block the writer), a busy timeout (writers queue instead of failing at once) and
``BEGIN IMMEDIATE`` (a transaction takes the write lock at its start; otherwise two
readers that both decide to write deadlock and one gets "database is locked").
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from wcs.errors import WcsError


class DatabaseUnavailable(WcsError):
    code = "database_unavailable"


# What a background job's round fails with when the database (or a service it calls)
# is away or refuses, rather than because of a bug: logged once per outage, without a
# traceback (wcs.retry.Outage's ``expected``).
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, WcsError, OSError, TimeoutError)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(
    url: str, *, pool_size: int = 10, echo: bool = False, pre_ping: bool = True
) -> AsyncEngine:
    """``pre_ping`` costs one round trip per checkout; hot loops that retry on failure
    anyway (the controller's committers) turn it off."""
    if is_sqlite(url):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        _sqlite_tuning(engine.sync_engine)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
    )


def _sqlite_tuning(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below) instead of pysqlite's lazy BEGIN.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Readers (``reading(engine)``) begin deferred so they never queue for the
        # write lock; everything else takes it up front.
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


READ_ONLY = "wcs_read_only"


def reading(engine: AsyncEngine) -> AsyncEngine:
    """The same engine for read-only work: on SQLite its transactions do not take the
    write lock, so status pages and polls never wait behind writers (or make them wait).
    Writing through it is a bug; on PostgreSQL it changes nothing."""
    return engine.execution_options(**{READ_ONLY: True})


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One unit of work; commits on success, rolls back on error.

    Connection failures become DatabaseUnavailable with a message an operator can act on.
    """
    with reporting_outages():
        async with engine.begin() as conn:
            yield conn


@contextmanager
def reporting_outages() -> Iterator[None]:
    """A database that is away raises DatabaseUnavailable (a message an operator can
    act on); any other database error passes as it is."""
    try:
        yield
    except (OperationalError, DBAPIError) as exc:
        if getattr(exc, "connection_invalidated", False) or _looks_like_outage(exc):
            raise DatabaseUnavailable(
                f"database unreachable or failing ({type(exc.orig).__name__}); "
                "check that PostgreSQL is running and WCS_DATABASE_URL is right"
            ) from exc
        raise


def _looks_like_outage(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return any(
        hint in text
        for hint in ("connection", "could not connect", "terminating", "shutting down", "closed")
    )
