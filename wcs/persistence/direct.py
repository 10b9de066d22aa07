"""Core statements run on the driver's own connection: the hot path's executor.

Executing a statement through SQLAlchemy's async engine costs 140-180 us of CPU
here (its cache key, the execution context, the greenlet hop into the adapted
driver); asyncpg runs the same prepared statement for about 50 us. The controller
runs five or more statements per micro-batch, so on PostgreSQL ``Direct`` compiles
each Core statement once with SQLAlchemy (the same statement objects the SQLite path
runs), prepares it once per connection and runs it straight on asyncpg. On other
dialects, and for any statement whose execution needs SQLAlchemy's help (Python-side
column defaults, expanding ``IN`` lists), it simply calls SQLAlchemy.

A transaction for such a connection is the driver's too (``transaction``): the
SQLAlchemy connection is put in autocommit mode, so that statements still run
through SQLAlchemy (reads, savepoints) take part in the driver's transaction instead
of beginning one of their own. This module is the one place that knows asyncpg's
objects.
"""

from __future__ import annotations

import contextlib
import operator
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable

_REQUIRED = object()
_COUNT = re.compile(r"(?:SELECT|UPDATE|DELETE|INSERT \d+) (\d+)")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a statement returned: its rows (indexable by position) and the rows it touched."""

    rows: Sequence[Sequence[Any]]
    rowcount: int


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the bind names of $1, $2, ...
    defaults: tuple[Any, ...]  # a bind's own value, or _REQUIRED
    processors: tuple[Callable[[Any], Any] | None, ...]
    direct: bool  # False: SQLAlchemy must run it (defaults to compute, expanding lists)
    # Every bind named in the parameters (no defaults): they are read in one C call,
    # and only the ones with a processor are converted (rows of a batch are many).
    getter: Callable[[Mapping[str, Any]], tuple[Any, ...]] | None
    processed: tuple[tuple[int, Callable[[Any], Any]], ...]


class Direct:
    """One connection's executor. Make it with ``await Direct.of(conn)`` and keep it
    as long as the connection: its prepared statements live on that connection."""

    def __init__(self, conn: AsyncConnection, driver: Any | None) -> None:
        self.conn = conn
        self._driver = driver  # asyncpg's connection, or None: SQLAlchemy runs everything
        self._compiled: dict[tuple[int, tuple[str, ...], bool], tuple[Any, _Compiled]] = {}
        self._prepared: dict[str, Any] = {}
        self.broken = False  # a transaction could not be rolled back: replace the connection

    @classmethod
    async def of(cls, conn: AsyncConnection) -> Direct:
        if conn.dialect.name != "postgresql":
            return cls(conn, None)
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        return cls(conn, (await conn.get_raw_connection()).driver_connection)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One transaction, committed when the block ends without an error."""
        if self._driver is None:
            async with self.conn.begin():
                yield self.conn
            return
        with self._errors("BEGIN"):
            transaction = self._driver.transaction()
            await transaction.start()
        try:
            yield self.conn
        except BaseException:
            # A connection that is gone, or cut off mid-statement, cannot roll back:
            # the error that ended the block is the one to report, and the connection
            # is not to be used again.
            try:
                await transaction.rollback()
            except Exception:
                self.broken = True
            raise
        else:
            with self._errors("COMMIT"):
                await transaction.commit()
        finally:
            # SQLAlchemy's record of the statements it ran (nothing reaches the driver
            # in autocommit mode): the next unit starts from a clean slate.
            if self.conn.in_transaction():
                with contextlib.suppress(Exception):
                    await self.conn.rollback()

    async def execute(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> Outcome:
        """Run ``stmt`` once with ``params``."""
        params = params or {}
        compiled = None if self._driver is None else self._compile(stmt, params, many=False)
        if compiled is None or not compiled.direct:
            result = await self.conn.execute(stmt, dict(params))
            rows = result.all() if result.returns_rows else []
            return Outcome(rows, result.rowcount if not result.returns_rows else len(rows))
        values = _values(compiled, params)
        with self._errors(compiled.sql):
            prepared = await self._prepare(compiled.sql)
            rows = await prepared.fetch(*values)
        if rows:
            return Outcome(rows, len(rows))
        match = _COUNT.match(prepared.get_statusmsg() or "")
        return Outcome(rows, int(match.group(1)) if match else -1)

    async def executemany(self, stmt: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run ``stmt`` once per entry of ``rows`` (all with the same keys), in one round trip."""
        if not rows:
            return
        compiled = None if self._driver is None else self._compile(stmt, rows[0], many=True)
        if compiled is None or not compiled.direct:
            await self.conn.execute(stmt, [dict(r) for r in rows])
            return
        values = [_values(compiled, r) for r in rows]
        with self._errors(compiled.sql):
            prepared = await self._prepare(compiled.sql)
            await prepared.executemany(values)

    def _compile(self, stmt: Executable, params: Mapping[str, Any], *, many: bool) -> _Compiled:
        # As SQLAlchemy compiles it: an INSERT or UPDATE without values() for a column
        # sets the columns its parameters name.
        keys = tuple(sorted(params))
        key = (id(stmt), keys, many)
        cached = self._compiled.get(key)
        if cached is not None and cached[0] is stmt:
            return cached[1]
        compiled = _compile(stmt, self.conn.dialect, keys, many=many)
        self._compiled[key] = (stmt, compiled)  # the statement kept: its id stays its own
        return compiled

    @contextlib.contextmanager
    def _errors(self, sql: str) -> Iterator[None]:
        """The driver's errors as SQLAlchemy raises them (``DBAPIError`` with the
        driver's error as ``orig``), so that whoever tells an outage from a refusal
        (``wcs.persistence.db.is_outage``) sees the same errors on either path."""
        try:
            yield
        except (
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,  # e.g. the server's goodbye met a new statement
            OSError,
            TimeoutError,
        ) as exc:
            if isinstance(exc, asyncpg.InvalidCachedStatementError):
                self._prepared.clear()  # the schema changed under them: prepare afresh
            lost = not isinstance(exc, asyncpg.PostgresError)  # the connection, not the SQL
            raise DBAPIError.instance(
                sql, None, exc, Exception, hide_parameters=True, connection_invalidated=lost
            ) from exc

    async def _prepare(self, sql: str) -> Any:
        prepared = self._prepared.get(sql)
        if prepared is None:
            assert self._driver is not None
            prepared = self._prepared[sql] = await self._driver.prepare(sql)
        return prepared


def _compile(stmt: Executable, dialect: Any, keys: tuple[str, ...], *, many: bool) -> _Compiled:
    compiled: Any = stmt.compile(  # type: ignore[attr-defined]
        dialect=dialect, column_keys=list(keys), for_executemany=many
    )
    names = tuple(compiled.positiontup or ())
    binds = [compiled.binds[n] for n in names]
    direct = (
        not compiled.insert_prefetch
        and not compiled.update_prefetch
        and not any(b.expanding for b in binds)
    )
    processors = tuple(b.type.dialect_impl(dialect).bind_processor(dialect) for b in binds)
    getter = None
    if names and all(b.required for b in binds):
        many_names = operator.itemgetter(*names)
        getter = many_names if len(names) > 1 else lambda params: (many_names(params),)
    return _Compiled(
        sql=compiled.string,
        names=names,
        defaults=tuple(_REQUIRED if b.required else b.effective_value for b in binds),
        processors=processors,
        direct=direct,
        getter=getter,
        processed=tuple((i, p) for i, p in enumerate(processors) if p is not None),
    )


def _values(compiled: _Compiled, params: Mapping[str, Any]) -> Sequence[Any]:
    if compiled.getter is not None:
        read = compiled.getter(params)
        if not compiled.processed:
            return read
        converted = list(read)
        for i, convert in compiled.processed:
            converted[i] = convert(converted[i])
        return converted
    values: list[Any] = []
    for name, default, process in zip(
        compiled.names, compiled.defaults, compiled.processors, strict=True
    ):
        value = params[name] if default is _REQUIRED else params.get(name, default)
        values.append(value if process is None else process(value))
    return values
