"""Engine construction: the same code runs on SQLite (embedded) and PostgreSQL.

SQLite needs three things to behave under concurrent writers: WAL (readers do not
block the writer), a busy timeout (writers queue instead of failing at once) and
``BEGIN IMMEDIATE`` (a transaction takes the write lock at its start; otherwise two
readers that both decide to write deadlock and one gets "database is locked").
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as SqlTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from wcs.errors import ConfigError, WcsError
from wcs.tls import client_context


class DatabaseUnavailable(WcsError):
    code = "database_unavailable"


# What a background job's round fails with when the database (or a service it calls)
# is away or refuses, rather than because of a bug: logged once per outage, without a
# traceback (wcs.retry.Outage's ``expected``).
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, WcsError, OSError, TimeoutError)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


# libpq's TLS parameters in a connection URL, as psql and PostgreSQL's own tools read
# them (``sslmode`` arrives here as asyncpg's ``ssl``: wcs.settings.async_database_url).
TLS_FILES = ("sslrootcert", "sslcert", "sslkey")
TLS_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def postgres_tls(url: str) -> tuple[str, dict[str, Any]]:
    """``url`` without libpq's TLS parameters, and asyncpg's ``ssl`` argument made of
    them: ``sslmode`` as libpq has it, ``sslrootcert`` the CA file that signs the
    server's certificate (the system's trust store without it), ``sslcert`` and
    ``sslkey`` our client certificate. A CA or a client certificate without a mode
    means ``verify-full``; ``require`` with a CA verifies the chain, as libpq does.
    SQLite URLs and URLs without these parameters are returned as they are."""
    if is_sqlite(url):
        return url, {}
    parsed = make_url(url)
    query = {k: v for k, v in parsed.query.items() if isinstance(v, str)}
    mode = query.pop("sslmode", None) or query.pop("ssl", None)
    files = {name: query.pop(name) for name in TLS_FILES if name in query}
    if mode is None and not files:
        return url, {}
    bare = parsed.set(query=query).render_as_string(hide_password=False)
    if mode not in (None, *TLS_MODES):
        raise ConfigError(
            f"sslmode={mode} in WCS_DATABASE_URL is not one of {', '.join(TLS_MODES)}"
        )
    if mode == "disable":
        return bare, {"ssl": False}
    if mode in ("allow", "prefer"):
        return bare, {"ssl": mode}
    ca = files.get("sslrootcert")
    verify = mode in (None, "verify-ca", "verify-full") or ca is not None
    context = client_context(ca, files.get("sslcert"), files.get("sslkey"))
    context.check_hostname = mode in (None, "verify-full")
    if not verify:
        context.verify_mode = ssl.CERT_NONE
    return bare, {"ssl": context}


def insert_skipping_duplicates(dialect_name: str, table: Table, key: str) -> Any:
    """``INSERT ... ON CONFLICT (key) DO NOTHING`` on PostgreSQL and SQLite alike."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=[key])


def make_engine(
    url: str, *, pool_size: int = 10, echo: bool = False, pre_ping: bool = True
) -> AsyncEngine:
    """``pre_ping`` costs one round trip per checkout; hot loops that retry on failure
    anyway (the controller's committers) turn it off."""
    if is_sqlite(url):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        _sqlite_tuning(engine.sync_engine)
        return engine
    url, connect_args = postgres_tls(url)
    return create_async_engine(
        url,
        echo=echo,
        connect_args=connect_args,
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
        if is_outage(exc):
            raise DatabaseUnavailable(
                f"database unreachable or failing ({type(exc.orig).__name__}); "
                "check that PostgreSQL is running and WCS_DATABASE_URL is right"
            ) from exc
        raise


# SQLSTATE classes that say "the database cannot serve now", whatever the request:
# 08 connection exception, 53 insufficient resources (disk full, too many
# connections), 57 operator intervention (admin or crash shutdown, 57P03 "cannot
# connect now" while starting up or recovering), 58 system error (I/O).
OUTAGE_SQLSTATE_CLASSES = ("08", "53", "57", "58")
# Class 40: the database rolled the transaction back to break a deadlock or a
# serialization conflict. Not an outage, but the same answer for a client: retry.
ROLLED_BACK_SQLSTATE_CLASS = "40"
_OUTAGE_HINTS = (
    "connection",
    "could not connect",
    "terminating",
    "shutting down",
    "closed",
    "database is locked",
    "unable to open database",
    "disk i/o error",
)


def sqlstate(exc: BaseException) -> str:
    """The SQLSTATE a database error carries ('' when it has none)."""
    orig = getattr(exc, "orig", exc)
    return str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` says the database is away or cannot serve for now, as opposed
    to refusing this request's data: the answer is 503 and "retry", not 4xx or 500."""
    if isinstance(exc, SqlTimeout):  # no pooled connection came free in time
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        state = sqlstate(exc)
        if state:
            return state[:2] in OUTAGE_SQLSTATE_CLASSES
        if isinstance(exc, OperationalError | InterfaceError):
            return True
        text = str(exc.orig).lower()
        return any(hint in text for hint in _OUTAGE_HINTS)
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionError | TimeoutError):
            return True
        if type(cause).__module__.startswith("asyncpg") and sqlstate(cause)[:2] in (
            OUTAGE_SQLSTATE_CLASSES
        ):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


async def connection_broken(conn: AsyncConnection) -> bool:
    """Whether a connection kept from one unit of work to the next must be replaced
    (the database restarted, the network dropped)."""
    if conn.closed or conn.invalidated:
        return True
    try:
        raw = (await conn.get_raw_connection()).driver_connection
    except Exception:
        return True
    is_closed = getattr(raw, "is_closed", None)  # asyncpg; aiosqlite has no such state
    return bool(is_closed()) if callable(is_closed) else False
