"""The pick hot path's storage, in two dialects.

Every scanned unit runs through here, so round trips decide throughput: one
statement per unit, one per finished task. ``SqlStore`` speaks SQLAlchemy Core and
runs on any supported database (SQLite for the embedded default). ``PgStore`` sends
the same operations as prepared statements straight to asyncpg, inside the same
transaction, and folds the finishing writes into one data-modifying CTE; on this
path SQLAlchemy's per-statement overhead would cost more than the database work.
Both are exercised by the controller tests, which run on both databases.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from wcs.contract.topics import Topics
from wcs.domain.orders import OrderEvent
from wcs.domain.states import OrderState, find_transition
from wcs.errors import IllegalTransition
from wcs.notify.queue import queue_order_events
from wcs.persistence.orders import StateMoved, state_message, transition
from wcs.persistence.outbox import OutboxMessage, collector_add, collector_deferral, enqueue
from wcs.persistence.tables import (
    activity,
    device_commands,
    order_lines,
    orders,
    pick_batches,
    pick_tasks,
    processed_messages,
    reservations,
    stock,
    stock_moves,
    totes,
)

LIT = "lit"
OPEN_STATES = ("open", LIT)
PICK_PLANNED, PICKING, PICKED = OrderState.PICK_PLANNED, OrderState.PICKING, OrderState.PICKED
FIRST_UNIT = "first unit picked"
ALL_PICKED = "all lines picked"
# PgStore writes these two moves in SQL, past transition(): they must stay legal.
assert find_transition(PICK_PLANNED, PICKING) and find_transition(PICKING, PICKED)


@dataclass(frozen=True, slots=True)
class AfterTask:
    order_left: bool  # the order still has open tasks in this batch
    batch_left: bool
    order_state: str | None
    order_picked: bool = False  # the store moved the order to picked (and its totes)
    # The batch's next stop as light_stop() returns it, where the store lit it in the
    # statement that finished the task (PgStore); None: the handler asks for it.
    next_stop: tuple[list[Any], set[int] | None] | None = None


def _take_unit_statement() -> Any:
    candidate = pick_tasks.alias("candidate")
    target = (
        select(candidate.c.id)
        .join(pick_batches, pick_batches.c.id == candidate.c.batch_id)
        .where(
            and_(
                pick_batches.c.station == bindparam("b_station"),
                pick_batches.c.state == "active",
                candidate.c.state == LIT,
                candidate.c.sku == bindparam("b_sku"),
                candidate.c.qty_picked < candidate.c.qty,
                exists().where(
                    and_(totes.c.order_id == candidate.c.order_id, totes.c.state == "picking")
                ),
            )
        )
        .order_by(candidate.c.seq, candidate.c.id)
        .limit(1)
        .scalar_subquery()
    )
    return (
        update(pick_tasks)
        .where(pick_tasks.c.id == target)
        .values(qty_picked=pick_tasks.c.qty_picked + 1, updated_at=bindparam("b_now"))
        .returning(*pick_tasks.c)
    )


_TAKE_UNIT = _take_unit_statement()


class SqlStore:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def claim(self, keys: list[str], now: datetime) -> set[str]:
        """Insert msg_ids into the inbox; returns the ones not seen before."""
        if not keys:
            return set()
        dialect = postgresql if self.conn.dialect.name == "postgresql" else sqlite
        stmt = (
            dialect.insert(processed_messages)
            .values([{"msg_id": k, "topic": "", "at": now} for k in keys])
            .on_conflict_do_nothing(index_elements=["msg_id"])
            .returning(processed_messages.c.msg_id)
        )
        return set((await self.conn.scalars(stmt)).all())

    async def take_unit(
        self, station: str, sku: str, now: datetime, topics: Topics, actor: str
    ) -> Any:
        """One unit on the station's lit task for ``sku`` (its order must have a tote).

        An order's first unit moves it from pick_planned to picking."""
        result = await self.conn.execute(
            _TAKE_UNIT, {"b_station": station, "b_sku": sku, "b_now": now}
        )
        task = result.first()
        if task is not None and task.qty_picked == 1:
            await self.advance(topics, task.order_id, PICK_PLANNED, PICKING, actor, FIRST_UNIT, now)
        return task

    batched_takes = False  # take_units() is one statement (else handlers go one by one)

    async def take_units(
        self, wants: list[tuple[str, str]], now: datetime, topics: Topics, actor: str
    ) -> list[Any]:
        """take_unit() for several (station, sku) pairs, one station at most once."""
        return [await self.take_unit(st, sku, now, topics, actor) for st, sku in wants]

    async def complete_task(
        self, task: Any, now: datetime, topics: Topics, actor: str
    ) -> AfterTask:
        """A fully picked task: stock leaves the shelf, the line and reservation follow.

        Here the order's move to picked is left to the handler (``order_picked`` stays
        False); PgStore folds it into its statement."""
        c = self.conn
        picked = task.qty_picked
        await c.execute(
            update(pick_tasks)
            .where(pick_tasks.c.id == task.id)
            .values(state="done", updated_at=now)
        )
        await c.execute(
            update(stock)
            .where(and_(stock.c.sku == task.sku, stock.c.location == task.location))
            .values(
                on_hand=stock.c.on_hand - picked, reserved=stock.c.reserved - picked, updated_at=now
            )
        )
        await c.execute(
            update(order_lines)
            .where(order_lines.c.id == task.line_id)
            .values(qty_picked=order_lines.c.qty_picked + picked)
        )
        await c.execute(
            update(reservations)
            .where(reservations.c.id == task.reservation_id)
            .values(state="picked")
        )
        return await self.work_left(task.batch_id, task.order_id)

    async def work_left(self, batch_id: str, order_id: str) -> AfterTask:
        is_open = and_(pick_tasks.c.batch_id == batch_id, pick_tasks.c.state.in_(OPEN_STATES))
        row = (
            await self.conn.execute(
                select(
                    exists().where(and_(is_open, pick_tasks.c.order_id == order_id)),
                    select(pick_tasks.c.id)
                    .where(is_open)
                    .order_by(pick_tasks.c.seq)
                    .limit(1)
                    .scalar_subquery()
                    .is_not(None),
                    select(orders.c.state).where(orders.c.id == order_id).scalar_subquery(),
                )
            )
        ).one()
        return AfterTask(bool(row[0]), bool(row[1]), row[2])

    async def advance(
        self,
        topics: Topics,
        order_id: str,
        src: str,
        dst: str,
        actor: str,
        reason: str,
        now: datetime,
    ) -> OrderEvent | None:
        """Move an order that should be in ``src`` to ``dst``; None if it is not in ``src``.

        The message for ``order/{id}/state`` is written to the outbox here too."""
        try:
            return await transition(
                self.conn,
                topics,
                order_id,
                dst,
                actor=actor,
                reason=reason,
                at=now,
                expect=src,
            )
        except (IllegalTransition, StateMoved):
            return None

    async def light_stop(self, batch_id: str, now: datetime) -> tuple[list[Any], set[int] | None]:
        """next_stop(), lighting its free slots in the same statement where the store can.

        Returns the rows (as they were) and the ids it lit, or None for "nothing lit
        here: decide in Python" (always so here)."""
        return await self.next_stop(batch_id), None

    async def next_stop(self, batch_id: str) -> list[Any]:
        """The batch's lit tasks and the open tasks of its first stop, in walk order.

        Not the whole batch: a wave can hold hundreds of tasks, and this runs each
        time one finishes."""
        is_open = and_(pick_tasks.c.batch_id == batch_id, pick_tasks.c.state.in_(OPEN_STATES))
        first_stop = select(func.min(pick_tasks.c.seq)).where(is_open).scalar_subquery()
        rows = await self.conn.execute(
            select(
                pick_tasks.c.id,
                pick_tasks.c.seq,
                pick_tasks.c.state,
                pick_tasks.c.qty,
                pick_tasks.c.qty_picked,
                pick_tasks.c.ptl_device,
                pick_tasks.c.ptl_slot,
                pick_tasks.c.order_id,
                pick_tasks.c.location,
            )
            .where(and_(is_open, or_(pick_tasks.c.state == LIT, pick_tasks.c.seq == first_stop)))
            .order_by(pick_tasks.c.seq, pick_tasks.c.id)
        )
        return list(rows.all())

    async def mark_lit(self, task_ids: list[int], now: datetime) -> None:
        await self.conn.execute(
            update(pick_tasks)
            .where(pick_tasks.c.id.in_(task_ids))
            .values(state=LIT, updated_at=now)
        )

    async def move_totes(self, order_id: str, src: str, dst: str, now: datetime) -> None:
        await self.conn.execute(
            update(totes)
            .where(and_(totes.c.order_id == order_id, totes.c.state == src))
            .values(state=dst, updated_at=now)
        )

    async def flush(
        self,
        now: datetime,
        messages: list[OutboxMessage],
        commands: list[dict[str, Any]],
        moves: list[dict[str, Any]],
        facts: list[dict[str, Any]],
    ) -> None:
        if messages:
            await enqueue(self.conn, messages)
        if commands:
            await self.conn.execute(insert(device_commands), commands)
        if moves:
            await self.conn.execute(insert(stock_moves), moves)
        if facts:
            await self.conn.execute(insert(activity), facts)


class PgStore(SqlStore):
    """The same operations as prepared asyncpg statements in the same transaction."""

    def __init__(self, conn: AsyncConnection, raw: Any) -> None:
        super().__init__(conn)
        self.raw = raw  # asyncpg.Connection; asyncpg caches the prepared statements
        # State messages of advance(), written with the batch's other rows at flush.
        self.pending_messages: list[OutboxMessage] = []
        # Inbox keys claimed by flush rather than up front (open_store's claim_late).
        self.late_claims: list[str] = []

    async def take_unit(
        self, station: str, sku: str, now: datetime, topics: Topics, actor: str
    ) -> Any:
        # The first unit's state change rides in the same statement (guarded on
        # pick_planned like advance()); the event row follows it.
        record = await self.raw.fetchrow(
            "WITH t AS (UPDATE pick_tasks SET qty_picked = qty_picked + 1, updated_at = $3"
            " WHERE id = ("
            "  SELECT t.id FROM pick_tasks t JOIN pick_batches b ON b.id = t.batch_id"
            "  WHERE b.station = $1 AND b.state = 'active' AND t.state = 'lit' AND t.sku = $2"
            "   AND t.qty_picked < t.qty"
            "   AND EXISTS (SELECT 1 FROM totes WHERE totes.order_id = t.order_id"
            "               AND totes.state = 'picking')"
            "  ORDER BY t.seq, t.id LIMIT 1 FOR UPDATE OF t)"
            " RETURNING *),"
            f"{_FIRST_UNITS_START}"
            "SELECT t.*, o.seq AS started_seq FROM t LEFT JOIN o ON o.id = t.order_id",
            station,
            sku,
            now,
            actor,
            FIRST_UNIT,
        )
        return None if record is None else await self._taken(record, topics, actor, now)

    batched_takes = True

    async def take_units(
        self, wants: list[tuple[str, str]], now: datetime, topics: Topics, actor: str
    ) -> list[Any]:
        # take_unit() for each pair in one statement. The rows are locked in station
        # order first, the order every batch takes stations in (see the controller's
        # _lock_order), so two transactions cannot wait on each other in a cycle.
        records = await self.raw.fetch(
            "WITH r AS (SELECT * FROM unnest($1::text[], $2::text[], $6::int[])"
            "  AS r(station, sku, k)),"
            " c AS (SELECT DISTINCT ON (r.k) r.k, r.station, t.id"
            "  FROM r JOIN pick_batches b ON b.station = r.station AND b.state = 'active'"
            "  JOIN pick_tasks t ON t.batch_id = b.id AND t.state = 'lit' AND t.sku = r.sku"
            "   AND t.qty_picked < t.qty"
            "  WHERE EXISTS (SELECT 1 FROM totes WHERE totes.order_id = t.order_id"
            "   AND totes.state = 'picking')"
            "  ORDER BY r.k, t.seq, t.id),"
            " l AS (SELECT p.id FROM pick_tasks p JOIN c ON c.id = p.id"
            '  ORDER BY c.station COLLATE "C" FOR UPDATE OF p),'
            " t AS (UPDATE pick_tasks p SET qty_picked = p.qty_picked + 1, updated_at = $3"
            "  FROM c WHERE p.id = c.id AND p.id IN (SELECT id FROM l)"
            "  AND p.state = 'lit' AND p.qty_picked < p.qty RETURNING c.k, p.*),"
            f"{_FIRST_UNITS_START}"
            "SELECT t.*, o.seq AS started_seq FROM t LEFT JOIN o ON o.id = t.order_id",
            [station for station, _ in wants],
            [sku for _, sku in wants],
            now,
            actor,
            FIRST_UNIT,
            list(range(len(wants))),
        )
        taken: list[Any] = [None] * len(wants)
        for record in records:
            task = await self._taken(record, topics, actor, now)
            taken[task.k] = task
            del task.k
        return taken

    async def _taken(self, record: Any, topics: Topics, actor: str, now: datetime) -> Any:
        """A row of a take statement; its order's move to picking, if it made one."""
        task = _row(record)
        seq = task.started_seq
        del task.started_seq
        if seq is not None:
            await self._moved(
                topics, task.order_id, seq, PICK_PLANNED, PICKING, actor, FIRST_UNIT, now
            )
        return task

    async def complete_task(
        self, task: Any, now: datetime, topics: Topics, actor: str
    ) -> AfterTask:
        # One statement, which also lights the batch's next stop (light_stop()'s rule).
        # Data-modifying CTEs all run on the statement's snapshot: the reads do not
        # see the task as done yet, hence ``id <> $1``.
        rows = await self.raw.fetch(
            "WITH t AS (UPDATE pick_tasks SET state = 'done', updated_at = $2 WHERE id = $1),"
            " s AS (UPDATE stock SET on_hand = on_hand - $3, reserved = reserved - $3,"
            "       updated_at = $2 WHERE sku = $4 AND location = $5),"
            " l AS (UPDATE order_lines SET qty_picked = qty_picked + $3 WHERE id = $6),"
            " r AS (UPDATE reservations SET state = 'picked' WHERE id = $7),"
            " w AS (SELECT EXISTS (SELECT 1 FROM pick_tasks WHERE batch_id = $9"
            "   AND order_id = $8 AND state IN ('open', 'lit') AND id <> $1) AS order_left,"
            # Walks the open-task index in order: a plain EXISTS here is planned as
            # a sequential scan of the whole table.
            "  EXISTS (SELECT FROM (SELECT id FROM pick_tasks WHERE batch_id = $9"
            "   AND state IN ('open', 'lit') ORDER BY seq LIMIT 2) x WHERE id <> $1)"
            "   AS batch_left),"
            # The order's last task: picked, and its totes on their way to QC.
            " o AS (UPDATE orders SET state = 'picked', seq = seq + 1, updated_at = $2"
            "  WHERE id = $8 AND state = 'picking' AND NOT (SELECT order_left FROM w)"
            "  RETURNING seq),"
            " e AS (INSERT INTO order_events"
            "  (order_id, seq, from_state, to_state, actor, reason, at)"
            "  SELECT $8, seq, 'picking', 'picked', $10, $11, $2 FROM o),"
            " m AS (UPDATE totes SET state = 'to_qc', updated_at = $2"
            "  WHERE order_id = $8 AND state = 'picking' AND EXISTS (SELECT FROM o)),"
            f"{_light_stop_ctes(batch='$9', now='$2', finished='$1')} "
            "SELECT w.order_left, w.batch_left, (SELECT state FROM orders WHERE id = $8)"
            "  AS order_state, (SELECT seq FROM o) AS picked_seq, c.*"
            f" FROM w LEFT JOIN ({_STOP_ROWS}) c ON true ORDER BY c.seq, c.id",
            task.id,
            now,
            task.qty_picked,
            task.sku,
            task.location,
            task.line_id,
            task.reservation_id,
            task.order_id,
            task.batch_id,
            actor,
            ALL_PICKED,
        )
        head = rows[0]
        stop = _lit_stop([r for r in rows if r["id"] is not None])
        if head["picked_seq"] is None:
            return AfterTask(
                head["order_left"], head["batch_left"], head["order_state"], next_stop=stop
            )
        await self._moved(
            topics, task.order_id, head["picked_seq"], PICKING, PICKED, actor, ALL_PICKED, now
        )
        return AfterTask(
            head["order_left"], head["batch_left"], PICKED, order_picked=True, next_stop=stop
        )

    async def advance(
        self,
        topics: Topics,
        order_id: str,
        src: str,
        dst: str,
        actor: str,
        reason: str,
        now: datetime,
    ) -> OrderEvent | None:
        # One statement: the state update guarded on ``src`` plus the event row. The
        # table check is the same as transition()'s; the guard replaces its row lock.
        if find_transition(src, dst) is None:
            return None
        seq = await self.raw.fetchval(
            "WITH o AS (UPDATE orders SET state = $3, seq = seq + 1, updated_at = $4"
            " WHERE id = $1 AND state = $2 RETURNING seq) "
            "INSERT INTO order_events (order_id, seq, from_state, to_state, actor, reason, at)"
            " SELECT $1, seq, $2, $3, $5, $6, $4 FROM o RETURNING seq",
            order_id,
            src,
            dst,
            now,
            actor,
            reason,
        )
        if seq is None:
            return None
        return await self._moved(topics, order_id, seq, src, dst, actor, reason, now)

    async def _moved(
        self,
        topics: Topics,
        order_id: str,
        seq: int,
        src: str,
        dst: str,
        actor: str,
        reason: str,
        now: datetime,
    ) -> OrderEvent:
        """What follows a state change written in SQL: notices and the state message."""
        event = OrderEvent(order_id, int(seq), src, dst, actor, reason, now)
        await queue_order_events(self.conn, [event])
        self.pending_messages.append(state_message(topics, event))
        return event

    async def light_stop(self, batch_id: str, now: datetime) -> tuple[list[Any], set[int] | None]:
        rows = await self.raw.fetch(
            f"WITH {_light_stop_ctes(batch='$1', now='$2')} {_STOP_ROWS} ORDER BY seq, id",
            batch_id,
            now,
        )
        return _lit_stop(rows)

    async def mark_lit(self, task_ids: list[int], now: datetime) -> None:
        await self.raw.execute(
            "UPDATE pick_tasks SET state = 'lit', updated_at = $2 WHERE id = ANY($1::bigint[])",
            task_ids,
            now,
        )

    async def move_totes(self, order_id: str, src: str, dst: str, now: datetime) -> None:
        await self.raw.execute(
            "UPDATE totes SET state = $3, updated_at = $4 WHERE order_id = $1 AND state = $2",
            order_id,
            src,
            dst,
            now,
        )

    async def flush(
        self,
        now: datetime,
        messages: list[OutboxMessage],
        commands: list[dict[str, Any]],
        moves: list[dict[str, Any]],
        facts: list[dict[str, Any]],
    ) -> None:
        """Everything a batch appends, in one statement (a CTE per table).

        Raises ``LateClaimConflict`` if a late claim finds a key already claimed."""
        if self.pending_messages:
            messages = [*self.pending_messages, *messages]
            self.pending_messages = []
        claims, self.late_claims = self.late_claims, []
        if not (messages or commands or moves or facts or claims):
            return
        defer_until = collector_deferral(now)
        detail = [json.dumps(f["detail"]) if f["detail"] is not None else None for f in facts]
        row = await self.raw.fetchrow(
            "WITH"
            " i AS (INSERT INTO processed_messages (msg_id, topic, at)"
            "  SELECT k, '', $5 FROM unnest($27::text[]) AS k"
            "  ON CONFLICT (msg_id) DO NOTHING RETURNING 1),"
            " o AS (INSERT INTO outbox (topic, payload, qos, retain, created_at, deferred_until)"
            "  SELECT t, p, q, r, $5, $6 FROM unnest($1::text[], $2::text[], $3::int[],"
            "  $4::bool[]) AS u(t, p, q, r) RETURNING id),"
            " c AS (INSERT INTO device_commands"
            "  (cmd_id, device_id, name, subject, payload, created_at)"
            "  SELECT * FROM unnest($7::text[], $8::text[], $9::text[], $10::text[],"
            "  $11::text[], $12::timestamptz[])),"
            " m AS (INSERT INTO stock_moves (sku, location, kind, qty, order_id, actor, at)"
            "  SELECT * FROM unnest($13::text[], $14::text[], $15::text[], $16::int[],"
            "  $17::text[], $18::text[], $19::timestamptz[])),"
            " a AS (INSERT INTO activity (at, kind, ok, order_id, device_id, station, detail)"
            "  SELECT a, k, ok, oi, d, s, dt::json FROM unnest($20::timestamptz[], $21::text[],"
            "  $22::bool[], $23::text[], $24::text[], $25::text[], $26::text[])"
            "  AS u(a, k, ok, oi, d, s, dt)) "
            "SELECT (SELECT count(*) FROM i) AS claimed, ARRAY(SELECT id FROM o ORDER BY id)",
            [m.topic for m in messages],
            [m.payload.decode() for m in messages],
            [m.qos for m in messages],
            [m.retain for m in messages],
            now,
            defer_until,
            *_columns(
                commands, ("cmd_id", "device_id", "name", "subject", "payload", "created_at")
            ),
            *_columns(moves, ("sku", "location", "kind", "qty", "order_id", "actor", "at")),
            *_columns(facts, ("at", "kind", "ok", "order_id", "device_id", "station")),
            detail,
            claims,
        )
        if row[0] != len(claims):
            seen = len(claims) - row[0]
            raise LateClaimConflict(f"{seen} of the batch's messages were seen before")
        if messages:
            collector_add(list(row[1]), messages)


_STOP_COLUMNS = "id, seq, state, qty, qty_picked, ptl_device, ptl_slot, order_id, location"
# The rows of light_stop(): the stop as it was, each marked whether it was lit now.
_STOP_ROWS = "SELECT cur.*, cur.id IN (SELECT id FROM u) AS lit_now FROM cur"


def _light_stop_ctes(*, batch: str, now: str, finished: str | None = None) -> str:
    """The rule of light_next(), in SQL: at the first stop, the first open task of
    each slot no lit task occupies. A task without a slot yet (planned without the
    floor file) needs the floor's map: then nothing is lit here.

    ``finished``: a task the same statement finishes; its snapshot still shows it
    open (or lit), so it is left out here. Defines ``cur`` (the batch's lit tasks and
    its first stop) and ``u`` (the ids lit now)."""
    alive = f"batch_id = {batch} AND state IN ('open', 'lit')"
    lit = f"batch_id = {batch} AND state = 'lit'"
    if finished is not None:
        alive += f" AND id <> {finished}"
        lit += f" AND id <> {finished}"
    return (
        f"stop1 AS (SELECT min(seq) AS m FROM pick_tasks WHERE {alive}),"
        f" cur AS (SELECT {_STOP_COLUMNS} FROM pick_tasks WHERE {lit}"
        f"  UNION SELECT {_STOP_COLUMNS} FROM pick_tasks"
        f"  WHERE {alive} AND seq = (SELECT m FROM stop1)),"
        " free AS (SELECT DISTINCT ON (f.ptl_device, f.ptl_slot) f.id FROM cur f"
        "  WHERE f.state = 'open' AND f.seq = (SELECT m FROM stop1)"
        "  AND NOT EXISTS (SELECT FROM cur n WHERE n.state = 'open'"
        "   AND n.seq = (SELECT m FROM stop1) AND n.ptl_device IS NULL)"
        "  AND NOT EXISTS (SELECT FROM cur b WHERE b.state = 'lit'"
        "   AND b.ptl_device = f.ptl_device AND b.ptl_slot IS NOT DISTINCT FROM f.ptl_slot)"
        "  ORDER BY f.ptl_device, f.ptl_slot, f.seq, f.id),"
        f" u AS (UPDATE pick_tasks SET state = 'lit', updated_at = {now}"
        "  WHERE id IN (SELECT id FROM free) RETURNING id)"
    )


def _lit_stop(records: list[Any]) -> tuple[list[Any], set[int] | None]:
    """light_stop()'s answer from rows of ``_STOP_ROWS`` (extra columns dropped)."""
    tasks = [SimpleNamespace(**{k: r[k] for k in _STOP_KEYS}) for r in records]
    lit = {r["id"] for r in records if r["lit_now"]}
    if any(t.state == "open" and t.ptl_device is None and t.seq == tasks[0].seq for t in tasks):
        return tasks, None
    return tasks, lit


_STOP_KEYS = tuple(_STOP_COLUMNS.split(", "))
# The take statements' common tail: an order whose first unit a taken row ``t`` is
# moves to picking (guarded on pick_planned like advance()) with its event row.
# Parameters: $3 now, $4 actor, $5 reason.
_FIRST_UNITS_START = (
    " o AS (UPDATE orders SET state = 'picking', seq = seq + 1, updated_at = $3"
    "  WHERE id IN (SELECT order_id FROM t WHERE qty_picked = 1)"
    "  AND state = 'pick_planned' RETURNING id, seq),"
    " e AS (INSERT INTO order_events (order_id, seq, from_state, to_state, actor, reason, at)"
    "  SELECT id, seq, 'pick_planned', 'picking', $4, $5, $3 FROM o) "
)


def _row(record: Any) -> Any:
    """asyncpg records read by key only; handlers read columns as attributes."""
    return None if record is None else SimpleNamespace(**dict(record.items()))


def _columns(rows: list[dict[str, Any]], names: tuple[str, ...]) -> list[list[Any]]:
    return [[row[name] for row in rows] for name in names]


_PG_CLAIM = (
    "INSERT INTO processed_messages (msg_id, topic, at) "
    "SELECT k, '', $2 FROM unnest($1::text[]) AS k "
    "ON CONFLICT (msg_id) DO NOTHING RETURNING msg_id"
)


class LateClaimConflict(Exception):
    """A late claim met a key claimed before: roll the batch back, replay it claiming first."""


def _begin(fairy: Any) -> Any:
    """The adapter's own BEGIN (SQLAlchemy is pinned exactly): a transaction with no
    statement in it yet. None where the adapter has no such hook."""
    adapter = fairy.dbapi_connection
    begin = getattr(adapter, "_start_transaction", None)
    if begin is None or getattr(adapter, "_transaction", False) is not None:
        return None
    return begin()


async def open_store(
    conn: AsyncConnection, keys: list[str], now: datetime, *, claim_late: bool = False
) -> tuple[SqlStore, set[str]]:
    """The batch's store, and which of ``keys`` (inbox msg_ids) were not seen before.

    ``claim_late`` (PostgreSQL): every key counts as fresh and the claim rides in the
    batch's last statement (``flush``), one round trip fewer per batch; a key seen
    before makes ``flush`` raise ``LateClaimConflict`` and the caller replays the
    batch claiming first. Worth it because a seen key is rare: a redelivery after a
    crash, a failover or a lost PUBACK. The transaction is begun with the adapter's
    own BEGIN first, for the reason below.

    Claiming first (the replay after a conflict, and the batches of housekeeping):
    on PostgreSQL the inbox claim is the batch's first statement and goes through
    SQLAlchemy: its asyncpg adapter sends BEGIN lazily, with the first statement it
    executes itself, and statements sent straight to asyncpg before that would run
    outside the transaction, each committed on its own — an inbox claim would then
    outlive a batch that rolled back or a process that died, and the event would count
    as done without its effect. Claiming first starts the transaction for real at no
    extra round trip.
    """
    if conn.dialect.name != "postgresql":
        store = SqlStore(conn)
        return store, await store.claim(keys, now)
    if claim_late:
        fairy = await conn.get_raw_connection()
        begin = _begin(fairy)
        if begin is not None:
            await begin
            store = _pg_store(conn, fairy.driver_connection)
            store.late_claims = list(keys)
            return store, set(keys)
    if keys:
        result = await conn.exec_driver_sql(_PG_CLAIM, (keys, now))
        fresh = {row[0] for row in result}
    else:
        await conn.exec_driver_sql("SELECT 1")
        fresh = set()
    return _pg_store(conn, (await conn.get_raw_connection()).driver_connection), fresh


def _pg_store(conn: AsyncConnection, raw: Any) -> PgStore:
    if raw is None or not raw.is_in_transaction():
        raise RuntimeError("the batch's connection is not in a transaction")
    return PgStore(conn, raw)
