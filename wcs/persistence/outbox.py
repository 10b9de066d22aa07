"""Transactional outbox: messages are written with the state change that causes them
and published after commit by the relay, so a crash or a broker outage loses nothing.

Ordering: rows are published strictly in id order over one MQTT connection, a batch
at a time; a batch is marked published only after every PUBACK arrived. A failed
batch is sent again from its first row, so delivery is at least once and never out
of order; ``order/{id}/state`` carries ``seq`` so a subscriber drops a repeat.
Only the holder of the ``outbox-relay`` lease publishes, so several processes can
run a relay and exactly one is active.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiomqtt
from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.contract.payloads import Payload
from wcs.ids import new_id
from wcs.mqtt.client import make_client, publish_all
from wcs.persistence.db import OUTAGE_ERRORS, reading
from wcs.persistence.leases import Lease
from wcs.persistence.tables import outbox
from wcs.retry import Backoff, Reconnect
from wcs.settings import MqttEndpoint
from wcs.tasks import background
from wcs.timeutil import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 1


def message(topic: str, payload: Payload, *, retain: bool = False) -> OutboxMessage:
    return OutboxMessage(topic, payload.to_json(), retain)


class Collector:
    """Rows written while it is active; their writer publishes them after commit."""

    def __init__(self, defer: timedelta) -> None:
        self.defer = defer
        self.rows: list[tuple[int, OutboxMessage]] = []


_collector: ContextVar[Collector | None] = ContextVar("outbox_collector", default=None)


@contextlib.contextmanager
def collecting(defer: timedelta = timedelta(seconds=10)) -> Iterator[Collector]:
    """Collect the outbox rows written in this context (for publish-after-commit).

    The rows are still durable: if the process dies before publishing them, the relay
    sends them once ``defer`` has passed.
    """
    collector = Collector(defer)
    token = _collector.set(collector)
    try:
        yield collector
    finally:
        _collector.reset(token)


def collector_deferral(now: datetime) -> datetime | None:
    """``deferred_until`` for rows written now: set while a collector is active."""
    collector = _collector.get()
    return now + collector.defer if collector else None


def collector_add(ids: Sequence[int], messages: Sequence[OutboxMessage]) -> None:
    """Register rows written by a caller's own statement with the active collector."""
    collector = _collector.get()
    if collector is not None:
        collector.rows.extend(zip(ids, messages, strict=True))


_INSERT = insert(outbox)
_INSERT_RETURNING = insert(outbox).returning(outbox.c.id, sort_by_parameter_order=True)


async def enqueue(conn: AsyncConnection, messages: Sequence[OutboxMessage]) -> None:
    """Write messages inside the caller's transaction (they publish after commit)."""
    if not messages:
        return
    now = utcnow()
    collector = _collector.get()
    rows = [
        {
            "topic": m.topic,
            "payload": m.payload.decode(),
            "qos": m.qos,
            "retain": m.retain,
            "created_at": now,
            "deferred_until": now + collector.defer if collector else None,
        }
        for m in messages
    ]
    if collector is None:
        await conn.execute(_INSERT, rows)
        return
    ids = (await conn.scalars(_INSERT_RETURNING, rows)).all()
    collector.rows.extend(zip(ids, messages, strict=True))


async def mark_published(engine: AsyncEngine, ids: Sequence[int]) -> None:
    if not ids:
        return
    async with engine.begin() as conn:
        await conn.execute(
            update(outbox)
            .where(and_(outbox.c.id.in_(list(ids)), outbox.c.published_at.is_(None)))
            .values(published_at=utcnow())
        )


@dataclass
class RelayStats:
    published: int = 0
    batches: int = 0
    failures: int = 0
    active: bool = False
    looks: int = 0  # queries for rows to publish


class OutboxRelay:
    """Publishes outbox rows; run it as ``async with OutboxRelay(...) as relay``."""

    LEASE = "outbox-relay"

    def __init__(
        self,
        engine: AsyncEngine,
        endpoint: MqttEndpoint,
        *,
        batch_size: int = 200,
        idle_poll_s: float = 0.02,
        idle_poll_max_s: float = 0.1,
        lease_ttl_s: float = 10.0,
        keep_published: timedelta = timedelta(hours=24),
    ) -> None:
        self._engine = engine
        self._endpoint = endpoint
        self._batch_size = batch_size
        # Found nothing: look again after idle_poll_s, then twice as long each time
        # up to idle_poll_max_s. Rows found, or a wake(), bring it back to the start.
        # Each look is a pool checkout, a query and a rollback: at a steady 20 ms a
        # relay with nothing to do (the controller's: it publishes its own rows
        # itself) would take a share of a core for nothing. Rows another process
        # commits wait idle_poll_max_s at most; rows announced by wake(), not at all.
        self._idle_poll_s = idle_poll_s
        self._idle_poll_max_s = max(idle_poll_s, idle_poll_max_s)
        self._keep = keep_published
        self._holder = new_id("relay-")
        self._lease = Lease(
            engine, self.LEASE, ttl=timedelta(seconds=lease_ttl_s), holder=self._holder
        )
        self._wake = asyncio.Event()
        self._stack = contextlib.AsyncExitStack()
        self.stats = RelayStats()

    def wake(self) -> None:
        """Tell the relay new rows were committed (saves one poll interval)."""
        self._wake.set()

    async def __aenter__(self) -> OutboxRelay:
        await self._stack.enter_async_context(
            background("outbox-relay", self._lease.run(self._publish_while_held))
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _publish_while_held(self) -> None:
        """The lease's job: stay connected to the broker and publish; a broker or
        database outage keeps the rows and is retried with the backoff."""
        link = Reconnect(
            f"outbox relay -> broker {self._endpoint.host}:{self._endpoint.port}",
            log,
            Backoff(0.2, 5.0),
            expected=(aiomqtt.MqttError, *OUTAGE_ERRORS),
            on_failure=self._paused,
        )

        async def connection() -> None:
            async with make_client(self._endpoint, identifier=self._holder) as client:
                link.up()
                self.stats.active = True
                await self._serve(client)

        try:
            await link.run(connection)
        finally:
            self.stats.active = False

    def _paused(self, exc: BaseException) -> None:
        self.stats.failures += 1
        self.stats.active = False

    async def _serve(self, client: aiomqtt.Client) -> None:
        last_cleanup = utcnow()
        poll_s = self._idle_poll_s
        while True:
            now = utcnow()
            # Cleared before looking, so a row committed while we look still wakes us.
            self._wake.clear()
            sent = await self._publish_batch(client)
            self.stats.looks += 1
            if now - last_cleanup > timedelta(minutes=5):
                await self._cleanup()
                last_cleanup = now
            if sent:
                poll_s = self._idle_poll_s
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), poll_s)
            woken = self._wake.is_set()
            poll_s = self._idle_poll_s if woken else min(2 * poll_s, self._idle_poll_max_s)

    async def _publish_batch(self, client: aiomqtt.Client) -> int:
        async with reading(self._engine).connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        outbox.c.id, outbox.c.topic, outbox.c.payload, outbox.c.qos, outbox.c.retain
                    )
                    .where(
                        and_(
                            outbox.c.published_at.is_(None),
                            or_(
                                outbox.c.deferred_until.is_(None),
                                outbox.c.deferred_until < utcnow(),
                            ),
                        )
                    )
                    .order_by(outbox.c.id)
                    .limit(self._batch_size)
                )
            ).all()
            await conn.rollback()
        if not rows:
            return 0
        # Sent in id order on one connection: the broker keeps that order per topic.
        # Handed to paho at once, one future counting the confirmations, as the
        # controller sends its own (not a task, an event and a timer per message).
        await publish_all(
            client, [(row.topic, row.payload.encode(), row.qos, row.retain) for row in rows]
        )
        async with self._engine.begin() as conn:
            await conn.execute(
                update(outbox)
                .where(and_(outbox.c.id.in_([r.id for r in rows]), outbox.c.published_at.is_(None)))
                .values(published_at=utcnow())
            )
        self.stats.published += len(rows)
        self.stats.batches += 1
        return len(rows)

    async def _cleanup(self) -> None:
        cutoff = utcnow() - self._keep
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(outbox).where(
                    and_(outbox.c.published_at.is_not(None), outbox.c.published_at < cutoff)
                )
            )


async def pending_count(engine: AsyncEngine) -> int:
    from sqlalchemy import func

    async with reading(engine).connect() as conn:
        value = await conn.scalar(
            select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        )
    return int(value or 0)
