"""The floor's writes: one unit of work per micro-batch, one transaction.

The owner's decisions arrive as effects (``wcs.domain.floor.effects``); the unit
buffers them and writes them at ``flush`` in as few statements as the batch needs: the
inbox claim, the activity rows, the changed tasks and the stock they took, the order
moves with their events, the outbox, each as one statement for the whole batch. Rows
the owner's state projects (tasks, totes, checks, packages) are written as absolute
values, so writing one twice is harmless; stock is shared with intake and moves by
relative amounts. SQLAlchemy Core, the same statements on SQLite and PostgreSQL.

Reads that a decision needs (``controller.reads``) flush first, so they see what the
batch has decided so far.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import InitVar, dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from wcs.contract.payloads import COMMAND_MODELS
from wcs.contract.payloads import Alert as AlertPayload
from wcs.contract.topics import Topics
from wcs.domain.floor import effects as fx
from wcs.domain.orders import OrderEvent
from wcs.domain.states import find_transition
from wcs.errors import IllegalTransition
from wcs.ids import new_id
from wcs.notify.queue import queue_order_events
from wcs.persistence.db import insert_skipping_duplicates
from wcs.persistence.direct import Direct
from wcs.persistence.orders import StateMoved, event_row, state_message, transition
from wcs.persistence.outbox import OutboxMessage, enqueue, message
from wcs.persistence.tables import (
    activity,
    alerts,
    device_commands,
    order_events,
    order_lines,
    orders,
    packages,
    pick_batches,
    pick_tasks,
    picked_units,
    processed_messages,
    qc_checks,
    reservations,
    stations,
    stock,
    stock_moves,
    totes,
)
from wcs.services.orders import cancel_in

T = TypeVar("T")

# Commands whose acknowledgement changes what happens next: they go to the command
# log so the ack can be matched. Lights are put back whole on a takeover anyway.
LOGGED_COMMANDS = frozenset({"print", "route", "weigh", "tare", "zero"})


@dataclass
class Outgoing:
    """A command materialised for the wire, sent after commit on its station's session."""

    station: str
    topic: str
    payload: bytes
    cmd_id: str
    name: str
    subject: str | None


class LostStations(Exception):
    """The batch touched stations this instance no longer holds: nothing of it commits."""

    def __init__(self, lost: set[str]) -> None:
        super().__init__(f"stations taken over by another instance: {', '.join(sorted(lost))}")
        self.lost = lost


@dataclass
class Unit:
    conn: AsyncConnection
    topics: Topics
    actor: str
    now: datetime
    cause: str | None = None  # msg_id of the event being applied (commands carry it)
    station: str = ""  # station whose event is being applied
    # buffered writes, flushed in this order
    activity_rows: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[int, fx.SaveTask] = field(default_factory=dict)
    batches: dict[str, fx.SaveBatch] = field(default_factory=dict)
    shelf: list[fx.Shelf] = field(default_factory=list)
    lines: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    picked_reservations: dict[int, int | None] = field(default_factory=dict)
    moves: list[fx.OrderMove] = field(default_factory=list)
    ordered: list[Any] = field(default_factory=list)  # effects applied in order (totes ...)
    checks: dict[str, fx.SaveCheck] = field(default_factory=dict)
    packages: dict[str, fx.SavePackage] = field(default_factory=dict)
    messages: list[OutboxMessage] = field(default_factory=list)
    command_rows: list[dict[str, Any]] = field(default_factory=list)
    outgoing: list[Outgoing] = field(default_factory=list)
    events: list[OrderEvent] = field(default_factory=list)  # order moves written
    acked: list[tuple[str, str]] = field(default_factory=list)  # (station, cmd_id) acked
    traced: list[dict[str, Any]] = field(default_factory=list)  # units with label data
    # Events to dead-letter after commit with the reason: (topic, raw, reason).
    dead_letters: list[tuple[str, bytes, str]] = field(default_factory=list)
    topic: str = ""  # the event being applied, as it came
    raw: bytes = b""
    # The executor of the batch's own statements: the lane's, whose statements run
    # straight on the driver; by default SQLAlchemy runs them on ``conn``.
    direct: InitVar[Direct | None] = None
    db: Direct = field(init=False)

    def __post_init__(self, direct: Direct | None) -> None:
        self.db = direct if direct is not None else Direct(self.conn, None)

    # --- marks, for an event rolled back to its savepoint -----------------------------

    def mark(self) -> tuple[int, ...]:
        return (
            len(self.activity_rows),
            len(self.messages),
            len(self.command_rows),
            len(self.outgoing),
            len(self.traced),
            len(self.dead_letters),
        )

    def rewind(self, mark: tuple[int, ...]) -> None:
        """Forget what an event buffered after ``mark`` (its savepoint rolled back).
        Only valid after a flush: the unit flushes before every savepoint."""
        del self.activity_rows[mark[0] :]
        del self.messages[mark[1] :]
        del self.command_rows[mark[2] :]
        del self.outgoing[mark[3] :]
        del self.traced[mark[4] :]
        del self.dead_letters[mark[5] :]

    # --- effects --------------------------------------------------------------------

    def apply(self, effects: Sequence[fx.Effect]) -> None:
        """Buffer the plain effects; ask-the-edge effects are not for the unit."""
        for effect in effects:
            match effect:
                case fx.Command():
                    self.command(effect)
                case fx.Record():
                    self.record(effect)
                case fx.SaveTask():
                    self.tasks[effect.task_id] = effect
                case fx.PlaceTask():
                    self.ordered.append(effect)
                case fx.TraceUnit():
                    self.traced.append(
                        {
                            "at": self.now,
                            "order_id": effect.order_id,
                            "sku": effect.sku,
                            "gtin": effect.gtin,
                            "lot": effect.lot,
                            "use_by": effect.use_by,
                            "serial": effect.serial,
                            "station": effect.station,
                            "device_id": effect.device,
                        }
                    )
                case fx.DeadLetter():
                    self.dead_letters.append((self.topic, self.raw, effect.reason))
                case fx.SaveBatch():
                    self.batches[effect.batch_id] = effect
                case fx.Shelf():
                    self.shelf.append(effect)
                case fx.LinePicked():
                    self.lines[effect.line_id] += effect.qty
                case fx.ReservationPicked():
                    self.picked_reservations[effect.reservation_id] = effect.qty
                case fx.OrderMove():
                    self.moves.append(effect)
                case fx.SaveCheck():
                    self.checks[effect.order_id] = effect
                case fx.SavePackage():
                    self.packages[effect.id] = effect
                case (
                    fx.SaveTote()
                    | fx.MoveTotes()
                    | fx.CancelOrder()
                    | fx.Alert()
                    | fx.StationDown()
                ):
                    self.ordered.append(effect)

    def command(self, effect: fx.Command) -> Outgoing:
        model = COMMAND_MODELS[effect.name]
        cmd_id = new_id("c")
        payload = model(cmd_id=cmd_id, ts=self.now, cause=self.cause, **effect.fields).to_json()
        out = Outgoing(
            self.station,
            self.topics.dev_cmd(effect.device, effect.name),
            payload,
            cmd_id,
            effect.name,
            effect.subject,
        )
        self.outgoing.append(out)
        if effect.name in LOGGED_COMMANDS:
            self.command_rows.append(
                {
                    "cmd_id": cmd_id,
                    "device_id": effect.device,
                    "name": effect.name,
                    "subject": effect.subject,
                    "payload": payload.decode(),
                    "created_at": self.now,
                }
            )
        return out

    def record(self, effect: fx.Record) -> None:
        detail = dict(effect.detail)
        station = detail.pop("station", None) or None
        self.activity_rows.append(
            {
                "at": self.now,
                "kind": effect.kind,
                "ok": effect.ok,
                "order_id": effect.order_id,
                "device_id": effect.device_id,
                "station": station,
                "detail": detail or None,
            }
        )

    def record_refusal(self, kind: str, item: Any, error: str) -> None:
        """The outcome of an event that could not be applied (its inbox row stays)."""
        self.activity_rows.append(
            {
                "at": self.now,
                "kind": kind,
                "ok": False,
                "order_id": None,
                "device_id": item.device,
                "station": None,
                "detail": {"error": error[:300]},
            }
        )

    # --- the batch's statements -------------------------------------------------------

    async def claim(self, keys: list[str], held: dict[str, int], holder: str) -> set[str]:
        """Fence the batch's stations and claim its inbox keys: the keys not seen before.

        Raises LostStations when a station's lease moved on (its epoch changed): the
        batch must not commit. On PostgreSQL the lease rows are read FOR SHARE, so an
        instance taking one of them over waits for this batch to end first.

        One statement in the usual case: the keys are inserted only while every lease
        still holds. Nothing inserted is either all duplicates or a lost lease; only
        then is the fence read on its own to tell which."""
        if not keys:
            await self._fence(held, holder)
            return set()
        dialect = self.conn.dialect.name
        stmt = _claim_statement(dialect, _padded(len(keys)), _padded(len(held)) if held else 0)
        params: dict[str, Any] = {"holder": holder, "now": self.now, "n": len(held)}
        for i, key in enumerate(_pad(keys)):
            params[f"k{i}"] = key
        for i, (sid, epoch) in enumerate(_pad(list(held.items()))):
            params[f"s{i}"], params[f"e{i}"] = sid, epoch
        fresh = {row[0] for row in (await self.db.execute(stmt, params)).rows}
        if not fresh:
            await self._fence(held, holder)
        return fresh

    async def _fence(self, held: dict[str, int], holder: str) -> None:
        if not held:
            return
        rows = await self.conn.execute(
            select(stations.c.id, stations.c.holder, stations.c.epoch)
            .where(stations.c.id.in_(list(held)))
            .with_for_update(read=True)
        )
        mine = {r.id for r in rows if r.holder == holder and r.epoch == held[r.id]}
        lost = set(held) - mine
        if lost:
            raise LostStations(lost)

    async def flush(self) -> None:
        """Write everything buffered so far (the batch's transaction stays open)."""
        db = self.db
        if self.tasks:
            await db.executemany(
                _SAVE_TASK, [_task_params(t, self.now) for t in self.tasks.values()]
            )
            self.tasks.clear()
        if self.batches:
            for placed in (False, True):
                rows: list[dict[str, Any]] = [
                    {"b_id": b.batch_id, "b_state": b.state}
                    | ({"b_station": b.station} if placed else {})
                    for b in self.batches.values()
                    if (b.station is not None) == placed
                ]
                if rows:
                    await db.executemany(_PLACE_BATCH if placed else _SAVE_BATCH, rows)
            self.batches.clear()
        if self.shelf:
            await self._shelf()
        if self.lines:
            await db.executemany(
                _COUNT_LINES, [{"b_id": k, "b_qty": v} for k, v in self.lines.items()]
            )
            self.lines.clear()
        if self.picked_reservations:
            await self._reservations()
        if self.moves:
            await self._moves()
        ordered, self.ordered = self.ordered, []
        # Tote moves of one shape go as one statement: a batch in which several
        # stations each end an order moves several orders' totes (a round trip each
        # before). A move may wait past effects on other tables; a tote saved or an
        # order cancelled sends the moves gathered so far first, keeping their order.
        moving: list[fx.MoveTotes] = []
        for effect in ordered:
            if isinstance(effect, fx.MoveTotes):
                if moving and _tote_shape(moving[0]) != _tote_shape(effect):
                    await self._move_totes(moving)
                moving.append(effect)
                continue
            if moving and isinstance(effect, fx.SaveTote | fx.CancelOrder):
                await self._move_totes(moving)
            await self._ordered(effect)
        await self._move_totes(moving)
        if self.checks:
            await self._checks()
        if self.packages:
            await self._packages()
        if self.events:
            await db.executemany(_INSERT_EVENTS, [event_row(e) for e in self.events])
            await queue_order_events(self.conn, self.events)
            self.messages[:0] = [state_message(self.topics, e) for e in self.events]
            self.events.clear()

    async def finish(self) -> None:
        """The batch's last statements: buffered rows, the append-only tables, the outbox."""
        await self.flush()
        db = self.db
        if self.activity_rows:
            await db.executemany(_INSERT_ACTIVITY, self.activity_rows)
            self.activity_rows.clear()
        if self.command_rows:
            await db.executemany(_INSERT_COMMANDS, self.command_rows)
            self.command_rows.clear()
        if self.traced:
            await db.executemany(_INSERT_TRACED, self.traced)
            self.traced.clear()
        if self.messages:
            await enqueue(self.conn, self.messages)
            self.messages.clear()

    async def _shelf(self) -> None:
        by_pile: dict[tuple[str, str], int] = defaultdict(int)
        for s in self.shelf:
            by_pile[(s.sku, s.location)] += s.qty
        await self.db.executemany(
            _TAKE_FROM_SHELF,
            [
                {"b_sku": k[0], "b_loc": k[1], "b_qty": q, "b_now": self.now}
                for k, q in by_pile.items()
            ],
        )
        await self.db.executemany(
            _INSERT_STOCK_MOVES,
            [
                {
                    "sku": s.sku,
                    "location": s.location,
                    "kind": s.kind,
                    "qty": s.qty,
                    "order_id": s.order_id,
                    "actor": self.actor,
                    "at": self.now,
                }
                for s in self.shelf
            ],
        )
        self.shelf.clear()

    async def _reservations(self) -> None:
        whole = [{"b_id": rid} for rid, qty in self.picked_reservations.items() if qty is None]
        if whole:
            await self.db.executemany(_PICKED_RESERVATION, whole)
        for rid, qty in self.picked_reservations.items():
            if qty is not None:
                # Short: the picked part is in the tote, the missing part no longer exists.
                await self.conn.execute(
                    update(reservations)
                    .where(reservations.c.id == rid)
                    .values(qty=qty, state="picked" if qty else "released")
                )
        self.picked_reservations.clear()

    async def _moves(self) -> None:
        """Order moves guarded on their source state: one statement per round (a round
        moves each order at most once; an order moved twice in the batch takes two)."""
        pending, self.moves = self.moves, []
        while pending:
            seen: set[str] = set()
            now_round: list[fx.OrderMove] = []
            later: list[fx.OrderMove] = []
            for move in pending:
                (later if move.order_id in seen else now_round).append(move)
                seen.add(move.order_id)
            guarded = [m for m in now_round if m.src is not None and find_transition(m.src, m.dst)]
            for move in now_round:
                if move.src is None:
                    await self._move_any(move)
            if guarded:
                await self._move_guarded(guarded)
            pending = later

    async def _move_guarded(self, moves: list[fx.OrderMove]) -> None:
        params: dict[str, Any] = {"now": self.now}
        for i, m in enumerate(_pad(moves)):
            params[f"o{i}"], params[f"f{i}"], params[f"t{i}"] = m.order_id, m.src, m.dst
        rows = (await self.db.execute(_move_statement(_padded(len(moves))), params)).rows
        moved = {r[0]: int(r[1]) for r in rows}
        for m in moves:
            seq = moved.get(m.order_id)
            if seq is not None:
                self.events.append(
                    OrderEvent(m.order_id, seq, m.src, m.dst, self.actor, m.reason, self.now)
                )

    async def _move_any(self, move: fx.OrderMove) -> None:
        try:
            await transition(
                self.conn,
                self.topics,
                move.order_id,
                move.dst,
                actor=self.actor,
                reason=move.reason,
                at=self.now,
            )
        except (IllegalTransition, StateMoved):
            return

    async def _move_totes(self, moves: list[fx.MoveTotes]) -> None:
        """Tote moves of one shape (``_tote_shape``), in one round trip; empties ``moves``."""
        if not moves:
            return
        rows: list[dict[str, Any]] = []
        for move in moves:
            params: dict[str, Any] = {
                "b_order": move.order_id,
                "b_dst": move.dst,
                "b_now": self.now,
            }
            if not move.keep_station:
                params["b_station"] = move.station
            for i, state in enumerate(move.src):
                params[f"b_src{i}"] = state
            rows.append(params)
        await self.db.executemany(_move_totes(*_tote_shape(moves[0])), rows)
        moves.clear()

    async def _ordered(self, effect: Any) -> None:
        c = self.conn
        match effect:
            case fx.SaveTote():
                values_ = {
                    "order_id": effect.order_id,
                    "state": effect.state,
                    "station": effect.station,
                    "updated_at": self.now,
                }
                saved = await self.db.execute(_SAVE_TOTE, {"b_code": effect.code, **values_})
                if saved.rowcount == 0:
                    await c.execute(insert(totes).values(code=effect.code, **values_))
            case fx.CancelOrder():
                await self.flush()  # the order's tasks and moves so far, before it goes
                with contextlib.suppress(IllegalTransition, StateMoved):
                    await cancel_in(
                        c, self.topics, effect.order_id, actor=self.actor, reason=effect.reason
                    )
            case fx.Alert():
                await c.execute(
                    insert(alerts).values(
                        code=effect.code,
                        severity=effect.severity,
                        message=effect.message,
                        subject=effect.subject,
                        created_at=self.now,
                    )
                )
                payload = AlertPayload(
                    ts=self.now, code=effect.code, message=effect.message, subject=effect.subject
                )
                self.messages.append(message(self.topics.alert(effect.severity), payload))
            case fx.PlaceTask():
                await self.db.execute(_PLACE_TASK, {"b_id": effect.task_id, "b_seq": effect.seq})
            case fx.StationDown():
                await c.execute(
                    update(stations)
                    .where(stations.c.id == effect.station)
                    .values(down=effect.down, down_reason=effect.reason, updated_at=self.now)
                )

    async def _checks(self) -> None:
        for check in self.checks.values():
            row = {
                "station": check.station,
                "scanned": dict(check.scanned),
                "packaging_ok": check.packaging_ok,
                "appearance_ok": check.appearance_ok,
                "result": check.result,
                "note": check.note,
                "updated_at": self.now,
            }
            result = await self.conn.execute(
                update(qc_checks).where(qc_checks.c.order_id == check.order_id).values(**row)
            )
            if result.rowcount == 0:
                await self.conn.execute(insert(qc_checks).values(order_id=check.order_id, **row))
        self.checks.clear()

    async def _packages(self) -> None:
        for p in self.packages.values():
            row: dict[str, Any] = {
                "order_id": p.order_id,
                "station": p.station,
                "carton": p.carton,
                "expected_g": p.expected_g,
                "measured_g": p.measured_g,
                "sscc": p.sscc,
                "printer": p.printer,
                "state": p.state,
                "updated_at": self.now,
            }
            if p.document is not None:
                row["document"] = json.loads(json.dumps(dict(p.document)))
            result = await self.conn.execute(
                update(packages).where(packages.c.id == p.id).values(**row)
            )
            if result.rowcount == 0:
                await self.conn.execute(
                    insert(packages).values(id=p.id, created_at=self.now, **row)
                )
        self.packages.clear()


# Statements built once: building one (coercions, its cache key) costs about as much
# CPU as executing it. Statements whose shape follows the batch are built once per
# padded size (a power of two; the padding repeats the last entry, which changes
# nothing) and kept.
_INSERT_ACTIVITY = insert(activity)
_INSERT_COMMANDS = insert(device_commands)
_INSERT_TRACED = insert(picked_units)
_INSERT_EVENTS = insert(order_events)
_INSERT_STOCK_MOVES = insert(stock_moves)
_COUNT_LINES = (
    update(order_lines)
    .where(order_lines.c.id == bindparam("b_id"))
    .values(qty_picked=order_lines.c.qty_picked + bindparam("b_qty"))
)
_TAKE_FROM_SHELF = (
    update(stock)
    .where(and_(stock.c.sku == bindparam("b_sku"), stock.c.location == bindparam("b_loc")))
    .values(
        on_hand=stock.c.on_hand + bindparam("b_qty"),
        reserved=stock.c.reserved + bindparam("b_qty"),
        updated_at=bindparam("b_now"),
    )
)
_PICKED_RESERVATION = (
    update(reservations).where(reservations.c.id == bindparam("b_id")).values(state="picked")
)
_SAVE_TOTE = update(totes).where(totes.c.code == bindparam("b_code"))
_PLACE_TASK = (
    update(pick_tasks).where(pick_tasks.c.id == bindparam("b_id")).values(seq=bindparam("b_seq"))
)


def _tote_shape(move: fx.MoveTotes) -> tuple[int, bool, bool]:
    """What ``_move_totes`` builds its statement from: moves alike share one."""
    return len(move.src), move.keep_station, move.dst == "free"


@functools.lru_cache(maxsize=32)
def _move_totes(sources: int, keep_station: bool, free: bool) -> Any:
    """An order's totes from any of ``sources`` states to ``b_dst``, one shape a time."""
    changes: dict[str, Any] = {"state": bindparam("b_dst"), "updated_at": bindparam("b_now")}
    if not keep_station:
        changes["station"] = bindparam("b_station")
    if free:
        changes["order_id"] = null()
    src: list[Any] = [bindparam(f"b_src{i}") for i in range(sources)]
    return (
        update(totes)
        .where(and_(totes.c.order_id == bindparam("b_order"), totes.c.state.in_(src)))
        .values(**changes)
    )


_SAVE_BATCH = (
    update(pick_batches)
    .where(pick_batches.c.id == bindparam("b_id"))
    .values(state=bindparam("b_state"))
)
_PLACE_BATCH = _SAVE_BATCH.values(station=bindparam("b_station"))


def _padded(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


def _pad(items: list[T]) -> list[T]:
    return items + [items[-1]] * (_padded(len(items)) - len(items)) if items else items


@functools.lru_cache(maxsize=128)
def _claim_statement(dialect_name: str, keys: int, held: int) -> Any:
    """Insert the inbox keys ``k0..`` only while the ``n`` stations ``s0..`` are still
    held by ``holder`` at epochs ``e0..`` (their rows read FOR SHARE on PostgreSQL)."""
    leases = [
        tuple_(bindparam(f"s{i}"), bindparam("holder"), bindparam(f"e{i}")) for i in range(held)
    ]
    holding = (
        select(func.count())
        .select_from(
            select(stations.c.id)
            .where(tuple_(stations.c.id, stations.c.holder, stations.c.epoch).in_(leases))
            .with_for_update(read=True)
            .subquery()
        )
        .scalar_subquery()
    )
    source = union_all(
        *(
            select(bindparam(f"k{i}", type_=processed_messages.c.msg_id.type).label("msg_id"))
            for i in range(keys)
        )
    ).subquery()
    rows = (
        select(
            source.c.msg_id,
            literal("", processed_messages.c.topic.type),
            bindparam("now", type_=processed_messages.c.at.type),
        )
        # Also what SQLite needs to read ON CONFLICT after INSERT ... SELECT.
        .where(holding == bindparam("n"))
    )
    return (
        insert_skipping_duplicates(dialect_name, processed_messages, "msg_id")
        .from_select(["msg_id", "topic", "at"], rows)
        .returning(processed_messages.c.msg_id)
    )


@functools.lru_cache(maxsize=32)
def _move_statement(moves: int) -> Any:
    """Order ``o{i}`` from state ``f{i}`` to ``t{i}``, each only if still in its source."""
    target = case(
        *((orders.c.id == bindparam(f"o{i}"), bindparam(f"t{i}")) for i in range(moves)),
        else_=orders.c.state,
    )
    return (
        update(orders)
        .where(
            or_(
                *(
                    and_(orders.c.id == bindparam(f"o{i}"), orders.c.state == bindparam(f"f{i}"))
                    for i in range(moves)
                )
            )
        )
        .values(state=target, seq=orders.c.seq + 1, updated_at=bindparam("now"))
        .returning(orders.c.id, orders.c.seq)
    )


_SAVE_TASK = (
    update(pick_tasks)
    .where(pick_tasks.c.id == bindparam("b_id"))
    .values(
        qty_picked=bindparam("b_picked"),
        state=bindparam("b_state"),
        ptl_device=bindparam("b_panel"),
        ptl_slot=bindparam("b_slot"),
        updated_at=bindparam("b_now"),
    )
)


def _task_params(t: fx.SaveTask, now: datetime) -> dict[str, Any]:
    return {
        "b_id": t.task_id,
        "b_picked": t.picked,
        "b_state": str(t.state),
        "b_panel": t.panel,
        "b_slot": t.slot,
        "b_now": now,
    }
