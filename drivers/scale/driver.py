"""Scale drivers: MT-SICS (request/reply) and Toledo continuous output (streaming).

MT-SICS: the scale speaks only when asked. ``cmd/weigh`` sends ``S`` (stable weight;
``S I`` - no stable weight in time - is retried a few times), ``cmd/tare`` ``T`` and
``cmd/zero`` ``Z``; each command is acked once. Between commands an ``SI`` probe every
few seconds tells a silent scale (``fault``: does not answer) or an overloaded one
from a healthy one.

Toledo continuous: the scale streams frames several times a second. A stable weight
is published when the scale settles on a new value; ``cmd/weigh`` publishes the next
stable reading; tare and zero are sent as ``T``/``Z`` and confirmed from the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from drivers.base import Driver
from drivers.bridge import MqttBridge
from drivers.frame import BadFrame, LineFramer, Overlong
from drivers.options import DriverOptions
from drivers.scale import mtsics
from drivers.scale.toledo import Reading, ToledoFramer
from drivers.serial_link import ByteLink, open_serial
from drivers.tasks import run_all
from wcs.contract import Command, WeightEvent
from wcs.errors import DeviceUnavailable
from wcs.floor import ScaleDevice


def driver_for_scale(device: ScaleDevice, bridge: MqttBridge, options: DriverOptions) -> Driver:
    if device.protocol == "toledo-continuous":
        return ToledoScaleDriver(device, bridge, options)
    return MtSicsScaleDriver(device, bridge, options)


class _SerialScale(Driver):
    kind = "scale"
    accepts = frozenset({"tare", "zero", "weigh"})

    def __init__(self, device: ScaleDevice, bridge: MqttBridge, options: DriverOptions) -> None:
        super().__init__(device.id, bridge, options)
        self.device = device
        self._link: ByteLink | None = None

    @property
    def link(self) -> ByteLink:
        if self._link is None:
            raise DeviceUnavailable(f"{self.who} is not connected: {self.last_fault or 'no port'}")
        return self._link

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[None]:
        link = await open_serial(self.device.link, self.who, self.options.open_timeout_s)
        self._link = link
        try:
            yield
        finally:
            self._link = None
            await link.close()

    def publish_weight(self, grams: float, stable: bool) -> None:
        self.bridge.publish_event(
            "weight", WeightEvent(msg_id=self.bridge.next_msg_id(), grams=grams, stable=stable)
        )


class MtSicsScaleDriver(_SerialScale):
    def __init__(self, device: ScaleDevice, bridge: MqttBridge, options: DriverOptions) -> None:
        super().__init__(device, bridge, options)
        self._lock = asyncio.Lock()
        self._pending: tuple[str, asyncio.Future[mtsics.Reply]] | None = None
        self.stray_replies = 0

    async def serve(self) -> None:
        await run_all(
            {
                f"{self.device_id}/read": self._read_loop(),
                f"{self.device_id}/probe": self._probe_loop(),
            }
        )

    async def _read_loop(self) -> None:
        link = self.link
        framer = LineFramer("auto")
        while True:
            data = await link.read()
            for frame in framer.feed(data):
                self._on_frame(frame, link.name)

    def _on_frame(self, frame: bytes | Overlong, source: str) -> None:
        if isinstance(frame, Overlong):
            self.bad_frame(source, BadFrame(frame.reason, frame.raw))
            return
        try:
            reply = mtsics.decode_reply(frame)
        except BadFrame as exc:
            self.bad_frame(source, exc)
            return
        self.counters.frames += 1
        pending = self._pending
        token = mtsics.reply_token(reply)
        if pending is not None and not pending[1].done() and token in (None, pending[0]):
            pending[1].set_result(reply)
            return
        # A reply that came after its request timed out: nobody waits for it any more.
        self.stray_replies += 1
        self.log.debug("unexpected MT-SICS reply", reply=repr(reply))

    async def request(self, command: str, timeout_s: float | None = None) -> mtsics.Reply:
        """Send one command and wait for its reply; one at a time per scale."""
        timeout_s = timeout_s or self.options.scale_reply_timeout_s
        async with self._lock:
            future: asyncio.Future[mtsics.Reply] = asyncio.get_running_loop().create_future()
            self._pending = (mtsics.REPLY_TO[command], future)
            try:
                await self.link.write(mtsics.encode_command(command))
                return await asyncio.wait_for(future, timeout_s)
            except TimeoutError:
                detail = (
                    f"{self.who} does not answer on {self.device.link.url} "
                    f"('{command}' unanswered after {timeout_s:g} s); check cable and power"
                )
                self.fault(detail)
                raise DeviceUnavailable(detail) from None
            finally:
                self._pending = None

    async def _probe_loop(self) -> None:
        interval = self.options.scale_poll_s
        while True:
            with contextlib.suppress(DeviceUnavailable):
                reply = await self.request("SI", min(interval, self.options.scale_reply_timeout_s))
                self._status_from(reply)
            await asyncio.sleep(interval)

    def _status_from(self, reply: mtsics.Reply) -> None:
        match reply:
            case mtsics.Status(status="+"):
                self.fault(f"{self.who}: overload - remove weight from the pan")
            case mtsics.Status(status="-"):
                self.fault(f"{self.who}: underload - check the pan is in place")
            case _:
                self.healthy()

    async def execute(self, name: str, command: Command) -> str | None:
        self.require_online()
        if name == "weigh":
            return await self._weigh()
        if name == "tare":
            reply = await self.request("T")
            self._status_from(reply)
            return None if isinstance(reply, mtsics.Tare) else self._refusal("tare", reply)
        if name == "zero":
            reply = await self.request("Z")
            self._status_from(reply)
            if isinstance(reply, mtsics.Status) and reply.status == "A":
                return None
            return self._refusal("zero", reply)
        return await super().execute(name, command)

    async def _weigh(self) -> str | None:
        tries = self.options.scale_busy_retries + 1
        reply: mtsics.Reply | None = None
        for attempt in range(tries):
            if attempt:
                await asyncio.sleep(self.options.scale_retry_delay_s)
            reply = await self.request("S")
            self._status_from(reply)
            if isinstance(reply, mtsics.Weight) and reply.stable:
                self.publish_weight(reply.grams, True)
                return None
            busy = isinstance(reply, mtsics.Status) and reply.status == "I"
            if not (busy or isinstance(reply, mtsics.Weight)):
                break
        if isinstance(reply, mtsics.Status) and reply.status == "I":
            return (
                f"{self.who}: no stable weight after {tries} tries (S I); "
                "check nothing touches the pan"
            )
        return self._refusal("weigh", reply)

    def _refusal(self, what: str, reply: mtsics.Reply | None) -> str:
        match reply:
            case mtsics.Status():
                code = f"{reply.command} {reply.status}"
                return f"{self.who}: {what} refused: {reply.meaning} ({code})"
            case mtsics.Error():
                return f"{self.who}: {what} refused: {reply.meaning} ({reply.code})"
        return f"{self.who}: {what}: unexpected reply {reply!r}"


class ToledoScaleDriver(_SerialScale):
    def __init__(self, device: ScaleDevice, bridge: MqttBridge, options: DriverOptions) -> None:
        super().__init__(device, bridge, options)
        self.latest: Reading | None = None
        self._last_frame = 0.0
        self._published: float | None = None
        self._was_stable = False
        self._new_reading = asyncio.Event()

    async def serve(self) -> None:
        await run_all(
            {
                f"{self.device_id}/read": self._read_loop(),
                f"{self.device_id}/watchdog": self._watchdog(),
            }
        )

    async def _read_loop(self) -> None:
        link = self.link
        framer = ToledoFramer()
        while True:
            data = await link.read()
            for item in framer.feed(data):
                if isinstance(item, BadFrame):
                    self.bad_frame(link.name, item)
                else:
                    await self._on_reading(item)

    async def _on_reading(self, reading: Reading) -> None:
        self.counters.frames += 1
        self.latest = reading
        self._last_frame = time.monotonic()
        if reading.out_of_range:
            self.fault(f"{self.who}: weight out of range (overload or underload)")
        else:
            self.healthy()
        settled = reading.stable and not reading.out_of_range
        if settled and (not self._was_stable or reading.grams != self._published):
            self._published = reading.grams
            self.publish_weight(reading.grams, True)
        self._was_stable = settled
        self._new_reading.set()

    async def _watchdog(self) -> None:
        silence = max(2.0, self.options.scale_poll_s)
        self._last_frame = time.monotonic()
        while True:
            await asyncio.sleep(silence / 2)
            if time.monotonic() - self._last_frame > silence:
                self.fault(
                    f"{self.who} stopped sending on {self.device.link.url}; "
                    "check cable, power and that continuous output is on"
                )

    async def _next(self, accept: Callable[[Reading], bool], what: str) -> Reading:
        timeout = self.options.scale_reply_timeout_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            latest = self.latest
            if latest is not None and accept(latest):
                return latest
            self._new_reading.clear()
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                await asyncio.wait_for(self._new_reading.wait(), remaining)
            except TimeoutError:
                raise DeviceUnavailable(f"{self.who}: {what} within {timeout:g} s") from None

    async def execute(self, name: str, command: Command) -> str | None:
        self.require_online()
        if name == "weigh":
            self.latest = None  # a fresh reading, not the one from before the command
            reading = await self._next(
                lambda r: r.stable and not r.out_of_range, "no stable weight"
            )
            self.publish_weight(reading.grams, True)
            return None
        if name == "tare":
            await self.link.write(b"T\r\n")
            self.latest = None
            await self._next(lambda r: r.stable and r.net, "scale did not confirm the tare")
            return None
        if name == "zero":
            await self.link.write(b"Z\r\n")
            self.latest = None
            await self._next(
                lambda r: r.stable and not r.net and r.grams == 0, "scale did not confirm zero"
            )
            return None
        return await super().execute(name, command)
