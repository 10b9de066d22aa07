"""The controller process: MQTT in, group-committed decisions, commands out.

Flow of one event::

    MQTT (QoS 1, manual ack) -> parse against the contract (bad -> dlq)
      -> committer queue (sharded by device, so one device's events stay in order)
      -> micro-batch: one transaction for all its events
           inbox claim per msg_id (a msg_id seen before is skipped: exactly one
             effect; on PostgreSQL the claim rides in the batch's last statement, and
             a msg_id seen before replays the batch claiming first)
           runs of item scans at different stations take their units in one statement
           handlers decide and write state + events + outbox rows
      -> commit -> PUBACK to broker -> publish the batch's commands and state messages

The broker's message is acknowledged only after its effect committed, on a
persistent session, so a crash before commit means redelivery, never loss.
Batches are optimistic: without savepoints first; if any event fails, the batch is
rolled back and replayed with a savepoint per event so one bad event cannot take
its neighbours down. Refused events (illegal transition, unknown station ...) keep
their inbox row, are counted and go to ``dlq`` with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiomqtt
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from controller import presence
from controller.allocation import Allocator
from controller.context import BatchContext
from controller.dispatch import Inbound, dispatch, take_run, take_runs
from controller.handlers import pick
from controller.index import FloorIndex
from controller.lane import Lane
from controller.store import LateClaimConflict, open_store
from wcs.contract.payloads import Ack, DeviceStatus, dlq_for, parse_event, parse_payload
from wcs.contract.topics import Topics
from wcs.domain.states import OrderState
from wcs.errors import ValidationFailed, WcsError
from wcs.floor import Floor
from wcs.mqtt.client import make_client, publish_all
from wcs.persistence.db import make_engine, transaction
from wcs.persistence.outbox import OutboxRelay, collecting, mark_published
from wcs.persistence.tables import orders, pick_batches
from wcs.services.shipments import CarrierDesk
from wcs.services.waves import release_wave
from wcs.settings import Settings
from wcs.timeutil import utcnow

log = logging.getLogger(__name__)

# Each committer queue holds this many full batches at most.
QUEUE_BATCHES = 4
# Batches whose messages the broker has not confirmed yet, across all committers.
SENDING_MAX = 16


@dataclass
class ControllerStats:
    received: int = 0
    applied: int = 0
    duplicates: int = 0
    refused: int = 0
    dlq: int = 0
    batches: int = 0
    retried_batches: int = 0
    late_claim_replays: int = 0  # batches replayed because a late claim met a seen message
    commit_errors: int = 0
    commands_sent: int = 0
    backpressure_waits: int = 0  # times MQTT reading paused for a full committer queue
    left_to_redeliver: int = 0  # arrived while draining: not acknowledged, come back later
    # The most recent batch sizes only: a controller runs for weeks.
    batch_sizes: deque[int] = field(default_factory=lambda: deque(maxlen=10_000))
    commit_seconds: float = 0.0  # time inside batch transactions, summed
    publish_seconds: float = 0.0  # time publishing and acknowledging after commit


class Controller:
    """Run as ``async with Controller(settings, floor) as controller: await controller.wait()``."""

    def __init__(
        self,
        settings: Settings,
        floor: Floor,
        *,
        engine: AsyncEngine | None = None,
        instance: str | None = None,
        run_relay: bool = True,
        housekeeping: bool = True,
        retiring: bool = False,
    ) -> None:
        self.settings = settings
        self.cfg = settings.controller
        self.index = FloorIndex(floor)
        self.topics = Topics(settings.site)
        self.instance = instance or settings.controller.instance
        self._own_engine = engine is None
        self.engine = engine or make_engine(settings.database_url, pool_size=10, pre_ping=False)
        self._run_relay = run_relay
        self._housekeeping = housekeeping
        # Resume the session only to empty it: no subscriptions, so no new share of
        # the events comes to it (see controller.retire).
        self.retiring = retiring
        self.stats = ControllerStats()
        self.down_stations: set[str] = set()
        self.sku_cache: dict[str, tuple[float, str | None]] = {}
        # Bounded: when the database falls behind, the MQTT loop waits for room instead
        # of buffering without end; the events stay unacknowledged at the broker, which
        # stops sending once its in-flight window for us is full and holds the rest.
        self._queues: list[asyncio.Queue[Inbound]] = [
            asyncio.Queue(maxsize=QUEUE_BATCHES * self.cfg.batch_max)
            for _ in range(self.cfg.committers)
        ]
        self._client: aiomqtt.Client | None = None
        self._generation = 0
        self._connected = asyncio.Event()
        self._stack = contextlib.AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []
        self._relay: OutboxRelay | None = None
        self._stopping = False
        self._in_batch = 0  # committers inside a batch
        self._published: list[int] = []
        self._sending: deque[asyncio.Future[Any]] = deque()
        self._lanes: list[Lane] = []  # the committers' own connections
        self.on_committed: Callable[[Sequence[Inbound]], None] | None = None
        self.allocator: Allocator | None = None

    # --- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Controller:
        if self._run_relay:
            self._relay = await self._stack.enter_async_context(
                OutboxRelay(self.engine, self.settings.mqtt)
            )
        spawn = self._spawn
        spawn(self._mqtt_loop(), "controller-mqtt")
        spawn(self._mark_published_loop(), "controller-outbox-marker")
        for n, queue in enumerate(self._queues):
            spawn(self._committer(queue), f"controller-committer-{n}")
        if self._housekeeping:
            spawn(self._housekeeping_loop(), "controller-housekeeping")
            desk = await self._stack.enter_async_context(CarrierDesk.from_settings(self.settings))
            self.allocator = Allocator(
                self.engine,
                self.topics,
                desk,
                actor=f"controller:{self.instance}",
                interval_s=self.cfg.allocate_interval_s,
                floor=self.index.floor,  # carrier labels print once booked
            )
            spawn(self.allocator.run(), "controller-allocation")
        try:
            async with asyncio.timeout(15):
                await self._connected.wait()
        except TimeoutError:
            await self.__aexit__(None, None, None)
            from wcs.errors import ConfigError

            raise ConfigError(
                f"controller cannot reach the MQTT broker at {self.settings.mqtt.host}:"
                f"{self.settings.mqtt.port}; start it or fix WCS_MQTT_URL"
            ) from None
        log.info("controller %s running for site %s", self.instance, self.settings.site)
        return self

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.append(task)

    async def drain(self, limit_s: float = 10.0) -> bool:
        """Stop taking messages and let the queued ones commit (graceful SIGTERM);
        True if all of them did within ``limit_s``.

        What does not commit within ``limit_s`` stays unacknowledged at the broker and
        is redelivered to the next controller: nothing is lost either way."""
        self._stopping = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit_s):
                for queue in self._queues:
                    await queue.join()
                while self._sending:
                    with contextlib.suppress(aiomqtt.MqttError):
                        await self._sending.popleft()
                return True
        return False

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None and not self.retiring:
            await presence.announce(self._client, self.topics, self.instance, "offline")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # Confirmations still awaited will not be: the relay sends those rows again.
        for sending in self._sending:
            sending.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
        self._sending.clear()
        for lane in self._lanes:
            await lane.close()
        await self._stack.aclose()
        if self._own_engine:
            await self.engine.dispose()

    async def wait(self) -> None:
        """Until cancelled (signals are handled by the caller)."""
        await asyncio.Event().wait()

    # --- MQTT ----------------------------------------------------------------------

    def client_id(self) -> str:
        """Names the instance's persistent MQTT session."""
        return f"wcs-ctl-{self.settings.site}-{self.instance}"

    def idle(self) -> bool:
        """No event queued or being committed."""
        return self._in_batch == 0 and all(queue.empty() for queue in self._queues)

    async def until_quiet(self, quiet_s: float) -> None:
        """Until no event has arrived for ``quiet_s`` and the committers are idle."""
        seen, since = -1, time.monotonic()
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            if self.stats.received != seen or not self.idle():
                seen, since = self.stats.received, now
            elif now - since >= quiet_s:
                return

    async def _mqtt_loop(self) -> None:
        backoff = 0.2
        evt = self.topics.all_events()
        ack = self.topics.all_acks()
        if self.cfg.shared_subscription:
            evt = Topics.shared(self.cfg.group, evt)
            ack = Topics.shared(self.cfg.group, ack)
        while True:
            client = make_client(
                self.settings.mqtt,
                identifier=self.client_id(),
                will=presence.will(self.topics, self.instance),
                protocol=5 if self.cfg.shared_subscription else 3,
                clean_session=False,
                max_queued_incoming=None,
            )
            # Acknowledge QoS 1 messages only after their effect committed.
            client._client._manual_ack = True
            try:
                async with client:
                    self._generation += 1
                    self._client = client
                    for topic in (evt, ack, self.topics.all_statuses()):
                        if self.retiring:  # what the session holds still comes
                            await client.unsubscribe(topic)
                        else:
                            await client.subscribe(topic, qos=1)
                    if not self.retiring:
                        await presence.announce(client, self.topics, self.instance, "online")
                    self._connected.set()
                    backoff = 0.2
                    generation = self._generation
                    async for message in client.messages:
                        if self._stopping:
                            # Not acked: the broker redelivers after restart.
                            self.stats.left_to_redeliver += 1
                            continue
                        routed = self._accept(message, generation)
                        if routed is not None:
                            queue, item = routed
                            if queue.full():
                                self.stats.backpressure_waits += 1
                            await queue.put(item)
            except aiomqtt.MqttError as exc:
                self._client = None
                log.warning("controller lost the broker (%s); reconnecting in %.1fs", exc, backoff)
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, 5.0)

    def _ack_mqtt(self, items: Sequence[Inbound]) -> None:
        client = self._client
        if client is None:
            return
        for item in items:
            if item.generation == self._generation and item.mid:
                client._client.ack(item.mid, 1)

    def _accept(
        self, message: aiomqtt.Message, generation: int
    ) -> tuple[asyncio.Queue[Inbound], Inbound] | None:
        """Parse and check one message: the committer queue it goes to, or None (dlq)."""
        topic = str(message.topic)
        raw = (
            message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        )
        self.stats.received += 1
        try:
            info = self.topics.parse(topic)
            if info.kind == "evt":
                payload: Any = parse_event(info.name or "", raw)
            elif info.kind == "status":
                payload = parse_payload(DeviceStatus, raw)
            elif info.kind == "ack":
                payload = parse_payload(Ack, raw)
            else:
                raise ValidationFailed(f"controller does not consume {info.kind} topics")
            if info.device_id is None or not self.index.known(info.device_id):
                raise ValidationFailed(f"device {info.device_id!r} is not on this floor")
        except ValidationFailed as exc:
            self._dead_letter(topic, raw, exc.message)
            self._ack_mqtt([Inbound(topic, None, None, raw, message.mid, generation, 0.0)])  # type: ignore[arg-type]
            return None
        item = Inbound(topic, info, payload, raw, message.mid, generation, time.perf_counter())
        shard = zlib.crc32(info.device_id.encode()) % len(self._queues)
        return self._queues[shard], item

    def _dead_letter(self, topic: str, raw: bytes, error: str) -> None:
        self.stats.dlq += 1
        log.warning("dead letter from %s: %s", topic, error)
        client = self._client
        if client is None:
            return
        payload = dlq_for(topic, raw, error).to_json()
        task = asyncio.ensure_future(client.publish(self.topics.dlq(), payload, qos=1))
        task.add_done_callback(lambda t: t.exception())

    # --- group commit ----------------------------------------------------------------

    async def _committer(self, queue: asyncio.Queue[Inbound]) -> None:
        lane = Lane(self.engine)
        self._lanes.append(lane)
        while True:
            batch = [await queue.get()]
            if self.cfg.batch_wait_ms > 0 and queue.empty():
                await asyncio.sleep(self.cfg.batch_wait_ms / 1000)
            while len(batch) < self.cfg.batch_max and not queue.empty():
                batch.append(queue.get_nowait())
            self._in_batch += 1
            try:
                await self._commit_with_retry(batch, lane)
            finally:
                self._in_batch -= 1
                for _ in batch:
                    queue.task_done()

    async def _commit_with_retry(self, batch: list[Inbound], lane: Lane | None = None) -> None:
        delay = 0.1
        while True:
            try:
                await self._commit(batch, lane)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database away: keep the batch, try again
                self.stats.commit_errors += 1
                log.warning(
                    "batch of %d not committed (%s); retrying in %.1fs", len(batch), exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _context(
        self, conn: AsyncConnection, keys: list[str] | None = None, *, claim_late: bool = False
    ) -> tuple[BatchContext, set[str]]:
        now = utcnow()
        store, fresh = await open_store(conn, keys or [], now, claim_late=claim_late)
        return BatchContext(
            conn=conn,
            store=store,
            topics=self.topics,
            floor=self.index,
            settings=self.settings,
            now=now,
            actor=f"controller:{self.instance}",
            down_stations=self.down_stations,
            sku_cache=self.sku_cache,
        ), fresh

    async def _commit(self, batch: list[Inbound], lane: Lane | None = None) -> None:
        """One batch in one transaction (on ``lane``'s connection, else a pooled one)."""
        started = time.perf_counter()
        savepoints = False
        claim_late = True  # until a seen message turns up: then claim before handling
        while True:
            refusals: list[tuple[Inbound, str]] = []
            with collecting(timedelta(seconds=10)) as outbox_rows:
                try:
                    unit = lane.transaction() if lane else transaction(self.engine)
                    async with unit as conn:
                        keys = sorted({item.inbox_key for item in batch if item.inbox_key})
                        late = claim_late and not savepoints
                        ctx, fresh = await self._context(conn, keys, claim_late=late)
                        todo: list[Inbound] = []
                        for item in self._lock_order(batch):
                            key = item.inbox_key
                            if key is not None:
                                if key not in fresh:
                                    self.stats.duplicates += 1
                                    continue
                                fresh.discard(key)  # a repeat inside this batch is a duplicate too
                            todo.append(item)
                        runs = take_runs(ctx, todo) if not savepoints else {}
                        for n, item in enumerate(todo):
                            if n in runs:
                                await take_run(ctx, runs[n])
                            ctx.cause = getattr(item.payload, "msg_id", None)
                            if not savepoints:
                                await dispatch(ctx, item)
                                continue
                            error = await self._guarded(ctx, conn, item)
                            if error is not None:
                                refusals.append((item, error))
                        await ctx.flush()
                except _Retry:
                    savepoints = True
                    continue
                except LateClaimConflict:
                    claim_late = False
                    self.stats.late_claim_replays += 1
                    continue
                except WcsError as exc:
                    if savepoints:
                        raise
                    log.debug("batch replayed with savepoints: %s", exc)
                    savepoints = True
                    self.stats.retried_batches += 1
                    continue
                except Exception as exc:
                    if savepoints or _is_outage(exc):
                        raise
                    log.warning("batch replayed with savepoints after: %r", exc)
                    savepoints = True
                    self.stats.retried_batches += 1
                    continue
            break
        self.stats.batches += 1
        self.stats.applied += len(batch) - len(refusals)
        self.stats.batch_sizes.append(len(batch))
        committed = time.perf_counter()
        self.stats.commit_seconds += committed - started
        for item, error in refusals:
            self.stats.refused += 1
            self._dead_letter(item.topic, item.raw, error)
        # The effect is durable: acknowledge now. The batch's messages go out in commit
        # order, but the committer does not wait for the broker's PUBACKs before
        # taking its next batch (a row the broker never confirms stays unmarked and the
        # relay sends it after its deferral).
        self._ack_mqtt(batch)
        await self._send(outbox_rows.rows)
        self.stats.publish_seconds += time.perf_counter() - committed
        if self.on_committed is not None:
            self.on_committed(batch)

    def _lock_order(self, batch: list[Inbound]) -> list[Inbound]:
        """The batch by station (stable: each device keeps its own order).

        A batch locks the rows of every station it touches until it commits. Two
        controllers of a share group get events of the same stations, and taking
        them in different orders makes PostgreSQL break deadlocks - a second's wait
        (``deadlock_timeout``) and a retried batch each time. One order for all
        avoids the cycle. (Python compares code points: PostgreSQL's batched take sorts
        with ``COLLATE "C"`` to lock in the same order.)"""
        station_of = self.index.station_of

        def key(item: Inbound) -> str:
            station = station_of.get(item.info.device_id or "")
            return station.id if station is not None else f"~{item.info.device_id}"

        return sorted(batch, key=key)

    async def _guarded(self, ctx: BatchContext, conn: AsyncConnection, item: Inbound) -> str | None:
        savepoint = await conn.begin_nested()
        mark = ctx.mark()
        try:
            await dispatch(ctx, item)
        except WcsError as exc:
            await savepoint.rollback()
            ctx.rewind(mark)
            ctx.record("refused", ok=False, device_id=item.device_id, error=exc.message[:300])
            return exc.message
        except Exception as exc:
            if _is_outage(exc):
                raise
            await savepoint.rollback()
            ctx.rewind(mark)
            log.exception("event from %s failed", item.topic)
            ctx.record("failed", ok=False, device_id=item.device_id, error=repr(exc)[:300])
            return f"internal error while applying the event: {type(exc).__name__}"
        await savepoint.commit()
        return None

    async def _publish(self, rows: list[tuple[int, Any]]) -> None:
        """Send what was committed, in commit order, and wait for the broker's PUBACKs."""
        sending = self._start_sending(rows)
        if sending is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await sending

    async def _send(self, rows: list[tuple[int, Any]]) -> None:
        """Start sending; wait only while too many earlier batches are unconfirmed.

        Bounded, so a broker that stops confirming slows the committers down rather
        than letting unconfirmed messages pile up in memory."""
        sending = self._start_sending(rows)
        if sending is None:
            return
        self._sending.append(sending)
        while self._sending and (self._sending[0].done() or len(self._sending) > SENDING_MAX):
            with contextlib.suppress(aiomqtt.MqttError):
                await self._sending.popleft()

    def _start_sending(self, rows: list[tuple[int, Any]]) -> asyncio.Future[Any] | None:
        client = self._client
        if not rows or client is None:
            return None
        # Handed to the client now, so the messages of this batch go out before those
        # of any batch committed after it.
        sending = publish_all(client, [(m.topic, m.payload, m.qos, m.retain) for _, m in rows])
        ids = [row_id for row_id, _ in rows]

        def sent(future: asyncio.Future[Any]) -> None:
            if future.cancelled() or future.exception() is not None:
                return  # the relay sends them once their deferral ends
            self.stats.commands_sent += len(ids)
            self._published.extend(ids)

        sending.add_done_callback(sent)
        return sending

    async def _mark_published_loop(self) -> None:
        """Mark sent rows in one statement every 100 ms rather than once per batch.

        A row not yet marked when the process dies is sent again by the relay after its
        deferral: at least once, as everywhere on this broker."""
        while True:
            await asyncio.sleep(0.1)
            if not self._published:
                continue
            ids, self._published = self._published, []
            try:
                await mark_published(self.engine, ids)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database away: the relay will resend them
                log.warning("could not mark %d outbox rows as published: %s", len(ids), exc)

    # --- housekeeping: waves and idle stations -------------------------------------------

    def _log_stats(
        self, previous: tuple[int, int, float, float], span_s: float
    ) -> tuple[int, int, float, float]:
        s = self.stats
        now = (s.applied, s.batches, s.commit_seconds, s.publish_seconds)
        events, batches = now[0] - previous[0], now[1] - previous[1]
        if batches:
            log.info(
                "controller throughput",
                extra={
                    "events_per_s": round(events / span_s, 1),
                    "batch_mean": round(events / batches, 1),
                    "commit_ms_mean": round((now[2] - previous[2]) / batches * 1000, 2),
                    "publish_ms_mean": round((now[3] - previous[3]) / batches * 1000, 2),
                    "busy_pct": round(
                        (now[2] - previous[2] + now[3] - previous[3]) / span_s * 100, 1
                    ),
                    "queued": sum(q.qsize() for q in self._queues),
                },
            )
        return now

    async def _housekeeping_loop(self) -> None:
        last_log = time.monotonic()
        snapshot = (0, 0, 0.0, 0.0)
        while True:
            await asyncio.sleep(self.cfg.wave_interval_s)
            if time.monotonic() - last_log >= 10:
                snapshot = self._log_stats(snapshot, time.monotonic() - last_log)
                last_log = time.monotonic()
            try:
                await self.housekeeping_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("housekeeping failed: %s", exc)

    async def housekeeping_once(self) -> None:
        stations = [s.id for s in self.index.pick_stations()]
        if self.cfg.auto_release and stations:
            async with self.engine.connect() as conn:
                waiting = await conn.scalar(
                    select(func.count())
                    .select_from(orders)
                    .where(orders.c.state == OrderState.RESERVED)
                )
                queued = await conn.scalar(
                    select(func.count())
                    .select_from(pick_batches)
                    .where(pick_batches.c.state == "open")
                )
            if waiting and (queued or 0) < len(stations):
                with collecting() as rows:
                    await release_wave(
                        self.engine,
                        self.topics,
                        self.index.floor,
                        actor=f"controller:{self.instance}",
                    )
                await self._publish(rows.rows)
        idle = await pick.idle_stations(self.engine, stations)
        with collecting() as rows:
            async with transaction(self.engine) as conn:
                ctx, _ = await self._context(conn)
                await pick.resume_stalled(ctx)
                for station in idle:
                    await pick.activate_next(ctx, station)
                await ctx.flush()
        await self._publish(rows.rows)


class _Retry(Exception):
    pass


# Deadlock, serialization failure: the database gave up on the transaction, not on the
# event. Several controllers (or committers) locking the same rows in a different
# order meet them; the whole batch must be tried again, never dead-lettered.
_LOCK_CONFLICTS = frozenset({"40P01", "40001"})


def _is_outage(exc: BaseException) -> bool:
    """Not the event's fault: retry the whole batch later (database away or a lock
    conflict it resolved by aborting us)."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    from wcs.persistence.db import DatabaseUnavailable

    if isinstance(exc, DatabaseUnavailable | OperationalError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if getattr(exc.orig, "sqlstate", None) in _LOCK_CONFLICTS:
        return True
    return bool(getattr(exc, "connection_invalidated", False))


async def run(settings: Settings, floor_path: str | None) -> None:
    """``wcs controller``: run until SIGINT/SIGTERM, draining on the way out."""
    import signal
    from pathlib import Path

    from wcs.floor import load_floor
    from wcs.heap import settle

    floor = load_floor(Path(floor_path)) if floor_path else Floor(site=settings.site)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # A stable instance id keeps the same persistent MQTT session across restarts, so
    # events left unacknowledged by the previous run are redelivered to this one.
    async with Controller(settings, floor, instance=settings.controller.instance) as controller:
        settle()  # once started: start-up's objects stay out of full collections
        await stop.wait()
        log.info("controller stopping: draining queued events")
        await controller.drain()
