"""The controller process: station leases, station sessions, group-committed decisions.

Each instance holds leases on a share of the floor's stations (``controller.leases``)
and, for each, its MQTT session (``controller.session``) and its state in memory
(``controller.edge``). Flow of one event::

    station session (QoS 1, manual ack) -> parse against the contract (bad -> dlq)
      -> committer queue (a station always goes to the same committer: in order)
      -> micro-batch: one transaction for all its events
           fence: every station of the batch still ours (its lease epoch)
           inbox claim per msg_id (a msg_id seen before is skipped: one effect)
           the station's decide; the unit writes the effects in few statements
      -> commit -> state kept -> PUBACKs -> commands out on the station's session

A station's events are acknowledged only after their effect committed, on a session
named after the station, so a crash, a failover or a hand-over means redelivery to
the next owner, never loss. Requests from the API (cancel, QC verdicts, wave release)
are rows the owning station applies in the same order as its device events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiomqtt
from paho.mqtt.client import MQTTMessage
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from controller import presence, reads
from controller.allocation import Allocator
from controller.edge import Edge, Inbound, Owned
from controller.lane import Lane
from controller.leases import Leases
from controller.session import StationSession, instance_client_id, session_id
from controller.stations import FLOOR, StationSpec, plan_floor
from controller.store import LostStations, Outgoing, Unit
from wcs.contract.payloads import Ack, DeviceStatus, dlq_for, parse_event, parse_payload
from wcs.contract.topics import Topics
from wcs.domain.floor import pick
from wcs.domain.states import OrderState
from wcs.errors import ConfigError, ValidationFailed, WcsError
from wcs.floor import Floor
from wcs.mqtt.client import make_client, publish_all
from wcs.persistence.db import make_engine, reading
from wcs.persistence.notices import can_listen, listen
from wcs.persistence.outbox import OutboxRelay, collecting, mark_published
from wcs.persistence.tables import (
    floor_requests,
    orders,
    pick_batches,
)
from wcs.persistence.vacuum import Vacuuming
from wcs.retry import Backoff, Outage, Reconnect
from wcs.services.floor_requests import CHANNEL as REQUESTS_CHANNEL
from wcs.services.shipments import CarrierDesk
from wcs.services.waves import release_wave
from wcs.settings import Settings
from wcs.tasks import background, every
from wcs.timeutil import utcnow

log = logging.getLogger(__name__)

# Batches whose messages the broker has not confirmed yet, across all committers.
SENDING_MAX = 16
# Without notifications (SQLite) requests are looked for this often.
SQLITE_REQUEST_POLL_S = 0.1


@dataclass
class ControllerStats:
    received: int = 0
    applied: int = 0
    duplicates: int = 0
    refused: int = 0
    dlq: int = 0
    batches: int = 0
    retried_batches: int = 0
    commit_errors: int = 0
    fenced: int = 0  # batches refused because a station's lease had moved on
    commands_sent: int = 0
    left_to_redeliver: int = 0  # arrived while leaving: not acknowledged, come back later
    taken: int = 0  # stations taken over
    released: int = 0  # stations handed over
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
    ) -> None:
        self.settings = settings
        self.cfg = settings.controller
        self.plan = plan_floor(floor)
        self.edge = Edge(settings, self.plan)
        self.topics = Topics(settings.site)
        self.instance = instance or settings.controller.instance
        self.actor = f"controller:{self.instance}"
        self._own_engine = engine is None
        self.engine = engine or make_engine(settings.database_url, pool_size=10, pre_ping=False)
        self._run_relay = run_relay
        self._housekeeping = housekeeping
        self.stats = ControllerStats()
        self.owned: dict[str, Owned] = {}
        self._queues: list[asyncio.Queue[Inbound]] = [
            asyncio.Queue() for _ in range(self.cfg.committers)
        ]
        self._lanes: list[Lane] = []
        self._stack = contextlib.AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: aiomqtt.Client | None = None  # for dead letters and order messages
        self._stopping = False
        self._in_batch = 0
        self._published: list[int] = []
        self._sending: deque[asyncio.Future[Any]] = deque()
        self._requests: set[str] = set()  # request ids queued, not committed yet
        self._request_bell = asyncio.Event()  # a request was written: look now
        self._ticking: set[str] = set()  # stations with an idle tick queued
        self._changing = asyncio.Lock()  # takes and hand-overs, one at a time
        self.leases = Leases(self.engine, self.instance, timedelta(seconds=self.cfg.lease_ttl_s))
        self._lease_round_done = asyncio.Event()
        self._client_up = asyncio.Event()
        self.allocator: Allocator | None = None
        self._last_log = time.monotonic()
        self._next_floor_counts = 0.0
        self._snapshot: tuple[int, int, float, float] = (0, 0, 0.0, 0.0)

    # --- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Controller:
        try:
            await self.leases.register(self.plan.specs.values())
        except Exception:
            if self._own_engine:
                await self.engine.dispose()
            raise
        enter = self._stack.enter_async_context

        async def spawn(name: str, coro: Any) -> None:
            self._tasks.append(await enter(background(name, coro)))

        def outage(what: str) -> Outage:
            return Outage(f"controller {self.instance} {what}", log)

        if self._run_relay:
            await enter(OutboxRelay(self.engine, self.settings.mqtt))
        await enter(Vacuuming(self.engine, self.settings.vacuum))
        await spawn("controller-client", self._client_loop())
        await spawn(
            "controller-outbox-marker", every(0.1, self._mark_published, outage("outbox marks"))
        )
        for n, queue in enumerate(self._queues):
            await spawn(f"controller-committer-{n}", self._committer(queue))
        await spawn(
            "controller-leases",
            every(self.cfg.lease_interval_s, self._lease_tick, outage("leases")),
        )
        poll_s = self.cfg.request_poll_s
        if can_listen(self.engine):
            await spawn("controller-request-bell", self._request_notices())
        else:
            poll_s = min(poll_s, SQLITE_REQUEST_POLL_S)
        await spawn(
            "controller-requests",
            every(poll_s, self._request_round, outage("requests"), wake=self._request_bell),
        )
        if self._housekeeping:
            await spawn(
                "controller-housekeeping",
                every(
                    self.cfg.wave_interval_s,
                    self._housekeeping_round,
                    outage("housekeeping"),
                    wait_first=True,
                ),
            )
            desk = await enter(CarrierDesk.from_settings(self.settings))
            self.allocator = Allocator(
                self.engine,
                self.topics,
                desk,
                actor=self.actor,
                interval_s=self.cfg.allocate_interval_s,
                floor=self.plan.floor,  # the carrier's label is printed once booked
            )
            await spawn("controller-allocation", self.allocator.run())
        try:
            async with asyncio.timeout(15):
                await self._client_up.wait()  # the broker answers at all
        except TimeoutError:
            await self.__aexit__(None, None, None)
            raise ConfigError(
                f"controller cannot reach the MQTT broker at {self.settings.mqtt.host}:"
                f"{self.settings.mqtt.port}; start it or fix WCS_MQTT_URL"
            ) from None
        # Ready once its first share of stations listens: a session the broker has never
        # seen holds nothing yet, so what devices send before it subscribed is lost.
        try:
            async with asyncio.timeout(60):
                await self._lease_round_done.wait()
                for owned in list(self.owned.values()):
                    if owned.session is not None:
                        await owned.session.connected.wait()
        except TimeoutError:
            waiting = [
                o.id
                for o in self.owned.values()
                if not o.session or not o.session.connected.is_set()
            ]
            log.warning(
                "controller %s: stations still connecting: %s", self.instance, ", ".join(waiting)
            )
        log.info(
            "controller %s running for site %s with %d of %d stations",
            self.instance,
            self.settings.site,
            len(self.owned),
            len(self.plan.specs),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stopping = True
        if self._client is not None:
            await presence.announce(self._client, self.topics, self.instance, "offline")
        for owned in list(self.owned.values()):
            await self._hand_over(owned, wait=False)
        with contextlib.suppress(Exception):
            await self.leases.leave()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await self._stack.aclose()
        # Confirmations still awaited will not be: the relay sends those rows again.
        for sending in self._sending:
            sending.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
        self._sending.clear()
        for lane in self._lanes:
            await lane.close()
        if self._own_engine:
            await self.engine.dispose()

    async def wait(self) -> None:
        """Until cancelled (signals are handled by the caller)."""
        await asyncio.Event().wait()

    async def drain(self, limit_s: float = 10.0) -> bool:
        """Stop taking messages and let the queued ones commit (graceful SIGTERM);
        True if all of them did within ``limit_s``. What does not commit stays
        unacknowledged in its station's session for the next owner."""
        self._stopping = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit_s):
                while not self.idle():  # noqa: ASYNC110 - see _hand_over
                    await asyncio.sleep(0.02)
                while self._sending:
                    with contextlib.suppress(aiomqtt.MqttError):
                        await self._sending.popleft()
                return True
        return False

    def client_id(self) -> str:
        """The instance's own (clean) MQTT connection, for dead letters and order messages."""
        return instance_client_id(self.settings.site, self.instance)

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

    # --- leases ----------------------------------------------------------------------

    async def _lease_tick(self) -> None:
        """One lease round; when the database cannot be reached, a station whose lease
        ran out meanwhile is let go (its new owner may be taking it)."""
        try:
            await self._lease_round()
        except Exception:
            await self._drop_expired()
            raise
        finally:
            self._lease_round_done.set()

    async def _lease_round(self) -> None:
        """Renew what we hold, learn what we lost, take or hand over toward a fair share."""
        started = time.monotonic()
        live, renewed = await self.leases.renew(list(self.owned))
        until = started + self.cfg.lease_ttl_s - self.cfg.lease_interval_s
        for owned in list(self.owned.values()):
            if renewed.get(owned.id) == owned.epoch:
                owned.lease_until = until
            else:
                log.warning("station %s was taken over by another instance", owned.id)
                await self._drop(owned)
        if self._stopping:
            return
        total = len(self.plan.specs)
        target = math.ceil(total / max(live, 1))
        held = [o for o in self.owned.values() if not o.leaving]
        if len(held) > target:
            # Hand over the surplus (the floor last), so a newcomer gets its share.
            surplus = sorted(held, key=lambda o: (o.id == FLOOR, o.id), reverse=False)[
                : len(held) - target
            ]
            for owned in surplus:
                await self._hand_over(owned, wait=True)
            return
        if len(held) < target:
            await self._take_free(target - len(held))

    async def _take_free(self, wanted: int) -> None:
        started = time.monotonic()
        among = [sid for sid in self.plan.specs if sid not in self.owned]
        taken = [
            (self.plan.specs[sid], epoch)
            for sid, epoch in await self.leases.take_free(among, wanted)
        ]
        until = started + self.cfg.lease_ttl_s - self.cfg.lease_interval_s
        # Loaded side by side (a few at a time): a large floor taken one by one would
        # outlast its own leases before their first renewal.
        gate = asyncio.Semaphore(8)

        async def take(spec: StationSpec, epoch: int) -> None:
            async with gate:
                try:
                    await self._take(spec, epoch, until)
                except Exception as exc:
                    log.warning("could not take station %s over (%s); giving it back", spec.id, exc)
                    with contextlib.suppress(Exception):
                        await self.leases.release(spec.id, epoch)

        await asyncio.gather(*(take(spec, epoch) for spec, epoch in taken))

    async def _take(self, spec: StationSpec, epoch: int, until: float) -> None:
        """Load the station's state, then open its session: what the session holds (events
        of the time nobody owned it) is applied on top of the committed state."""
        committer = zlib.crc32(spec.id.encode()) % len(self._queues)
        owned = Owned(spec, epoch, None, committer, lease_until=until)
        async with reading(self.engine).connect() as conn:
            owned.state, owned.pending = await self._load(
                Unit(conn, self.topics, self.actor, utcnow()), spec
            )
            await conn.rollback()
        self.owned[spec.id] = owned
        session = StationSession(
            self.settings.mqtt,
            self.topics,
            spec.id,
            self._subscriptions(spec),
            lambda message, generation: self._on_message(owned, message, generation),
            allowed=lambda: self._holds(owned),
            on_connect=lambda: self._resume(owned),
        )
        owned.session = session
        await session.__aenter__()
        self.stats.taken += 1
        log.info("station %s taken over (epoch %d)", spec.id, epoch)
        if isinstance(owned.state, pick.PickStation) and owned.state.batch is None:
            self._tick(owned)

    async def _load(
        self, unit: Unit, spec: StationSpec
    ) -> tuple[Any, dict[str, tuple[str, str, str | None]]]:
        """The station's committed state and its logged commands awaiting an ack."""
        state = await self.edge.load(unit, spec)
        watched = (*spec.devices, *spec.borrowed)
        if not watched:
            return state, {}
        since = utcnow() - timedelta(hours=1)
        return state, await reads.pending_commands(unit.conn, watched, since)

    def _resume(self, owned: Owned) -> None:
        """The station's session is (back) up: what its devices should show, again."""
        if self.owned.get(owned.id) is owned and not owned.leaving:
            event = self.edge.resume(owned.state)
            if event is not None:
                self._tick(owned, event)

    def _subscriptions(self, spec: StationSpec) -> list[tuple[str, int]]:
        root = self.topics.root
        subs: list[tuple[str, int]] = []
        for device in spec.devices:
            subs += [
                (f"{root}/dev/{device}/evt/+", 1),
                (f"{root}/dev/{device}/status", 1),
                (f"{root}/dev/{device}/ack", 1),
            ]
        for device in spec.borrowed:
            subs += [(f"{root}/dev/{device}/status", 1), (f"{root}/dev/{device}/ack", 1)]
        if spec.kind == "floor":
            # Devices not on the floor file have no station: the floor hears them (at
            # QoS 0, every other copy is ignored) to dead-letter what they send.
            subs += [(f"{root}/dev/+/evt/+", 0), (f"{root}/dev/+/ack", 0)]
        return subs

    def _holds(self, owned: Owned) -> bool:
        return (
            self.owned.get(owned.id) is owned
            and not owned.leaving
            and time.monotonic() < owned.lease_until
        )

    async def _drop_expired(self) -> None:
        for owned in list(self.owned.values()):
            if time.monotonic() >= owned.lease_until:
                log.warning("lease of station %s ran out without renewal: letting it go", owned.id)
                await self._drop(owned)

    async def _drop(self, owned: Owned) -> None:
        """The station is no longer ours: forget it at once (its session's unacknowledged
        messages go to the next owner)."""
        if self.owned.get(owned.id) is owned:
            del self.owned[owned.id]
        owned.leaving = True
        if owned.session is not None:
            with contextlib.suppress(Exception):
                await owned.session.__aexit__(None, None, None)

    async def _hand_over(self, owned: Owned, *, wait: bool) -> None:
        """Give a station back: take no more of its messages, let its batch commit,
        close its session (kept at the broker), clear the lease for the next owner."""
        owned.leaving = True
        if wait:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    # Counters change in callbacks and committers; a 10 ms look is cheaper
                    # than an event per change.
                    while owned.in_flight > 0:  # noqa: ASYNC110
                        await asyncio.sleep(0.01)
        await self._drop(owned)
        with contextlib.suppress(Exception):
            await self.leases.release(owned.id, owned.epoch)
        self.stats.released += 1
        log.info("station %s handed over", owned.id)

    # --- MQTT in ---------------------------------------------------------------------

    def _on_message(self, owned: Owned, message: MQTTMessage, generation: int) -> None:
        """Parse and queue one message (in paho's callback: never blocks)."""
        topic = message.topic
        raw = bytes(message.payload)
        session = owned.session
        if message.qos == 0:
            # The floor's watch for devices that are not on the floor: every other copy
            # is its own station's to handle.
            parts = topic.split("/")
            if len(parts) > 4 and parts[4] in self.plan.owner_of:
                return
        try:
            info = self.topics.parse(topic)
            device = info.device_id
            self.stats.received += 1
            if info.kind == "evt":
                payload: Any = parse_event(info.name or "", raw)
            elif info.kind == "status":
                payload = parse_payload(DeviceStatus, raw)
            elif info.kind == "ack":
                payload = parse_payload(Ack, raw)
            else:
                raise ValidationFailed(f"controller does not consume {info.kind} topics")
            if device is None or device not in self.plan.owner_of:
                raise ValidationFailed(f"device {device!r} is not on this floor")
        except ValidationFailed as exc:
            self._dead_letter(topic, raw, exc.message)
            if session is not None and message.qos:
                session.ack(message.mid, generation)
            return
        if self._stopping or owned.leaving or self.owned.get(owned.id) is not owned:
            self.stats.left_to_redeliver += 1  # not acknowledged: the next owner gets it
            return
        item = Inbound(
            owned.id,
            info.kind,
            device,
            payload,
            topic,
            raw,
            message.mid,
            generation,
            time.perf_counter(),
        )
        owned.in_flight += 1
        self._queues[owned.committer].put_nowait(item)

    def _dead_letter(self, topic: str, raw: bytes, error: str) -> None:
        self.stats.dlq += 1
        log.warning("dead letter from %s: %s", topic, error)
        client = self._client
        if client is None:
            return
        payload = dlq_for(topic, raw, error).to_json()
        future = publish_all(client, [(self.topics.dlq(), payload, 1, False)])
        future.add_done_callback(lambda f: f.exception())

    async def _client_loop(self) -> None:
        link = Reconnect(f"controller {self.instance} -> broker", log, Backoff(0.2, 5.0))

        async def session() -> None:
            client = make_client(
                self.settings.mqtt,
                identifier=self.client_id(),
                will=presence.will(self.topics, self.instance),
            )
            async with client:
                self._client = client
                self._client_up.set()
                link.up()
                # The floor sees the controller (drivers show "controller offline" on the
                # panels while none is online): said on every connection, the Will says
                # the opposite when the connection dies.
                await presence.announce(client, self.topics, self.instance, "online")
                try:
                    async for _ in client.messages:
                        pass
                finally:
                    self._client = None

        await link.run(session)

    # --- requests and ticks ------------------------------------------------------------

    async def _request_notices(self) -> None:
        """Wake the request round as each request is written (PostgreSQL's notifications),
        rather than looking ten times a second: that look was a fifth of an idle
        controller's CPU. On every (re)connection the round looks once, for what was
        written while nobody listened."""
        link = Reconnect(
            f"controller {self.instance} request notices -> database", log, Backoff(0.2, 5.0)
        )
        bell = self._request_bell

        def listening() -> None:
            link.up()
            bell.set()

        await link.run(lambda: listen(self.engine, REQUESTS_CHANNEL, bell.set, listening))

    async def _request_round(self) -> None:
        """Queue the pending requests for the stations held here, in their order."""
        held = [sid for sid, o in self.owned.items() if not o.leaving]
        if not held or self._stopping:
            return
        async with reading(self.engine).connect() as conn:
            rows = (
                await conn.execute(
                    select(floor_requests)
                    .where(
                        and_(
                            floor_requests.c.station.in_(held), floor_requests.c.state == "pending"
                        )
                    )
                    .order_by(floor_requests.c.created_at, floor_requests.c.id)
                    .limit(100)
                )
            ).all()
        for row in rows:
            owned = self.owned.get(row.station)
            if owned is None or owned.leaving or row.id in self._requests:
                continue
            self._requests.add(row.id)
            owned.in_flight += 1
            self._queues[owned.committer].put_nowait(Inbound(owned.id, "request", None, row))

    def _tick(self, owned: Owned, event: Any = None) -> asyncio.Future[Any]:
        """Queue a decision of the controller's own (an idle station looks for work)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if event is None:
            if owned.id in self._ticking:  # one idle look at a time is enough
                future.set_result(None)
                return future
            self._ticking.add(owned.id)
        owned.in_flight += 1
        self._queues[owned.committer].put_nowait(
            Inbound(owned.id, "tick", None, event or pick.Idle(), done=future)
        )
        return future

    async def _housekeeping_round(self) -> None:
        now = time.monotonic()
        if now - self._last_log >= 10:
            self._snapshot = self._log_stats(self._snapshot, now - self._last_log)
            self._last_log = now
        try:
            await self._release_if_due()
            await self._floor_counts_if_due()
        finally:
            for owned in list(self.owned.values()):
                if (
                    isinstance(owned.state, pick.PickStation)
                    and owned.state.batch is None
                    and not owned.leaving
                ):
                    self._tick(owned)

    async def housekeeping_once(self) -> None:
        """One round now: the floor releases a wave if one is due, idle stations look
        for their next batch (and this waits until they have)."""
        await self._release_if_due()
        await self._floor_counts_if_due(now=True)
        waits = [
            self._tick(o, pick.Idle())
            for o in list(self.owned.values())
            if isinstance(o.state, pick.PickStation) and not o.leaving and o.state.batch is None
        ]
        if waits:
            await asyncio.gather(*waits)

    async def _floor_counts_if_due(self, *, now: bool = False) -> None:
        """The floor's owner opens the scheduled counts of the piles no pick station
        counts (reserve): a stock controller counts them over the API."""
        if FLOOR not in self.owned:
            return
        clock = time.monotonic()
        if not now and clock < self._next_floor_counts:
            return
        self._next_floor_counts = clock + self.edge.stock.schedule_every_s
        async with self.engine.begin() as conn:
            opened = await self.edge.stock.schedule_floor(conn, utcnow(), self.actor)
        if opened:
            log.info("floor: %d scheduled counts opened", len(opened))

    async def _release_if_due(self) -> None:
        """The floor's owner releases reserved orders while pick stations lack work."""
        if FLOOR not in self.owned or not self.cfg.auto_release:
            return
        pick_stations = [s.id for s in self.plan.specs.values() if s.kind == "pick"]
        if not pick_stations:
            return
        async with reading(self.engine).connect() as conn:
            waiting = await conn.scalar(
                select(func.count())
                .select_from(orders)
                .where(orders.c.state == OrderState.RESERVED)
            )
            queued = await conn.scalar(
                select(func.count()).select_from(pick_batches).where(pick_batches.c.state == "open")
            )
        if not waiting or (queued or 0) >= len(pick_stations):
            return
        with collecting() as rows:
            await release_wave(self.engine, self.topics, self.plan.floor, actor=self.actor)
        await self._publish_rows(rows.rows)

    # --- group commit ----------------------------------------------------------------

    async def _committer(self, queue: asyncio.Queue[Inbound]) -> None:
        lane = Lane(self.engine)
        self._lanes.append(lane)
        while True:
            batch = [await queue.get()]
            if queue.empty() and self.cfg.batch_wait_ms > 0:
                # A lone event waits for company: fewer, fuller transactions for
                # the price of this wait in its latency.
                await asyncio.sleep(self.cfg.batch_wait_ms / 1000)
            while len(batch) < self.cfg.batch_max and not queue.empty():
                batch.append(queue.get_nowait())
            self._in_batch += 1
            try:
                await self._commit_with_retry(batch, lane)
            finally:
                self._in_batch -= 1
                for item in batch:
                    queue.task_done()
                    owned = self.owned.get(item.station)
                    if owned is not None:
                        owned.in_flight = max(0, owned.in_flight - 1)
                    if item.kind == "request":
                        self._requests.discard(item.payload.id)
                    elif item.kind == "tick":
                        if isinstance(item.payload, pick.Idle):
                            self._ticking.discard(item.station)
                        if item.done is not None and not item.done.done():
                            item.done.set_result(None)

    async def _commit_with_retry(self, batch: list[Inbound], lane: Lane) -> None:
        backoff = Backoff(0.1, 5.0)
        failures = 0
        while batch:
            batch = [i for i in batch if self._mine(i)]
            if not batch:
                return
            try:
                await self._commit(batch, lane)
                return
            except asyncio.CancelledError:
                raise
            except LostStations as exc:
                self.stats.fenced += 1
                for station in exc.lost:
                    owned = self.owned.get(station)
                    if owned is not None:
                        log.warning(
                            "station %s: lease moved on; its batch is not committed", station
                        )
                        await self._drop(owned)
            except Exception as exc:  # database away: keep the batch, try again
                # It may have committed all the same (the answer to COMMIT lost with
                # the connection): its stations' memory is not to be trusted now.
                for item in batch:
                    if (owned := self.owned.get(item.station)) is not None:
                        owned.doubtful = True
                failures += 1
                self.stats.commit_errors += 1
                delay = backoff.delay(failures)
                log.warning(
                    "batch of %d not committed (%s); retrying in %.1fs", len(batch), exc, delay
                )
                await asyncio.sleep(delay)

    def _mine(self, item: Inbound) -> bool:
        owned = self.owned.get(item.station)
        return owned is not None and (not owned.leaving or item.kind in ("evt", "status", "ack"))

    async def _commit(self, batch: list[Inbound], lane: Lane) -> None:
        """One batch in one transaction; replayed one event per savepoint if one fails."""
        started = time.perf_counter()
        savepoints = False
        while True:
            try:
                done = await self._transaction(batch, lane, savepoints=savepoints)
                break
            except (LostStations, asyncio.CancelledError):
                raise
            except Exception as exc:
                if savepoints or _is_outage(exc):
                    raise
                log.warning("batch replayed with savepoints after: %r", exc)
                savepoints = True
                self.stats.retried_batches += 1
        unit, working, refusals, outbox_rows = done
        committed = time.perf_counter()
        self.stats.batches += 1
        self.stats.applied += len(batch) - len(refusals)
        self.stats.batch_sizes.append(len(batch))
        self.stats.commit_seconds += committed - started
        for station, state in working.items():
            owned = self.owned.get(station)
            if owned is not None:
                owned.state = state
                if owned.doubtful:
                    # Commands of a batch that committed unanswered were never sent:
                    # the devices are shown the state they should show.
                    owned.doubtful = False
                    self._resume(owned)
        for out in unit_logged(unit):
            owned = self.owned.get(out.station)
            if owned is not None:
                owned.pending[out.cmd_id] = (out.topic.split("/")[4], out.name, out.subject)
        for station, cmd_id in unit.acked:
            owned = self.owned.get(station)
            if owned is not None:
                owned.pending.pop(cmd_id, None)
        for item, error in refusals:
            self.stats.refused += 1
            self._dead_letter(item.topic, item.raw, error)
        for topic, raw, reason in unit.dead_letters:
            self._dead_letter(topic, raw, reason)
        # Durable now: acknowledge, then send in commit order without waiting for the
        # broker's confirmations before the next batch (bounded by SENDING_MAX).
        for item in batch:
            if item.kind in ("evt", "status", "ack"):
                owned = self.owned.get(item.station)
                if owned is not None and owned.session is not None:
                    owned.session.ack(item.mid, item.generation)
        await self._send(unit.outgoing, outbox_rows)
        self.stats.publish_seconds += time.perf_counter() - committed

    async def _transaction(
        self, batch: list[Inbound], lane: Lane, *, savepoints: bool
    ) -> tuple[Unit, dict[str, Any], list[tuple[Inbound, str]], list[tuple[int, Any]]]:
        refusals: list[tuple[Inbound, str]] = []
        with collecting(timedelta(seconds=10)) as outbox_rows:
            async with lane.transaction() as db:
                conn = db.conn
                unit = Unit(conn, self.topics, self.actor, utcnow(), direct=db)
                held = {i.station: self.owned[i.station].epoch for i in batch}
                keys = [k for k in dict.fromkeys(i.inbox_key for i in batch) if k]
                fresh = await unit.claim(keys, held, self.instance)
                working: dict[str, Any] = {st: self.owned[st].state for st in held}
                for st in held:
                    if (owned := self.owned[st]).doubtful:
                        # What the database holds is what happened: a repeat of an
                        # event that did commit is a duplicate now, and is skipped.
                        working[st], owned.pending = await self._load(unit, owned.spec)
                for item in batch:
                    key = item.inbox_key
                    if key is not None:
                        if key not in fresh:
                            self.stats.duplicates += 1
                            continue
                        fresh.discard(key)  # a repeat inside this batch is a duplicate too
                    owned = self.owned[item.station]
                    if not savepoints:
                        working[item.station], _ = await self.edge.apply(
                            unit, owned, working[item.station], item
                        )
                        continue
                    await unit.flush()
                    savepoint = await conn.begin_nested()
                    mark = unit.mark()
                    try:
                        working[item.station], _ = await self.edge.apply(
                            unit, owned, working[item.station], item
                        )
                        await unit.flush()
                    except WcsError as exc:
                        await savepoint.rollback()
                        unit.rewind(mark)
                        unit.record_refusal("refused", item, exc.message)
                        refusals.append((item, exc.message))
                        continue
                    except Exception as exc:
                        if _is_outage(exc):
                            raise
                        await savepoint.rollback()
                        unit.rewind(mark)
                        log.exception("event from %s failed", item.topic)
                        unit.record_refusal("failed", item, repr(exc))
                        refusals.append(
                            (item, f"internal error while applying the event: {type(exc).__name__}")
                        )
                        continue
                    await savepoint.commit()
                await unit.finish()
        return unit, working, refusals, outbox_rows.rows

    # --- MQTT out --------------------------------------------------------------------

    async def _send(self, outgoing: Sequence[Outgoing], rows: list[tuple[int, Any]]) -> None:
        """Start sending; wait only while too many earlier batches are unconfirmed."""
        by_station: dict[str, list[tuple[str, bytes, int, bool]]] = {}
        for out in outgoing:
            by_station.setdefault(out.station, []).append((out.topic, out.payload, 1, False))
        for station, messages in by_station.items():
            owned = self.owned.get(station)
            future = (
                owned.session.send(messages)
                if owned is not None and owned.session is not None
                else None
            )
            if future is not None:
                self.stats.commands_sent += len(messages)
                self._track(future)
        if rows:
            future = self._start_rows(rows)
            if future is not None:
                self._track(future)
        while self._sending and (self._sending[0].done() or len(self._sending) > SENDING_MAX):
            with contextlib.suppress(aiomqtt.MqttError):
                await self._sending.popleft()

    def _track(self, future: asyncio.Future[Any]) -> None:
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._sending.append(future)

    def _start_rows(self, rows: list[tuple[int, Any]]) -> asyncio.Future[Any] | None:
        client = self._client
        if not rows or client is None:
            return None  # the relay sends them once their deferral ends
        try:
            future = publish_all(client, [(m.topic, m.payload, m.qos, m.retain) for _, m in rows])
        except aiomqtt.MqttError:
            return None
        ids = [row_id for row_id, _ in rows]

        def sent(f: asyncio.Future[Any]) -> None:
            if not f.cancelled() and f.exception() is None:
                self._published.extend(ids)

        future.add_done_callback(sent)
        return future

    async def _publish_rows(self, rows: list[tuple[int, Any]]) -> None:
        future = self._start_rows(rows)
        if future is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await future

    async def _mark_published(self) -> None:
        """Mark sent rows in one statement every 100 ms rather than once per batch (a row
        left unmarked is sent again by the relay after its deferral: at least once)."""
        if not self._published:
            return
        ids, self._published = self._published, []
        await mark_published(self.engine, ids)

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
                    "stations": len(self.owned),
                    "queued": sum(q.qsize() for q in self._queues),
                },
            )
        return now


def unit_logged(unit: Unit) -> list[Outgoing]:
    from controller.store import LOGGED_COMMANDS

    return [o for o in unit.outgoing if o.name in LOGGED_COMMANDS]


# Deadlock, serialization failure: the database gave up on the transaction, not on the
# event; the whole batch is tried again, never dead-lettered.
_LOCK_CONFLICTS = frozenset({"40P01", "40001"})


def _is_outage(exc: BaseException) -> bool:
    """Not the event's fault: retry the whole batch later."""
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
    """``wcs controller``: run until SIGINT/SIGTERM, draining and handing over on the way out."""
    import signal
    from pathlib import Path

    from wcs.floor import load_floor
    from wcs.heap import settle

    floor = load_floor(Path(floor_path)) if floor_path else Floor(site=settings.site)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Controller(settings, floor, instance=settings.controller.instance) as controller:
        settle()  # once started: start-up's objects stay out of full collections
        await stop.wait()
        log.info("controller stopping: draining queued events, handing stations over")
        await controller.drain()


__all__ = ["Controller", "ControllerStats", "run", "session_id"]
