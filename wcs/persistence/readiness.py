"""Is the database there and at the schema this version needs? Asked once, before a
process starts its work.

Without the check a process started on an empty or unreachable database kept
running and failed on every query ("no such table" several times a second). With
it, each process refuses to start with one line that says what to do, and exits
non-zero. The check writes nothing: an SQLite file that does not exist is reported,
not created (``wcs db upgrade`` creates it).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from wcs.errors import ConfigError, WcsError
from wcs.persistence.db import postgres_tls
from wcs.persistence.migrate import current_heads

UPGRADE = "run `wcs db upgrade`"


class DatabaseNotReady(WcsError):
    code = "database_not_ready"


def describe(url: str) -> str:
    """The database as an operator names it, never with its password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "WCS_DATABASE_URL"
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite file {parsed.database}"
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    return f"PostgreSQL database {parsed.database!r} at {where}"


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


async def check_database(url: str, *, timeout_s: float = 3.0) -> str:
    """The schema revision when the database is reachable and migrated to the head
    this version ships; otherwise DatabaseNotReady with one line to act on."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseNotReady(
            f"WCS_DATABASE_URL {url.split('://', 1)[0]}://… is not a database URL; "
            "use sqlite:///var/wcs.db or postgresql://user@host/db"
        ) from None
    name = describe(url)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise DatabaseNotReady(f"no database: {name} does not exist; {UPGRADE} to create it")
    try:
        url, connect_args = postgres_tls(url)
    except (ConfigError, OSError) as exc:  # a TLS file missing or not a certificate
        raise DatabaseNotReady(f"cannot set up TLS to the {name}: {exc}") from None
    if parsed.get_backend_name() == "postgresql":
        connect_args["timeout"] = timeout_s
    try:
        engine = create_async_engine(url, connect_args=connect_args, poolclass=NullPool)
    except (ArgumentError, NoSuchModuleError, ImportError):
        raise DatabaseNotReady(
            f"WCS_DATABASE_URL names a database this system does not run on "
            f"({parsed.drivername}); use sqlite:///var/wcs.db or postgresql://user@host/db"
        ) from None
    try:
        async with asyncio.timeout(timeout_s + 1):
            async with engine.connect() as conn:
                revision = await _revision(conn)
    except TimeoutError:
        raise DatabaseNotReady(
            f"cannot reach the {name} within {timeout_s:g} s; check that it is running "
            "and WCS_DATABASE_URL is right"
        ) from None
    except DBAPIError as exc:
        raise DatabaseNotReady(_refusal(name, exc)) from None
    except OSError as exc:
        raise DatabaseNotReady(
            f"cannot reach the {name} ({exc.strerror or type(exc).__name__}); check that it "
            "is running and WCS_DATABASE_URL is right"
        ) from None
    finally:
        await engine.dispose()
    heads = current_heads()
    if revision is None:
        raise DatabaseNotReady(f"the {name} has no schema yet; {UPGRADE}")
    if revision not in heads:
        raise DatabaseNotReady(
            f"the {name} is at schema revision {revision}, this version needs "
            f"{', '.join(heads)}; {UPGRADE}"
        )
    return revision


async def _revision(conn: object) -> str | None:
    from sqlalchemy.ext.asyncio import AsyncConnection

    assert isinstance(conn, AsyncConnection)
    has_table = await conn.run_sync(lambda sync: sync.dialect.has_table(sync, "alembic_version"))
    if not has_table:
        return None
    value = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    return str(value) if value is not None else None


def _refusal(name: str, exc: DBAPIError) -> str:
    # The async adapters wrap the driver's own exception: name that one.
    cause: BaseException = (exc.orig.__cause__ if exc.orig else None) or exc.orig or exc
    kind = type(cause).__name__
    text_ = str(cause).splitlines()[0] if str(cause) else kind
    if kind == "InvalidCatalogNameError":
        return f"the {name} does not exist; create it (createdb), then {UPGRADE}"
    if kind in ("InvalidPasswordError", "InvalidAuthorizationSpecificationError"):
        return f"the {name} refused the login ({text_}); check the user and password"
    if "unable to open database file" in text_:
        return f"cannot open the {name}; check that its folder exists and is writable"
    return f"cannot use the {name} ({kind}: {text_[:160]})"
