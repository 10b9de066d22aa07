"""The floor's load and its own log: pickers that scan, and a witness on the broker.

- :class:`Witness` holds a persistent MQTT session of its own and records every
  device event the broker accepted (``evt``) and every command the controller sent
  (``cmd``). Its session lives across broker restarts (the broker persists it), so
  what it saw is the complete list of events the system owes an effect for.
- :class:`MqttPickers` play the stations that have no device simulator: they scan
  the item of the slot their panel shows lit, straight on MQTT as a scanner driver
  would, with ``msg_id``s of their own. An event counts as *sent* once its PUBACK
  arrived; one whose PUBACK did not arrive is published again with the same
  ``msg_id`` (a driver's replay), so every event is eventually acknowledged.
- :class:`SimPickers` stand at the simulated stations: they read the lit slot off the
  simulated PTL panel (lit by the real PTL driver) and pull the trigger of the
  simulated serial scanner; the scanner driver does the rest.

A picker with two scans unanswered waits, as a person at a station whose lights have
stopped moving would; an answer is any command that names the scan as its cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiomqtt

from bench.b_controller import barcode
from device_sim.floor import SimFloor
from device_sim.ptl import PtlSim
from tests.faults.layout import station_of
from wcs.contract.payloads import ScanEvent
from wcs.contract.topics import Topics
from wcs.mqtt.client import make_client
from wcs.settings import MqttEndpoint

UNANSWERED_MAX = 2
ANSWER_WAIT_S = 3.0
PUBLISH_TIMEOUT_S = 5.0


@dataclass
class Witness:
    """What the broker accepted and delivered, seen from a persistent session."""

    endpoint: MqttEndpoint
    topics: Topics
    events: dict[str, set[str]] = field(default_factory=dict)  # device -> msg_ids
    deliveries: int = 0
    commands: int = 0
    lit: dict[int, int] = field(default_factory=dict)  # station -> lit green slot
    causes: set[str] = field(default_factory=set)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def event_count(self) -> int:
        return sum(len(ids) for ids in self.events.values())

    def _command(self, device: str, body: dict[str, object]) -> None:
        self.commands += 1
        cause = body.get("cause")
        if isinstance(cause, str):
            self.causes.add(cause)
        if not device.startswith("ptl-"):
            return
        k = station_of(device)
        slot = body.get("slot")
        if body.get("qty") is not None and isinstance(slot, int):
            if body.get("color") == "green":
                self.lit[k] = slot
        elif self.lit.get(k) == slot or slot is None:
            self.lit.pop(k, None)

    async def run(self) -> None:
        root = self.topics.root
        while True:
            try:
                client = make_client(
                    self.endpoint,
                    identifier=f"faults-witness-{self.topics.site}",
                    clean_session=False,
                    max_queued_incoming=None,
                )
                async with client:
                    await client.subscribe(f"{root}/dev/+/evt/+", qos=1)
                    await client.subscribe(f"{root}/dev/+/cmd/+", qos=1)
                    self.connected.set()
                    async for message in client.messages:
                        info = self.topics.parse(str(message.topic))
                        body = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                        device = info.device_id or ""
                        if info.kind == "evt":
                            self.deliveries += 1
                            self.events.setdefault(device, set()).add(str(body["msg_id"]))
                        elif info.kind == "cmd":
                            self._command(device, body)
            except aiomqtt.MqttError:
                self.connected.clear()
                await asyncio.sleep(0.3)


@dataclass
class Pending:
    msg_id: str
    topic: str
    payload: bytes
    station: int


class MqttPickers:
    """Pickers at the stations without simulators, scanning over MQTT at ``rate``/s."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        topics: Topics,
        witness: Witness,
        stations: Sequence[int],
        rate: float,
        run_id: str,
    ) -> None:
        self.endpoint = endpoint
        self.topics = topics
        self.witness = witness
        self.stations = list(stations)
        self.rate = rate
        self.run_id = run_id
        self.acked: dict[str, set[str]] = {}  # device -> msg_ids with a PUBACK
        self.created = 0
        self.republished = 0
        self.failures = 0
        self._retry: deque[Pending] = deque()
        self._waiting: dict[int, dict[str, float]] = {k: {} for k in self.stations}
        self._inflight: set[asyncio.Task[None]] = set()

    @property
    def acked_count(self) -> int:
        return sum(len(ids) for ids in self.acked.values())

    @property
    def unacked(self) -> int:
        return len(self._retry) + len(self._inflight)

    def _may_scan(self, k: int) -> bool:
        waiting = self._waiting[k]
        now = time.monotonic()
        for msg_id, at in list(waiting.items()):
            if msg_id in self.witness.causes or now - at > ANSWER_WAIT_S:
                del waiting[msg_id]
        return len(waiting) < UNANSWERED_MAX

    def _next(self, n: int) -> Pending | None:
        k = self.stations[n % len(self.stations)]
        slot = self.witness.lit.get(k)
        if slot is None or not self._may_scan(k):
            return None
        msg_id = f"{self.run_id}-{n}"
        payload = ScanEvent(msg_id=msg_id, code=barcode(k, slot), symbology="]E0").to_json()
        self._waiting[k][msg_id] = time.monotonic()
        self.created += 1
        return Pending(msg_id, self.topics.dev_evt(f"scan-{k}", "scan"), payload, k)

    async def _publish(self, client: aiomqtt.Client, item: Pending) -> None:
        try:
            await client.publish(item.topic, item.payload, qos=1, timeout=PUBLISH_TIMEOUT_S)
        except (aiomqtt.MqttError, asyncio.CancelledError):
            # No PUBACK: it may or may not have arrived; send it again, same msg_id.
            self.failures += 1
            self._retry.append(item)
            raise
        self.acked.setdefault(f"scan-{item.station}", set()).add(item.msg_id)

    def _spawn(self, client: aiomqtt.Client, item: Pending) -> None:
        task = asyncio.create_task(self._publish(client, item), name="faults-scan-publish")
        self._inflight.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: the failure is already queued for a retry

    async def run(self, stop: asyncio.Event) -> None:
        counter = itertools.count()
        while not stop.is_set():
            try:
                client = make_client(self.endpoint, identifier=f"faults-pickers-{self.run_id}")
                async with client:
                    await self._connected(client, counter, stop)
            except aiomqtt.MqttError:
                await asyncio.sleep(0.3)

    async def _connected(
        self, client: aiomqtt.Client, counter: itertools.count[int], stop: asyncio.Event
    ) -> None:
        async def link() -> None:
            # Nothing is subscribed: the iteration only ends when the link drops.
            async for _ in client.messages:
                pass

        watch = asyncio.create_task(link(), name="faults-pickers-link")
        serve = asyncio.create_task(self._serve(client, counter, stop), name="faults-pickers")
        await asyncio.wait({watch, serve}, return_when=asyncio.FIRST_COMPLETED)
        for task in (watch, serve):
            task.cancel()
        await asyncio.gather(watch, serve, return_exceptions=True)

    async def _serve(
        self, client: aiomqtt.Client, counter: itertools.count[int], stop: asyncio.Event
    ) -> None:
        interval = 1.0 / self.rate
        due = time.monotonic()
        while not stop.is_set():
            while self._retry:
                self.republished += 1
                self._spawn(client, self._retry.popleft())
            item = self._next(next(counter))
            if item is not None:
                self._spawn(client, item)
            due += interval
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                due = time.monotonic()  # fell behind (a fault): do not burst to catch up
                await asyncio.sleep(0)

    async def flush(self, timeout: float) -> None:
        """Publish what is still unacknowledged until every event has its PUBACK."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (self._retry or self._inflight):
            if self._inflight:
                await asyncio.wait(set(self._inflight), timeout=1.0)
                continue
            try:
                async with make_client(self.endpoint) as client:
                    while self._retry:
                        self.republished += 1
                        self._spawn(client, self._retry.popleft())
                    await asyncio.wait(set(self._inflight), timeout=PUBLISH_TIMEOUT_S + 1)
            except aiomqtt.MqttError:
                await asyncio.sleep(0.5)

    async def cancel_inflight(self) -> None:
        for task in list(self._inflight):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._inflight, return_exceptions=True)


def _moved(ptl: PtlSim, slot: int, shown: int) -> Callable[[], bool]:
    def moved() -> bool:
        view = ptl.slot(slot)
        return not view.lit or view.qty != shown

    return moved


class SimPickers:
    """Pickers at simulated stations: read the panel, pull the scanner's trigger."""

    def __init__(self, sim: SimFloor, stations: Sequence[int], pace_s: float) -> None:
        self.sim = sim
        self.stations = list(stations)
        self.pace_s = pace_s
        self.triggered = 0  # scans the simulated scanners put on their line
        self.unheard = 0  # of those, made while no driver was attached (lost at the device)

    async def _station(self, k: int, stop: asyncio.Event) -> None:
        ptl = self.sim.ptl(f"ptl-{k}")
        scanner = self.sim.scanner(f"scan-{k}")
        while not stop.is_set():
            # Red blinks after a mispick point at the slots still to pick, too.
            lit = sorted(ptl.lit().values(), key=lambda v: (v.colour != "green", v.slot))
            green = [v for v in lit if v.qty > 0]
            if not green:
                await asyncio.sleep(0.1)
                continue
            endpoint = scanner.endpoint
            heard = scanner.link_up and getattr(endpoint, "clients", 0) > 0
            slot, shown = green[0].slot, green[0].qty
            await scanner.scan(barcode(k, slot), symbology="]E0")
            self.triggered += 1
            if not heard:
                self.unheard += 1
            # Wait for the panel to count down (or give up, as a picker would).
            with contextlib.suppress(TimeoutError):
                await ptl.wait_for(_moved(ptl, slot, shown), timeout_s=2.0)
            await asyncio.sleep(self.pace_s)

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            for k in self.stations:
                group.create_task(self._station(k, stop), name=f"faults-sim-picker-{k}")
