"""Live events for the status page: MQTT in, Server-Sent Events out.

    broker ──order/+/state, dev/+/status, alert/+──▶ LiveFeed ──▶ LiveHub ──▶ SSE clients
                                                        │                 ▲
                                 devices table ◀────────┘   LiveRefresher ┘ (summary, KPIs)

- ``LiveFeed`` subscribes with one aiomqtt client (TCP_NODELAY via ``make_client``),
  reconnecting with the system's backoff (``wcs.retry``). It handles each
  message as paho reads it (``handle_in_callback``): a feed that falls behind under
  load leaves the backlog at the broker rather than in this process's heap, where
  thousands of waiting messages made every full garbage collection a stall of
  hundreds of milliseconds for all requests. Device statuses are also written to the
  devices table (``record_device_status``, by a task of their own, in order), so
  ``GET /devices`` works without a controller. Retained order states are history,
  not news (a site keeps one per order ever made): over MQTT 5 the broker is asked
  not to send them, over 3.1.1 (the embedded broker) they are skipped on arrival.
  Order states are only news for a live client: the feed subscribes to them while
  at least one is connected. Taken for nobody, they cost each API worker three
  messages per order every worker took (a fifth of a worker's CPU at full intake).
- ``LiveHub`` fans events out through one bounded queue per client. Publishing never
  waits: a client whose queue is full is dropped (its stream ends; the browser's
  EventSource reconnects and gets a fresh summary), so one slow client never holds up
  the others or the feed.
- ``LiveRefresher`` pushes a summary (counts, open alerts, devices) every
  ``refresh_s`` and the KPIs every few rounds, and keeps the Prometheus gauges
  current; summaries also repair anything a dropped or duplicated message skewed.

``run_monitoring()`` runs all of it plus the alert evaluator for the app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from fastapi import FastAPI
from paho.mqtt.client import MQTTMessage
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from api.metrics import (
    LIVE_MESSAGES,
    NOTIFICATIONS_UNDELIVERED,
    OPEN_ALERTS,
    ORDERS_BY_STATE,
    SSE_CLIENTS,
    SSE_DROPPED,
)
from wcs.contract.payloads import (
    Alert,
    ControllerStatus,
    DeviceStatus,
    OrderStateChange,
    parse_payload,
)
from wcs.contract.topics import Topics
from wcs.domain.alert_rules import ALERT_CATALOGUE
from wcs.errors import ValidationFailed, WcsError
from wcs.floor import Floor
from wcs.ids import new_id
from wcs.mqtt.client import handle_in_callback, make_client
from wcs.notify.store import undelivered_counts
from wcs.persistence.db import OUTAGE_ERRORS, DatabaseUnavailable, reading, transaction
from wcs.retry import Backoff, Outage, Reconnect
from wcs.services.alerting import AlertEvaluator, open_alert_counts
from wcs.services.devices import record_device_status
from wcs.services.forecasting import NotEnoughHistory, forecast_plan
from wcs.services.kpis import orders_by_state, state_counts_with_zeros
from wcs.services.status_board import board
from wcs.settings import Settings
from wcs.tasks import background, every, first_leaf
from wcs.timeutil import rfc3339, utcnow

log = logging.getLogger(__name__)

KPI_EVERY_ROUNDS = 6
# Device statuses waiting for their database write; beyond it (the database is far
# behind) new ones are dropped: each device reports again.
STATUS_BACKLOG = 10_000
FORECAST_TTL = timedelta(minutes=10)
FORECAST_HOURS = 24


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return rfc3339(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_json(data: Any) -> str:
    return json.dumps(data, default=_json_default, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class LiveEvent:
    kind: str  # order, device, alert, summary, kpis
    data: dict[str, Any]

    def encode(self) -> str:
        return to_json(self.data)


class Subscriber:
    """One SSE client's queue; ``None`` in it means "your stream ends here"."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[LiveEvent | None] = asyncio.Queue(size)
        self.dropped = False

    async def next(self) -> LiveEvent | None:
        return await self.queue.get()


class LiveHub:
    def __init__(self, queue_size: int = 256) -> None:
        self._size = queue_size
        self._subscribers: set[Subscriber] = set()
        self.dropped = 0
        self.published = 0
        # Set when the first client arrives or the last one leaves.
        self.watchers_changed = asyncio.Event()

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> Subscriber:
        sub = Subscriber(self._size)
        self._subscribers.add(sub)
        SSE_CLIENTS.inc()
        if len(self._subscribers) == 1:
            self.watchers_changed.set()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        if sub in self._subscribers:
            self._subscribers.discard(sub)
            SSE_CLIENTS.dec()
            if not self._subscribers:
                self.watchers_changed.set()

    def publish(self, event: LiveEvent) -> None:
        """Hand ``event`` to every client now; never waits."""
        self.published += 1
        for sub in list(self._subscribers):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                self._end(sub, dropped=True)

    def close(self) -> None:
        for sub in list(self._subscribers):
            self._end(sub, dropped=False)

    def _end(self, sub: Subscriber, *, dropped: bool) -> None:
        self.unsubscribe(sub)
        if dropped:
            sub.dropped = True
            self.dropped += 1
            SSE_DROPPED.inc()
            log.info("dropped a live client that fell %d events behind", self._size)
        # Make room for the end marker: what it has not read is stale anyway.
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)


def order_event(change: OrderStateChange) -> LiveEvent:
    # No reason: it can quote a customer (cancel reasons, exception details).
    return LiveEvent(
        "order",
        {
            "order_id": change.order_id,
            "seq": change.seq,
            "from": change.from_,
            "to": change.to,
            "at": change.ts,
        },
    )


def device_event(device_id: str, status: DeviceStatus) -> LiveEvent:
    return LiveEvent(
        "device",
        {
            "id": device_id,
            "kind": status.kind,
            "zone": status.zone,
            "state": status.state,
            "detail": status.detail,
            "at": status.ts,
        },
    )


def alert_event(severity: str, alert: Alert) -> LiveEvent:
    spec = ALERT_CATALOGUE.get(alert.code)
    return LiveEvent(
        "alert",
        {
            "code": alert.code,
            "severity": severity,
            "title": spec.title if spec else alert.code.replace("_", " "),
            "subject": alert.subject,
            "at": alert.ts,
        },
    )


def controller_event(presence: ControllerStatus) -> LiveEvent:
    return LiveEvent(
        "controller",
        {"instance": presence.instance, "state": presence.state, "at": presence.ts},
    )


class LiveFeed:
    """The MQTT subscriber; ``async with`` runs it as the named task ``live-feed``."""

    def __init__(
        self, engine: AsyncEngine, settings: Settings, topics: Topics, hub: LiveHub
    ) -> None:
        self._engine = engine
        self._endpoint = settings.mqtt
        self._topics = topics
        self._hub = hub
        self._stack = contextlib.AsyncExitStack()
        self.connected = asyncio.Event()
        # Set while order states are subscribed (a live client watches).
        self.watching = asyncio.Event()
        self.received = 0
        self.invalid = 0
        self.dropped = 0
        self._protocol: Literal[3, 5] = 5
        self._db = Outage("live feed: recording device statuses", log)
        self._controllers: dict[str, ControllerStatus] = {}
        # Statuses read in paho's callback wait here for their database write, in order.
        self._statuses: asyncio.Queue[tuple[str, DeviceStatus]] = asyncio.Queue(STATUS_BACKLOG)

    def controllers(self) -> list[dict[str, Any]]:
        """Every controller heard of, by name: its last announced state and when."""
        return [controller_event(p).data for _, p in sorted(self._controllers.items())]

    async def __aenter__(self) -> LiveFeed:
        enter = self._stack.enter_async_context
        await enter(background("live-feed", self._run()))
        await enter(background("live-feed-statuses", self._write_statuses()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _run(self) -> None:
        # Many API processes must not reconnect in lockstep: the system's backoff.
        link = Reconnect(
            f"live feed -> broker {self._endpoint.host}:{self._endpoint.port}",
            log,
            Backoff(0.2, 10.0),
            expected=(aiomqtt.MqttError, OSError),
            on_failure=self._link_lost,
        )

        async def connection() -> None:
            try:
                await self._connection(link)
            except MqttConnectError as exc:
                if self._protocol == 3 or "protocol" not in str(exc).lower():
                    raise
                # A 3.1.1-only broker (the embedded one): retained order states then
                # arrive on every connect and are skipped one by one.
                log.info("broker does not speak MQTT 5; live feed uses 3.1.1")
                self._protocol = 3
                await self._connection(link)

        await link.run(connection)

    async def _connection(self, link: Reconnect) -> None:
        protocol = self._protocol
        client = make_client(self._endpoint, identifier=new_id("live-"), protocol=protocol)
        async with client:
            with handle_in_callback(client, self._take):
                await self._subscribe(client, protocol)
                watching = await self._follow_watchers(client, protocol, False)
                self.connected.set()
                link.up()
                try:
                    async with background(
                        "live-feed-watchers", self._keep_following(client, protocol, watching)
                    ):
                        # Messages are handled as they are read (see _take); this only
                        # waits for the connection to end.
                        async for _ in client.messages:
                            pass
                except BaseExceptionGroup as group:  # the connection's end, as it came
                    raise first_leaf(group) from None

    async def _subscribe(self, client: aiomqtt.Client, protocol: Literal[3, 5]) -> None:
        topics = self._topics
        # Retained statuses are wanted: they tell the device table where each device is.
        await client.subscribe(topics.all_statuses(), qos=1)
        await client.subscribe(topics.all_alerts(), qos=1)
        # Retained too: which controllers are online, and since when.
        await client.subscribe(topics.all_controller_statuses(), qos=1)

    async def _follow_watchers(
        self, client: aiomqtt.Client, protocol: Literal[3, 5], subscribed: bool
    ) -> bool:
        """Subscribe to order states if a client watches, unsubscribe once none does;
        returns whether subscribed now."""
        self._hub.watchers_changed.clear()
        topic = self._topics.all_order_states()
        if self._hub.clients and not subscribed:
            if protocol == 5:
                # Every order's last state is retained: history, not news. MQTT 5 lets
                # the broker skip them instead of sending one per order ever made.
                no_retained = SubscribeOptions(
                    qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND
                )
                await client.subscribe(topic, options=no_retained)
            else:
                await client.subscribe(topic, qos=1)
            self.watching.set()
            return True
        if not self._hub.clients and subscribed:
            self.watching.clear()
            await client.unsubscribe(topic)
            return False
        return subscribed

    def _link_lost(self, _: BaseException) -> None:
        self.connected.clear()
        self.watching.clear()

    async def order_states_flowing(self, within_s: float = 5.0) -> None:
        """Return once order states reach the hub (a client just subscribed to it), or
        after ``within_s`` when the broker is away: a stream reads its first snapshot
        after this, so no change falls between the snapshot and the events."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.watching.wait(), within_s)

    async def _keep_following(
        self, client: aiomqtt.Client, protocol: Literal[3, 5], subscribed: bool
    ) -> None:
        with contextlib.suppress(aiomqtt.MqttError):  # the connection's end is seen above
            while True:
                await self._hub.watchers_changed.wait()
                subscribed = await self._follow_watchers(client, protocol, subscribed)

    def _take(self, message: MQTTMessage) -> None:
        self.received += 1
        try:
            self.handle(message.topic, message.payload, message.retain)
        except Exception:  # a bug here must not end the broker connection
            log.exception("live feed could not handle a message on %s", message.topic)

    def handle(self, topic: str, payload: Any, retained: bool) -> None:
        raw = payload if isinstance(payload, bytes | str) else bytes(payload)
        try:
            info = self._topics.parse(topic)
            if info.kind == "order_state":
                if not retained:
                    self._hub.publish(order_event(parse_payload(OrderStateChange, raw)))
            elif info.kind == "status" and info.device_id is not None:
                status = parse_payload(DeviceStatus, raw)
                try:
                    self._statuses.put_nowait((info.device_id, status))
                except asyncio.QueueFull:
                    # The database is far behind; the device's next report comes anyway.
                    self.dropped += 1
                    LIVE_MESSAGES.labels(kind="dropped").inc()
                    return
            elif info.kind == "alert" and info.name is not None:
                self._hub.publish(alert_event(info.name, parse_payload(Alert, raw)))
            elif info.kind == "controller_status" and info.name is not None:
                if not raw:  # a cleared retained message: the instance is gone for good
                    self._controllers.pop(info.name, None)
                    return
                presence = parse_payload(ControllerStatus, raw)
                self._controllers[info.name] = presence
                self._hub.publish(controller_event(presence))
            else:
                return
            LIVE_MESSAGES.labels(kind=info.kind).inc()
        except ValidationFailed as exc:
            # Publishers' bad payloads go to dlq on their own path; here they are news
            # nobody can read, so count and skip.
            self.invalid += 1
            LIVE_MESSAGES.labels(kind="invalid").inc()
            log.debug("live feed skipped %s: %s", topic, exc)

    async def _write_statuses(self) -> None:
        while True:
            device_id, status = await self._statuses.get()
            if await self._record(device_id, status):
                self._hub.publish(device_event(device_id, status))

    async def _record(self, device_id: str, status: DeviceStatus) -> bool:
        """Write a status report; True when it is news. A database outage must not stop
        the live events: the page still hears of the device, the next report retries."""
        try:
            async with transaction(self._engine) as conn:
                changed = await record_device_status(
                    conn,
                    device_id,
                    status.kind,
                    status.zone,
                    status.state,
                    status.detail,
                    at=status.ts,
                )
        except (SQLAlchemyError, DatabaseUnavailable) as exc:
            self._db.failed(f"{exc}; still showing them live")
            return True
        self._db.ok()
        return changed


class LiveRefresher:
    """Periodic summaries and gauges; ``async with`` runs the task ``live-refresh``."""

    def __init__(
        self, engine: AsyncEngine, settings: Settings, hub: LiveHub, floor: Floor | None = None
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._hub = hub
        self._floor = floor
        # The live feed's controllers, set by run_monitoring (none heard of until then).
        self.controllers: Callable[[], list[dict[str, Any]]] = list
        self._interval = settings.monitoring.refresh_s
        self._stack = contextlib.AsyncExitStack()
        self._outage = Outage("live summary", log, expected=OUTAGE_ERRORS)
        self._rounds = 0
        self._forecast: tuple[datetime, dict[str, Any]] | None = None
        self._forecast_lock = asyncio.Lock()
        self._gauges_lock = asyncio.Lock()
        self._gauges_at = -math.inf

    async def __aenter__(self) -> LiveRefresher:
        await self._stack.enter_async_context(
            background("live-refresh", every(self._interval, self._refresh, self._outage))
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def summary(self, *, with_kpis: bool) -> dict[str, Any]:
        data = await board(
            self._engine,
            with_kpis=with_kpis,
            floor=self._floor,
            sla_margin=timedelta(minutes=self._settings.monitoring.sla_margin_min),
            planned_per_hour=await self.planned_per_hour(),
        )
        data["controllers"] = self.controllers()
        return data

    async def gauges(self) -> None:
        """Orders by state, open alerts and undelivered notifications for /metrics,
        read when scraped and at most once per refresh interval. (Read on a timer in
        every worker, scraped or not, they were a burst of table scans every few
        seconds: at a thousand orders a second on two cores, stalls of 50-100 ms.)"""
        async with self._gauges_lock:
            if time.monotonic() - self._gauges_at < self._interval:
                return
            async with reading(self._engine).connect() as conn:
                counts = state_counts_with_zeros(await orders_by_state(conn))
                alert_counts = await open_alert_counts(conn)
                undelivered = await undelivered_counts(conn)
            for state, n in counts.items():
                ORDERS_BY_STATE.labels(state=state).set(n)
            for severity, n in alert_counts.items():
                OPEN_ALERTS.labels(severity=severity).set(n)
            for state, n in undelivered.items():
                NOTIFICATIONS_UNDELIVERED.labels(state=state).set(n)
            self._gauges_at = time.monotonic()

    async def planned_per_hour(self) -> float | None:
        """The forecast's expected orders for the current hour, when a page asked for
        the forecast lately (summaries never compute one: it takes seconds)."""
        if self._forecast is None:
            return None
        outlook = self._forecast[1]
        points = outlook.get("points") or []
        if not outlook.get("available") or not points:
            return None
        return float(points[0]["expected"])

    async def forecast(self) -> dict[str, Any]:
        """The next day's forecast for the page, recomputed at most every 10 minutes."""
        async with self._forecast_lock:
            now = utcnow()
            if self._forecast is None or now - self._forecast[0] > FORECAST_TTL:
                try:
                    plan = await forecast_plan(
                        self._engine, self._settings.monitoring, FORECAST_HOURS
                    )
                    result: dict[str, Any] = {"available": True, **plan}
                except NotEnoughHistory as exc:
                    result = {
                        "available": False,
                        "reason": exc.message,
                        "have_hours": exc.have_hours,
                        "need_hours": exc.need_hours,
                    }
                except WcsError as exc:  # history it cannot fit
                    result = {"available": False, "reason": exc.message}
                self._forecast = (now, result)
            return self._forecast[1]

    async def _refresh(self) -> None:
        if not self._hub.clients:
            return  # nobody watches: no summary
        with_kpis = self._rounds % KPI_EVERY_ROUNDS == 0
        data = await self.summary(with_kpis=with_kpis)
        kpis = data.pop("kpis", None)
        self._hub.publish(LiveEvent("summary", data))
        if kpis is not None:
            self._hub.publish(LiveEvent("kpis", kpis))
        self._rounds += 1


@dataclass
class Monitoring:
    hub: LiveHub
    feed: LiveFeed
    refresher: LiveRefresher
    evaluator: AlertEvaluator


@contextlib.asynccontextmanager
async def run_monitoring(
    app: FastAPI, settings: Settings, engine: AsyncEngine
) -> AsyncIterator[Monitoring]:
    """Alert evaluation, the live feed and summaries for the app's lifespan
    (available to routes as ``app.state.monitoring``)."""
    topics: Topics = app.state.topics
    hub = LiveHub(settings.monitoring.sse_queue)

    def wake_relay() -> None:
        wake: Callable[[], None] = app.state.wake_relay
        wake()

    async with contextlib.AsyncExitStack() as stack:
        runtime = Monitoring(
            hub=hub,
            feed=await stack.enter_async_context(LiveFeed(engine, settings, topics, hub)),
            refresher=await stack.enter_async_context(
                LiveRefresher(engine, settings, hub, getattr(app.state, "floor", None))
            ),
            evaluator=await stack.enter_async_context(
                AlertEvaluator(engine, topics, settings, on_raised=wake_relay)
            ),
        )
        runtime.refresher.controllers = runtime.feed.controllers
        app.state.monitoring = runtime
        try:
            yield runtime
        finally:
            hub.close()
            app.state.monitoring = None
