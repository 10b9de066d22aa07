"""Order intake (design §1 steps 1-2): orders taken together, one transaction per batch.

An order that arrives while a batch is being committed waits for the next one, and
the next one takes every order that waited (group commit, as the controller does for
scans). A batch costs four round trips whatever its size: BEGIN; one statement that
looks up its idempotency keys and takes stock for its total demand per SKU (atomic on
PostgreSQL, see ``wcs.persistence.intake_store``); one that writes every row of every
order; COMMIT. A SKU that every order wants (a flash sale) is
updated once per batch, so its row lock is held by one batch at a time instead of
queueing every order behind it. The units a batch holds are then shared among its
orders in arrival order, each all or nothing (``wcs.domain.reservation.distribute``);
units nobody could use go back in the same transaction.

Exactness: the take never gives a batch more than a pile has at that moment (the pile
is locked and read at its newest version), and what the batch took is either
written as reservations or given back before commit, so stock is never oversold and
never held by nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, Literal

import asyncpg
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.contract.payloads import Alert
from wcs.contract.topics import Topics
from wcs.domain import orders as domain
from wcs.domain.intake import Examined, IntakeLine, IntakeOrder, examine
from wcs.domain.orders import OrderEvent
from wcs.domain.reservation import LineDemand, Plan, distribute
from wcs.domain.states import OrderState
from wcs.errors import IdempotencyConflict, InsufficientStock, WcsError
from wcs.i18n.negotiation import country_language
from wcs.ids import new_id
from wcs.notify.queue import notify_rows
from wcs.persistence.db import (
    DatabaseUnavailable,
    connection_broken,
    is_outage,
    reporting_outages,
)
from wcs.persistence.intake_store import (
    BatchRows,
    IntakeStore,
    KnownOrder,
    PgIntakeStore,
    SqlIntakeStore,
    TakeRaced,
)
from wcs.persistence.orders import event_row, state_message
from wcs.persistence.outbox import OutboxMessage, message
from wcs.services.order_views import shape_order
from wcs.timeutil import utcnow

log = logging.getLogger(__name__)

# Promised ship-by time per service level, counted from intake.
SLA = {
    "same_day": timedelta(hours=4),
    "express": timedelta(hours=12),
    "standard": timedelta(hours=48),
}

Shortage = Literal["backorder", "refuse"]


@dataclass(frozen=True)
class NewOrder:
    external_id: str
    customer_name: str
    phone: str | None
    email: str | None
    line1: str
    line2: str | None
    city: str
    postal_code: str
    country: str
    lines: Sequence[tuple[str, int]]
    priority: int = 0
    service: str = "standard"
    lat: float | None = None
    lon: float | None = None
    customer_ref: str | None = None
    linked_order_id: str | None = None
    # The customer's language (BCP 47); None: the language of the delivery country.
    lang: str | None = None


@dataclass
class IntakeResult:
    order_id: str
    state: str
    created: bool
    problems: list[str] = field(default_factory=list)
    order: dict[str, Any] | None = None  # the new order's API view (not for replays)


@dataclass(frozen=True, slots=True)
class Submission:
    order: NewOrder
    key: str  # Idempotency-Key, or the shop's external id
    request_hash: str
    actor: str


Outcome = IntakeResult | WcsError


def _replay(sub: Submission, known: KnownOrder) -> Outcome:
    if known.request_hash != sub.request_hash:
        return IdempotencyConflict(
            f"Idempotency-Key {sub.key!r} was already used for order {known.id} with a "
            "different body; use a new key for a new order",
            order_id=known.id,
        )
    problems = known.exception_reason.split("; ") if known.exception_reason else []
    return IntakeResult(known.id, known.state, created=False, problems=problems)


def _examine(new: NewOrder, known_skus: set[str]) -> Examined:
    return examine(
        IntakeOrder(
            external_id=new.external_id,
            customer_name=new.customer_name,
            phone=new.phone,
            email=new.email,
            line1=new.line1,
            city=new.city,
            postal_code=new.postal_code,
            country=new.country,
            lines=[IntakeLine(sku, qty) for sku, qty in new.lines],
        ),
        known_skus,
    )


def _order_row(sub: Submission, order_id: str, now: datetime, examined: Examined) -> dict[str, Any]:
    new = sub.order
    return {
        "id": order_id,
        "external_id": new.external_id,
        "idempotency_key": sub.key,
        "request_hash": sub.request_hash,
        "state": OrderState.RECEIVED,
        "seq": 0,
        "priority": new.priority,
        "service": new.service,
        "customer_name": new.customer_name,
        # Valid contacts normalised (phone in E.164), others as given.
        "phone": examined.phone,
        "email": examined.email,
        "lang": new.lang or country_language(new.country),
        "line1": new.line1,
        "line2": new.line2,
        "city": new.city,
        "postal_code": new.postal_code,
        "country": new.country.upper(),
        "lat": new.lat,
        "lon": new.lon,
        "customer_ref": new.customer_ref,
        "linked_order_id": new.linked_order_id,
        "exception_reason": None,
        "sla_deadline": now + SLA.get(new.service, SLA["standard"]),
        "created_at": now,
        "updated_at": now,
    }


def _events(
    order_id: str, actor: str, now: datetime, steps: Sequence[tuple[str, str]]
) -> list[OrderEvent]:
    """received, then each (state, reason): decided by the state machine, gap-free."""
    events = [domain.created(order_id, actor, now, "order received")]
    for target, reason in steps:
        last = events[-1]
        events.append(
            domain.transition(
                order_id, last.to_state, last.seq, target, actor=actor, reason=reason, at=now
            )
        )
    return events


def _outbox_row(msg: OutboxMessage, now: datetime) -> dict[str, Any]:
    return {
        "topic": msg.topic,
        "payload": msg.payload.decode(),
        "qos": msg.qos,
        "retain": msg.retain,
        "created_at": now,
        "deferred_until": None,
    }


class _Writer:
    """Collects the rows of the orders a batch creates, in arrival order."""

    def __init__(self, topics: Topics, now: datetime) -> None:
        self.topics = topics
        self.now = now
        self.rows = BatchRows()

    def alert(self, code: str, severity: str, text: str, subject: str) -> OutboxMessage:
        """An alert row (for GET /alerts), as ``raise_alert`` writes it; its message."""
        self.rows.alerts.append(
            {
                "code": code,
                "severity": severity,
                "message": text,
                "subject": subject,
                "created_at": self.now,
            }
        )
        payload = Alert(ts=self.now, code=code, message=text, subject=subject)
        return message(self.topics.alert(severity), payload)

    def add(
        self,
        sub: Submission,
        order_id: str,
        steps: list[tuple[str, str]],
        *,
        examined: Examined,
        plan: Plan | None = None,
    ) -> IntakeResult:
        now, new, rows = self.now, sub.order, self.rows
        problems = examined.problems
        row = _order_row(sub, order_id, now, examined)
        lines = [
            {"order_id": order_id, "line_no": n, "sku": sku, "qty": qty, "qty_picked": 0}
            for n, (sku, qty) in enumerate(new.lines, start=1)
        ]
        events = _events(order_id, sub.actor, now, steps)
        final = events[-1]
        row.update(state=final.to_state, seq=final.seq)
        messages: list[OutboxMessage] = []
        if problems:
            reason = "; ".join(problems)
            row["exception_reason"] = reason
            messages.append(
                self.alert(
                    "order_invalid",
                    "warning",
                    f"order {order_id} ({new.external_id}) needs customer service: {reason}",
                    order_id,
                )
            )
        if plan is not None:
            for alloc in plan.allocations:
                rows.reservations.append(
                    {
                        "order_id": order_id,
                        "line_no": alloc.line_id,
                        "sku": alloc.sku,
                        "location": alloc.location,
                        "qty": alloc.qty,
                        "state": "active",
                        "created_at": now,
                    }
                )
            for short in plan.shortages:
                rows.replenishments.append(
                    {
                        "sku": short.sku,
                        "qty": short.missing,
                        "order_id": order_id,
                        "state": "open",
                        "created_at": now,
                    }
                )
        rows.orders.append(row)
        rows.lines.extend(lines)
        rows.events.extend(event_row(e) for e in events)
        rows.notify.extend(notify_rows(events))
        messages.extend(state_message(self.topics, e) for e in events)
        rows.outbox.extend(_outbox_row(m, now) for m in messages)
        # The answer is built from what is written: no read back.
        view = shape_order(
            SimpleNamespace(**row),
            [{k: v for k, v in ln.items() if k != "order_id"} for ln in lines],
        )
        return IntakeResult(
            order_id, final.to_state, created=True, problems=list(problems), order=view
        )


async def intake_batch(
    store: IntakeStore,
    topics: Topics,
    subs: Sequence[Submission],
    *,
    shortage: Shortage = "backorder",
    sku_cache: set[str] | None = None,
) -> list[Outcome]:
    """Decide and write a batch of submissions in the caller's transaction.

    Returns one outcome per submission, in order: the order (new or replayed), or the
    error to answer with (a key reused with another body; a shortage refused).
    ``sku_cache`` holds SKUs known to exist (they are never deleted), so a batch asks
    the database only about SKUs it has not seen yet.
    """
    now = utcnow()
    outcomes: list[Outcome | None] = [None] * len(subs)
    first: dict[str, int] = {}  # key -> the submission of this batch that answers it
    for i, sub in enumerate(subs):
        first.setdefault(sub.key, i)
    heads = sorted(first.values())

    wanted = {sku for i in heads for sku, _ in subs[i].order.lines}
    known = sku_cache if sku_cache is not None else set()
    if not wanted <= known:
        known = known | await store.known_skus(wanted - known)
        if sku_cache is not None:
            sku_cache.update(known)
    examined = {i: _examine(subs[i].order, known) for i in heads}
    problems = {i: examined[i].problems for i in heads}
    demand = {
        i: [LineDemand(n, sku, qty) for n, (sku, qty) in enumerate(subs[i].order.lines, start=1)]
        for i in heads
        if not problems[i]
    }
    want: dict[str, int] = {}
    for lines in demand.values():
        for line in lines:
            want[line.sku] = want.get(line.sku, 0) + line.qty
    # Stock is taken before the keys are known to be new (one round trip for both):
    # a replay's units are given back with the rest nobody could use.
    found, held = await store.claim(sorted(first), want, now)
    fresh = []
    for i in heads:
        if subs[i].key in found:
            outcomes[i] = _replay(subs[i], found[subs[i].key])
        else:
            fresh.append(i)
    valid = [i for i in fresh if i in demand]
    plans, leftover = distribute([demand[i] for i in valid], held)
    await store.give_back(leftover, now)
    plan_of = dict(zip(valid, plans, strict=True))

    writer = _Writer(topics, now)
    for i in fresh:
        sub = subs[i]
        order_id = new_id("o")
        if problems[i]:
            reason = "; ".join(problems[i])
            outcomes[i] = writer.add(
                sub, order_id, [(OrderState.EXCEPTION, reason)], examined=examined[i]
            )
            continue
        plan = plan_of[i]
        checked = (OrderState.VALIDATED, "checks passed")
        if plan.complete:
            outcomes[i] = writer.add(
                sub,
                order_id,
                [checked, (OrderState.RESERVED, "stock reserved")],
                examined=examined[i],
                plan=plan,
            )
            continue
        short = ", ".join(f"{s.sku} short {s.missing}" for s in plan.shortages)
        if shortage == "refuse":
            outcomes[i] = InsufficientStock(f"not enough stock: {short}; nothing was ordered")
            continue
        outcomes[i] = writer.add(
            sub,
            order_id,
            [checked, (OrderState.BACKORDERED, f"shortage: {short}")],
            examined=examined[i],
            plan=plan,
        )
    await store.write(writer.rows)

    for i, sub in enumerate(subs):
        if outcomes[i] is not None:
            continue
        # The same key twice in this batch: the order under that key answers, the one
        # made before or the one its first submission made now.
        if sub.key in found:
            outcomes[i] = _replay(sub, found[sub.key])
        else:
            answer = outcomes[first[sub.key]]
            if isinstance(answer, IntakeResult):
                answer = _replay(
                    sub,
                    KnownOrder(
                        answer.order_id,
                        answer.state,
                        subs[first[sub.key]].request_hash,
                        "; ".join(answer.problems) or None,
                    ),
                )
            outcomes[i] = answer
    done = [o for o in outcomes if o is not None]
    assert len(done) == len(subs)
    return done


# --- transactions ----------------------------------------------------------------------


def _retryable(exc: BaseException) -> bool:
    """The batch lost a race as a whole and may simply run again: a key inserted
    meanwhile by another process (the rerun replays it), a deadlock or serialization
    failure that PostgreSQL broke by aborting us."""
    if isinstance(exc, IntegrityError | TakeRaced):
        return True
    return getattr(exc, "sqlstate", None) in ("23505", "40001", "40P01")


@contextlib.asynccontextmanager
async def _unit(conn: AsyncConnection) -> AsyncIterator[IntakeStore]:
    """One transaction on ``conn``: straight on asyncpg for PostgreSQL."""
    if conn.dialect.name == "postgresql":
        raw: Any = (await conn.get_raw_connection()).driver_connection
        async with raw.transaction():
            yield PgIntakeStore(raw)
    else:
        async with conn.begin():
            yield SqlIntakeStore(conn)


async def commit_batch(
    conn: AsyncConnection,
    topics: Topics,
    subs: Sequence[Submission],
    *,
    shortage: Shortage = "backorder",
    sku_cache: set[str] | None = None,
    attempts: int = 4,
) -> list[Outcome]:
    """Run ``intake_batch`` in its own transaction, again if it lost a race.

    Raises what made the batch fail otherwise; DatabaseUnavailable when the database
    is away.
    """
    for attempt in range(attempts):
        try:
            with reporting_outages():
                async with _unit(conn) as store:
                    return await intake_batch(
                        store, topics, subs, shortage=shortage, sku_cache=sku_cache
                    )
        except Exception as exc:
            # asyncpg's InterfaceError: the kept connection was closed under us.
            if is_outage(exc) or isinstance(exc, asyncpg.InterfaceError):
                raise DatabaseUnavailable(
                    f"database unreachable or failing ({type(exc).__name__}); "
                    "check that PostgreSQL is running and WCS_DATABASE_URL is right"
                ) from exc
            if not _retryable(exc) or attempt == attempts - 1:
                raise
            log.debug("intake batch of %d lost a race (%r); running it again", len(subs), exc)
    raise AssertionError("unreachable")


async def submit_order(
    engine: AsyncEngine,
    topics: Topics,
    new: NewOrder,
    *,
    idempotency_key: str,
    request_hash: str,
    actor: str,
    shortage: Shortage = "backorder",
) -> IntakeResult:
    """Create one order and move it as far as it can go: validated, reserved or
    backordered (or refused on a shortage, with ``shortage="refuse"``).

    An invalid order is kept in ``exception`` with its reasons and an alert for
    customer service. The same key with the same body returns the same order. The API
    takes its orders through an ``IntakeDesk`` instead, which batches them.
    """
    with reporting_outages():
        async with engine.connect() as conn:
            [outcome] = await commit_batch(
                conn,
                topics,
                [Submission(new, idempotency_key, request_hash, actor)],
                shortage=shortage,
            )
    if isinstance(outcome, WcsError):
        raise outcome
    return outcome


# --- group commit ----------------------------------------------------------------------


@dataclass
class DeskStats:
    batches: int = 0
    orders: int = 0
    split_batches: int = 0  # failed as a whole, then committed order by order
    largest: int = 0


class IntakeDesk:
    """Takes orders from many concurrent requests and commits them in batches.

    Use as ``async with IntakeDesk(engine, topics) as desk: await desk.submit(sub)``.
    One committer keeps one connection; while it commits a batch the next one
    gathers. A batch that fails as a whole (a bug, a value the database refuses) is
    committed again order by order, so one bad order cannot take its neighbours down.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        topics: Topics,
        *,
        batch_max: int = 256,
        shortage: Shortage = "backorder",
        on_committed: Callable[[int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.topics = topics
        self.batch_max = batch_max
        self.shortage: Shortage = shortage
        # Called with the batch's size after each commit (metrics; wakes the relay).
        self.on_committed = on_committed
        self.stats = DeskStats()
        self._waiting: list[tuple[Submission, asyncio.Future[Outcome]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: AsyncConnection | None = None
        self._skus: set[str] = set()

    async def __aenter__(self) -> IntakeDesk:
        self._task = asyncio.create_task(self._run(), name="intake-committer")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for _, future in self._waiting:
            if not future.done():
                future.set_exception(DatabaseUnavailable("the API is shutting down; retry"))
        self._waiting.clear()
        await self._drop_connection()

    async def submit(self, sub: Submission) -> IntakeResult:
        """Queue one submission; returns when the batch it joined has committed."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting.append((sub, future))
        self._wake.set()
        outcome = await future
        if isinstance(outcome, WcsError):
            raise outcome
        return outcome

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                batch = self._waiting[: self.batch_max]
                del self._waiting[: self.batch_max]
                await self._commit(batch)

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            self._conn = await self.engine.connect()
        return self._conn

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
                await conn.close()

    async def _commit(self, batch: list[tuple[Submission, asyncio.Future[Outcome]]]) -> None:
        subs = [sub for sub, _ in batch]
        try:
            outcomes = await self._attempt(subs)
        except DatabaseUnavailable as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            log.warning(
                "intake batch of %d failed (%r); committing its orders one by one", len(batch), exc
            )
            self.stats.split_batches += 1
            for item in batch:
                await self._commit([item])
            return
        self.stats.batches += 1
        self.stats.orders += len(batch)
        self.stats.largest = max(self.stats.largest, len(batch))
        if self.on_committed is not None:
            self.on_committed(len(batch))
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():  # the request may have been given up meanwhile
                future.set_result(outcome)

    async def _attempt(self, subs: list[Submission]) -> list[Outcome]:
        try:
            with reporting_outages():
                conn = await self._connection()
            return await commit_batch(
                conn, self.topics, subs, shortage=self.shortage, sku_cache=self._skus
            )
        except BaseException:
            if self._conn is not None and await connection_broken(self._conn):
                await self._drop_connection()
            raise
