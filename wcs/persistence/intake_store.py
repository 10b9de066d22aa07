"""Order intake's storage: a batch of orders in a handful of statements, two dialects.

A batch reads the idempotency keys it carries, takes stock for its total demand, and
writes every row of every order it creates. ``SqlIntakeStore`` speaks SQLAlchemy Core
and runs on any supported database (SQLite for the embedded default, where writers
are serialised by ``BEGIN IMMEDIATE``, so reading the piles and then updating them is
exact). ``PgIntakeStore`` sends the same operations straight to asyncpg as prepared
statements (asyncpg keeps them per connection, so each is parsed once): the take is
one statement that locks, chooses and updates the piles, and all the batch's rows go
in one statement of data-modifying CTEs fed by arrays. On this path SQLAlchemy's
per-statement work would cost more than the database's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, Protocol

from sqlalchemy import Table, and_, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from wcs.domain.reservation import Availability, take
from wcs.errors import Conflict
from wcs.persistence.inventory import RESERVABLE_ZONES, TAKE, availability
from wcs.persistence.tables import (
    alerts,
    notify_requests,
    order_events,
    order_lines,
    orders,
    outbox,
    replenishment_requests,
    reservations,
    skus,
    stock,
)


@dataclass(frozen=True, slots=True)
class KnownOrder:
    """What a repeated idempotency key finds: enough to answer the replay."""

    id: str
    state: str
    request_hash: str | None
    exception_reason: str | None


@dataclass
class BatchRows:
    """Every row a batch writes, per table, in the order they are to be written.

    Reservations name their line by ``(order_id, line_no)``: the line's id is made by
    the database in the same write.
    """

    orders: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    reservations: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    notify: list[dict[str, Any]] = field(default_factory=list)
    replenishments: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)


Held = dict[str, list[Availability]]


class IntakeStore(Protocol):
    async def known_skus(self, wanted: Iterable[str]) -> set[str]: ...

    async def claim(
        self, keys: Sequence[str], want: Mapping[str, int], now: datetime
    ) -> tuple[dict[str, KnownOrder], Held]:
        """The orders already made under ``keys``, and up to ``want`` units per SKU
        taken from reservable piles: what was taken, per pile (``available`` is the
        quantity now held by the batch)."""
        ...

    async def give_back(self, units: Sequence[tuple[str, str, int]], now: datetime) -> None: ...

    async def write(self, rows: BatchRows) -> None: ...


class TakeRaced(Conflict):
    """A pile changed between reading and updating it (cannot happen under SQLite's
    write lock; raised rather than ever over-reserving)."""

    code = "reservation_contended"


# --- any database, through SQLAlchemy Core -------------------------------------------

_BY_KEYS = select(
    orders.c.idempotency_key,
    orders.c.id,
    orders.c.state,
    orders.c.request_hash,
    orders.c.exception_reason,
).where(orders.c.idempotency_key.in_(bindparam("keys", expanding=True)))
_KNOWN = select(skus.c.sku).where(skus.c.sku.in_(bindparam("wanted", expanding=True)))
_GIVE_BACK = (
    update(stock)
    .where(and_(stock.c.sku == bindparam("b_sku"), stock.c.location == bindparam("b_location")))
    .values(reserved=stock.c.reserved - bindparam("b_qty"), updated_at=bindparam("b_now"))
)
_LINES_RETURNING = insert(order_lines).returning(
    order_lines.c.id, order_lines.c.order_id, order_lines.c.line_no, sort_by_parameter_order=True
)


class SqlIntakeStore:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def existing(self, keys: Sequence[str]) -> dict[str, KnownOrder]:
        if not keys:
            return {}
        rows = await self.conn.execute(_BY_KEYS, {"keys": list(keys)})
        return {
            r.idempotency_key: KnownOrder(r.id, r.state, r.request_hash, r.exception_reason)
            for r in rows
        }

    async def known_skus(self, wanted: Iterable[str]) -> set[str]:
        asked = sorted(set(wanted))
        if not asked:
            return set()
        return set((await self.conn.scalars(_KNOWN, {"wanted": asked})).all())

    async def claim(
        self, keys: Sequence[str], want: Mapping[str, int], now: datetime
    ) -> tuple[dict[str, KnownOrder], Held]:
        return await self.existing(keys), await self.take(want, now)

    async def take(self, want: Mapping[str, int], now: datetime) -> Held:
        if not want:
            return {}
        piles = await availability(self.conn, want)
        held: dict[str, list[Availability]] = {}
        updates: list[dict[str, Any]] = []
        for sku, need in want.items():
            ranks = {p.location: p.walk_rank for p in piles[sku]}
            total = sum(p.available for p in piles[sku])
            for location, qty in take(min(need, total), piles[sku]):
                held.setdefault(sku, []).append(Availability(location, qty, ranks[location]))
                updates.append({"b_sku": sku, "b_location": location, "b_qty": qty, "b_now": now})
        for params in updates:
            if (await self.conn.execute(TAKE, params)).rowcount != 1:
                raise TakeRaced(f"stock of {params['b_sku']} changed while reserving; try again")
        return held

    async def give_back(self, units: Sequence[tuple[str, str, int]], now: datetime) -> None:
        if units:
            await self.conn.execute(
                _GIVE_BACK,
                [
                    {"b_sku": sku, "b_location": loc, "b_qty": qty, "b_now": now}
                    for sku, loc, qty in units
                ],
            )

    async def write(self, rows: BatchRows) -> None:
        if rows.orders:
            await self.conn.execute(insert(orders), rows.orders)
        line_ids: dict[tuple[str, int], int] = {}
        if rows.lines:
            result = await self.conn.execute(_LINES_RETURNING, rows.lines)
            line_ids = {(r.order_id, r.line_no): r.id for r in result}
        if rows.reservations:
            await self.conn.execute(
                insert(reservations),
                [
                    {
                        **{k: v for k, v in r.items() if k != "line_no"},
                        "line_id": line_ids[(r["order_id"], r["line_no"])],
                    }
                    for r in rows.reservations
                ],
            )
        for table, batch in (
            (order_events, rows.events),
            (notify_requests, rows.notify),
            (replenishment_requests, rows.replenishments),
            (alerts, rows.alerts),
            (outbox, rows.outbox),
        ):
            if batch:
                await self.conn.execute(insert(table), batch)


# --- PostgreSQL, straight to asyncpg -------------------------------------------------

_ZONES = ", ".join(f"'{zone}'" for zone in RESERVABLE_ZONES)  # faces and reserve

# The batch's total demand per SKU, taken from its reservable piles in one statement.
# The piles are locked first, in id order (every batch takes them in that order, so two
# batches cannot wait on each other in a cycle); a pile another transaction changed
# meanwhile is read again at its newest version once its lock is granted (READ
# COMMITTED), so ``avail`` is exact when the update applies it. The choice of piles is
# ``wcs.domain.reservation.take`` applied to the total: the smallest pile covering it,
# else the largest piles first (ties: walk rank, then location).
_PG_CLAIM = f"""
WITH known AS (
  SELECT idempotency_key, id, state, request_hash, exception_reason FROM orders
  WHERE idempotency_key = ANY($4::text[])
), want AS (
  SELECT * FROM unnest($1::text[], $2::int[]) AS w(sku, qty)
), piles AS MATERIALIZED (
  SELECT s.id, s.sku, s.location, s.on_hand - s.reserved AS avail, w.qty AS need,
         l.aisle * 10000 + l.bay AS walk_rank
  FROM stock s
  JOIN want w ON w.sku = s.sku
  JOIN locations l ON l.code = s.location AND l.zone IN ({_ZONES})
  WHERE s.on_hand > s.reserved
  ORDER BY s.id
  FOR UPDATE OF s
), ranked AS (
  SELECT id, sku, location, avail, need, walk_rank,
         bool_or(avail >= need) OVER (PARTITION BY sku) AS covered,
         row_number() OVER (
           PARTITION BY sku
           ORDER BY (avail < need), CASE WHEN avail >= need THEN avail ELSE -avail END,
                    walk_rank, location COLLATE "C"
         ) AS pick_order
  FROM piles
), shares AS (
  SELECT id, sku, location, walk_rank,
         CASE WHEN covered THEN CASE WHEN pick_order = 1 THEN need ELSE 0 END
              ELSE LEAST(avail, GREATEST(need - COALESCE(SUM(avail) OVER (
                     PARTITION BY sku ORDER BY pick_order
                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0), 0))
         END AS qty
  FROM ranked
), taken AS (
  UPDATE stock s SET reserved = s.reserved + shares.qty, updated_at = $3
  FROM shares
  WHERE s.id = shares.id AND shares.qty > 0
  RETURNING shares.sku, shares.location, shares.qty, shares.walk_rank
)
SELECT sku, location, qty, walk_rank, NULL AS idempotency_key, NULL AS id, NULL AS state,
       NULL AS request_hash, NULL AS exception_reason
FROM taken
UNION ALL
SELECT NULL, NULL, NULL, NULL, idempotency_key, id, state, request_hash, exception_reason
FROM known
"""

_PG_KNOWN = "SELECT sku FROM skus WHERE sku = ANY($1::text[])"
_PG_GIVE_BACK = (
    "UPDATE stock SET reserved = stock.reserved - g.qty, updated_at = $4"
    " FROM unnest($1::text[], $2::text[], $3::int[]) AS g(sku, location, qty)"
    " WHERE stock.sku = g.sku AND stock.location = g.location"
)


_PG_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def _pg_type(table: Table, column: str) -> str:
    """The column's type without a length: an explicit cast to VARCHAR(n) would cut a
    longer value silently, where inserting it into the column refuses it."""
    return re.sub(r"\(\d+\)", "", str(table.c[column].type.compile(dialect=_PG_DIALECT)))


@cache
def _pg_write(
    order_cols: tuple[str, ...],
    line_cols: tuple[str, ...],
    reservation_cols: tuple[str, ...],
    event_cols: tuple[str, ...],
    notify_cols: tuple[str, ...],
    replenishment_cols: tuple[str, ...],
    alert_cols: tuple[str, ...],
    outbox_cols: tuple[str, ...],
) -> str:
    """One statement writing a whole batch: a CTE per table, each fed by one array per
    column (built once per column set; asyncpg prepares it once per connection).
    Foreign keys are checked at the end of the statement, so lines may name the orders
    inserted beside them."""
    n = 0

    def arrays(table: Table, cols: tuple[str, ...]) -> str:
        nonlocal n
        parts = []
        for col in cols:
            n += 1
            parts.append(f"${n}::{_pg_type(table, col)}[]")
        return ", ".join(parts)

    def plain(name: str, table: Table, cols: tuple[str, ...]) -> str:
        names = ", ".join(cols)
        # WITH ORDINALITY ... ORDER BY: rows get their serial ids in the given order
        # (the outbox is published in id order).
        return (
            f"{name} AS (INSERT INTO {table.name} ({names})"
            f" SELECT {names} FROM unnest({arrays(table, cols)})"
            f" WITH ORDINALITY AS x({names}, ord) ORDER BY ord)"
        )

    res_names = ", ".join(reservation_cols)
    ctes = [
        plain("o", orders, order_cols),
        "l AS (INSERT INTO order_lines ({names}) SELECT {names} FROM unnest({arr})"
        " WITH ORDINALITY AS x({names}, ord) ORDER BY ord"
        " RETURNING id, order_id, line_no)".format(
            names=", ".join(line_cols), arr=arrays(order_lines, line_cols)
        ),
        f"r AS (INSERT INTO reservations (line_id, {res_names})"
        f" SELECT l.id, {', '.join('x.' + c for c in reservation_cols)}"
        f" FROM unnest({arrays(reservations, reservation_cols)},"
        f" ${n + 1}::int[]) AS x({res_names}, line_no)"
        " JOIN l ON l.order_id = x.order_id AND l.line_no = x.line_no)",
    ]
    n += 1
    ctes += [
        plain("e", order_events, event_cols),
        plain("n", notify_requests, notify_cols),
        plain("p", replenishment_requests, replenishment_cols),
        plain("a", alerts, alert_cols),
    ]
    names = ", ".join(outbox_cols)
    return (
        "WITH "
        + ", ".join(ctes)
        + f" INSERT INTO outbox ({names}) SELECT {names} FROM unnest({arrays(outbox, outbox_cols)})"
        f" WITH ORDINALITY AS x({names}, ord) ORDER BY ord"
    )


def _columns(rows: list[dict[str, Any]], cols: tuple[str, ...]) -> list[list[Any]]:
    return [[row[c] for row in rows] for c in cols]


# Column lists of the tables whose rows always carry the same keys.
_LINE_COLS = ("order_id", "line_no", "sku", "qty", "qty_picked")
_RESERVATION_COLS = ("order_id", "sku", "location", "qty", "state", "created_at")
_EVENT_COLS = ("order_id", "seq", "from_state", "to_state", "actor", "reason", "at")
_NOTIFY_COLS = ("order_id", "seq", "kind", "reason", "created_at", "expanded_at")
_REPLENISHMENT_COLS = ("sku", "qty", "order_id", "state", "created_at")
_ALERT_COLS = ("code", "severity", "message", "subject", "created_at")
_OUTBOX_COLS = ("topic", "payload", "qos", "retain", "created_at", "deferred_until")


class PgIntakeStore:
    def __init__(self, raw: Any) -> None:
        self.raw = raw  # asyncpg.Connection, inside the batch's transaction

    async def known_skus(self, wanted: Iterable[str]) -> set[str]:
        asked = sorted(set(wanted))
        if not asked:
            return set()
        return {r["sku"] for r in await self.raw.fetch(_PG_KNOWN, asked)}

    async def claim(
        self, keys: Sequence[str], want: Mapping[str, int], now: datetime
    ) -> tuple[dict[str, KnownOrder], Held]:
        # One round trip: the key lookup rides in the take's statement.
        wanted = sorted(want)
        records = await self.raw.fetch(
            _PG_CLAIM, wanted, [want[s] for s in wanted], now, list(keys)
        )
        found: dict[str, KnownOrder] = {}
        held: Held = {}
        for r in records:
            if r["idempotency_key"] is not None:
                found[r["idempotency_key"]] = KnownOrder(
                    r["id"], r["state"], r["request_hash"], r["exception_reason"]
                )
            else:
                held.setdefault(r["sku"], []).append(
                    Availability(r["location"], r["qty"], r["walk_rank"])
                )
        return found, held

    async def give_back(self, units: Sequence[tuple[str, str, int]], now: datetime) -> None:
        if units:
            await self.raw.execute(
                _PG_GIVE_BACK,
                [u[0] for u in units],
                [u[1] for u in units],
                [u[2] for u in units],
                now,
            )

    async def write(self, rows: BatchRows) -> None:
        if not rows.orders:
            return
        order_cols = tuple(rows.orders[0])
        sql = _pg_write(
            order_cols,
            _LINE_COLS,
            _RESERVATION_COLS,
            _EVENT_COLS,
            _NOTIFY_COLS,
            _REPLENISHMENT_COLS,
            _ALERT_COLS,
            _OUTBOX_COLS,
        )
        args = [
            *_columns(rows.orders, order_cols),
            *_columns(rows.lines, _LINE_COLS),
            *_columns(rows.reservations, _RESERVATION_COLS),
            [r["line_no"] for r in rows.reservations],
            *_columns(rows.events, _EVENT_COLS),
            *_columns(rows.notify, _NOTIFY_COLS),
            *_columns(rows.replenishments, _REPLENISHMENT_COLS),
            *_columns(rows.alerts, _ALERT_COLS),
            *_columns(rows.outbox, _OUTBOX_COLS),
        ]
        await self.raw.execute(sql, *args)
