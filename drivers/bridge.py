"""One driver's side of the broker: retained status, Last Will, events, commands, acks.

Each driver holds its own MQTT connection because the Last Will is per connection
and the contract announces a dead driver as ``dev/{id}/status = offline``.

- Events, acks and dead letters go through a bounded :class:`~drivers.outbox.Outbox`
  and are published with QoS 1, at most ``inflight_window`` unacknowledged at a time
  (so paho's own queue never holds more than that window). They survive broker
  outages and reconnects, in order.
- The status is latest-wins: only the current one is published (retained) on every
  (re)connect and on every change.
- Commands are validated against the contract; a bad one goes to ``dlq`` and changes
  nothing, a repeated ``cmd_id`` is acked again with the first answer, never re-run.
- Reconnects follow the system's one policy (:class:`wcs.retry.Reconnect`); a fresh
  client per connection keeps paho's session state from replaying anything behind our
  back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import OrderedDict
from collections.abc import Iterable
from typing import Literal

import aiomqtt

from drivers.options import DriverOptions
from drivers.outbox import Outbox, Outgoing
from drivers.stats import DriverCounters
from wcs.contract import Ack, Command, DeviceStatus, Topics
from wcs.contract.payloads import (
    ControllerStatus,
    DeviceKind,
    Payload,
    Zone,
    dlq_for,
    parse_command,
    parse_payload,
)
from wcs.errors import ValidationFailed
from wcs.ids import new_id
from wcs.logs import get_logger
from wcs.mqtt.client import make_client
from wcs.retry import Reconnect
from wcs.settings import MqttEndpoint
from wcs.tasks import run_all

StatusState = Literal["online", "offline", "fault"]


class MqttBridge:
    def __init__(
        self,
        *,
        endpoint: MqttEndpoint,
        topics: Topics,
        device_id: str,
        kind: DeviceKind,
        zone: Zone,
        accepts: Iterable[str] = (),
        options: DriverOptions | None = None,
        counters: DriverCounters | None = None,
        watch_controllers: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.topics = topics
        self.device_id = device_id
        self.kind: DeviceKind = kind
        self.zone: Zone = zone
        self.accepts = frozenset(accepts)
        self.options = options or DriverOptions()
        self.counters = counters or DriverCounters()
        self.outbox = Outbox(self.options.buffer_capacity)
        self.commands: asyncio.Queue[tuple[str, Command]] = asyncio.Queue(
            self.options.command_queue
        )
        self.boot_id = new_id("")[:14]
        self.connected = asyncio.Event()
        self.log = get_logger("drivers.bridge").bind(device=device_id)
        self._seq = 0
        self._status: DeviceStatus | None = None
        self._status_changed = asyncio.Event()
        self._recent: OrderedDict[str, Ack | None] = OrderedDict()
        self._closing = False
        self._status_topic = topics.dev_status(device_id)
        self._ack_topic = topics.dev_ack(device_id)
        # Controller presence (retained controller/{instance}/status): which instances
        # are online; ``controllers_changed`` is set when whether any is online changes.
        self.watch_controllers = watch_controllers
        self.controllers: dict[str, str] = {}
        self.controllers_changed = asyncio.Event()

    @property
    def controller_online(self) -> bool | None:
        """Whether any controller is online; None before any has been heard of."""
        if not self.controllers:
            return None
        return any(state == "online" for state in self.controllers.values())

    # --- what drivers call ---------------------------------------------------------

    def next_msg_id(self) -> str:
        """Unique per event: ``<device>-<boot>-<n>``; a replay keeps its id."""
        self._seq += 1
        return f"{self.device_id}-{self.boot_id}-{self._seq}"

    def publish_event(self, kind: str, event: Payload) -> None:
        self.counters.events += 1
        self._put(self.topics.dev_evt(self.device_id, kind), event.to_json())

    def dead_letter(self, source: str, raw: bytes, error: str) -> None:
        self._put(self.topics.dlq(), dlq_for(source, raw, error).to_json())

    def set_status(self, state: StatusState, detail: str | None = None) -> None:
        if self._closing:
            return
        current = self._status
        if current is not None and current.state == state and current.detail == detail:
            return
        self._status = DeviceStatus(
            state=state,
            kind=self.kind,
            zone=self.zone,
            detail=detail[:500] if detail else None,
        )
        self.log.info("device status", state=state, detail=detail)
        self._status_changed.set()

    @property
    def status(self) -> DeviceStatus | None:
        return self._status

    def ack(self, cmd_id: str, ok: bool, error: str | None = None) -> None:
        ack = Ack(cmd_id=cmd_id, ok=ok, error=error[:1000] if error else None)
        if not ok:
            self.counters.commands_failed += 1
        self._remember(cmd_id, ack)
        self._put(self._ack_topic, ack.to_json())

    # --- outbox --------------------------------------------------------------------

    def _put(self, topic: str, payload: bytes) -> None:
        before = self.outbox.dropped
        self.outbox.put(topic, payload)
        if self.outbox.dropped != before:
            self.counters.events_dropped = self.outbox.dropped
            if self.outbox.dropped == 1 or self.outbox.dropped % 1000 == 0:
                self.log.warning(
                    "offline buffer full: dropping the oldest messages",
                    dropped=self.outbox.dropped,
                    capacity=self.outbox.capacity,
                )

    # --- commands ------------------------------------------------------------------

    def _remember(self, cmd_id: str, ack: Ack | None) -> None:
        self._recent[cmd_id] = ack
        self._recent.move_to_end(cmd_id)
        while len(self._recent) > self.options.recent_commands:
            self._recent.popitem(last=False)

    def _on_message(self, topic: str, payload: bytes) -> None:
        try:
            info = self.topics.parse(topic)
            if info.kind == "controller_status" and info.name is not None:
                self._on_controller(info.name, payload)
                return
            if info.kind != "cmd" or info.device_id != self.device_id or info.name is None:
                raise ValidationFailed(f"topic {topic!r} is not a command for {self.device_id}")
            command = parse_command(info.name, payload)
        except ValidationFailed as exc:
            self.counters.commands_invalid += 1
            self.log.warning("command refused", topic=topic, error=exc.message)
            self.dead_letter(topic, payload, exc.message)
            return
        if command.cmd_id in self._recent:
            self.counters.commands_duplicate += 1
            previous = self._recent[command.cmd_id]
            if previous is not None:  # still running otherwise: its own ack will follow
                self._put(self._ack_topic, previous.to_json())
            return
        if info.name not in self.accepts:
            self.ack(
                command.cmd_id,
                False,
                f"{self.kind} {self.device_id} does not take '{info.name}' commands",
            )
            return
        try:
            self.commands.put_nowait((info.name, command))
        except asyncio.QueueFull:
            self.ack(command.cmd_id, False, f"{self.device_id} has too many queued commands")
            return
        self.counters.commands += 1
        self._remember(command.cmd_id, None)

    def _on_controller(self, instance: str, payload: bytes) -> None:
        before = self.controller_online
        if not payload:  # a cleared retained message: that instance is gone for good
            self.controllers.pop(instance, None)
        else:
            try:
                self.controllers[instance] = parse_payload(ControllerStatus, payload).state
            except ValidationFailed as exc:
                self.log.warning(
                    "controller status unreadable", instance=instance, error=exc.message
                )
                return
        if self.controller_online != before:
            self.log.info("controller presence changed", online=self.controller_online)
            self.controllers_changed.set()

    # --- connection ------------------------------------------------------------------

    def _will(self) -> aiomqtt.Will:
        gone = DeviceStatus(
            state="offline", kind=self.kind, zone=self.zone, detail="driver connection lost"
        )
        return aiomqtt.Will(self._status_topic, gone.to_json(), qos=1, retain=True)

    async def run(self) -> None:
        """Stay connected until cancelled; on cancel publish what is left and ``offline``."""
        link = Reconnect(
            f"{self.kind} {self.device_id} -> broker {self.endpoint.host}:{self.endpoint.port}",
            self.log,
            self.options.backoff,
            level=logging.ERROR,
            expected=(aiomqtt.MqttError,),
            on_failure=self._broker_failed,
        )
        await link.run(lambda: self._connection(link))

    def _broker_failed(self, exc: BaseException) -> None:
        self.counters.mqtt_failures += 1
        if len(self.outbox):
            self.log.debug("buffering events while the broker is away", buffered=len(self.outbox))

    async def _connection(self, link: Reconnect) -> None:
        client = make_client(
            self.endpoint,
            identifier=f"wcs-drv-{self.device_id}-{self.boot_id}",
            will=self._will(),
            keepalive=self.options.mqtt_keepalive_s,
        )
        # aiomqtt warns past 10 unacknowledged publishes; our window is larger on
        # purpose (and bounded), so only warn past it.
        client.pending_calls_threshold = self.options.inflight_window + 16
        cancelled = False
        try:
            async with client:
                self.counters.mqtt_connects += 1
                link.up()
                try:
                    await self._session(client)
                except asyncio.CancelledError:
                    cancelled = True
                    raise
        except Exception as exc:
            if cancelled:
                # aiomqtt's __aexit__ may turn a cancelled session into a disconnect
                # timeout; we are stopping all the same.
                raise asyncio.CancelledError from exc
            raise
        finally:
            self.connected.clear()
            self.outbox.rewind()

    async def _session(self, client: aiomqtt.Client) -> None:
        await client.subscribe(self.topics.device_commands(self.device_id), qos=1)
        if self.watch_controllers:
            await client.subscribe(self.topics.all_controller_statuses(), qos=1)
        self.outbox.rewind()
        self.connected.set()
        if self._status is not None:
            self._status_changed.set()
        try:
            await run_all(
                {
                    f"{self.device_id}/mqtt-send": self._send_loop(client),
                    f"{self.device_id}/mqtt-status": self._status_loop(client),
                    f"{self.device_id}/mqtt-recv": self._receive_loop(client),
                }
            )
        except asyncio.CancelledError:
            await self._farewell(client)
            raise

    async def _send_loop(self, client: aiomqtt.Client) -> None:
        window = self.options.inflight_window
        async with asyncio.TaskGroup() as tg:
            while True:
                item = self.outbox.take(window)
                if item is None:
                    await self.outbox.wait_changed()
                    continue
                tg.create_task(self._publish(client, item), name=f"{self.device_id}/publish")

    async def _publish(self, client: aiomqtt.Client, item: Outgoing) -> None:
        # An error here ends the session (the TaskGroup cancels its siblings); the item
        # stays unacknowledged in the outbox and goes out again after reconnecting.
        try:
            # No per-publish timer (it costs a task and a timer per message): a broker
            # that stops answering is caught by the keepalive, which ends the session.
            await client.publish(item.topic, item.payload, qos=1, timeout=math.inf)
        finally:
            self.outbox.release(item)
        self.outbox.ack(item)

    async def _status_loop(self, client: aiomqtt.Client) -> None:
        while True:
            await self._status_changed.wait()
            self._status_changed.clear()
            if self._status is not None:
                await client.publish(self._status_topic, self._status.to_json(), qos=1, retain=True)

    async def _receive_loop(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            if isinstance(payload, str):
                raw = payload.encode()
            elif isinstance(payload, bytes | bytearray):
                raw = bytes(payload)
            else:
                raw = str(payload).encode()
            self._on_message(message.topic.value, raw)

    async def _farewell(self, client: aiomqtt.Client) -> None:
        """Stopping: flush the buffer (bounded in time), then announce ``offline``."""
        self._closing = True
        self.outbox.rewind()
        left = len(self.outbox)
        try:
            await asyncio.wait_for(self._drain(client), self.options.shutdown_grace_s)
        except (TimeoutError, aiomqtt.MqttError) as exc:
            self.log.warning(
                "stopping with unsent messages", unsent=len(self.outbox), error=str(exc)
            )
        else:
            if left:
                self.log.info("flushed buffered messages before stopping", count=left)
        offline = DeviceStatus(
            state="offline", kind=self.kind, zone=self.zone, detail="driver stopped"
        )
        with contextlib.suppress(TimeoutError, aiomqtt.MqttError):
            await asyncio.wait_for(
                client.publish(self._status_topic, offline.to_json(), qos=1, retain=True), 1.0
            )
        self._status = offline
        self.connected.clear()

    async def _drain(self, client: aiomqtt.Client) -> None:
        while (item := self.outbox.take(1)) is not None:
            await client.publish(item.topic, item.payload, qos=1)
            self.outbox.ack(item)
