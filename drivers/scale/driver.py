"""Which scale driver serves a scale, and the Toledo continuous-output driver.

MT-SICS scales are served by :mod:`drivers.scale.sics_driver`.

Toledo continuous: the scale streams frames several times a second. A stable weight
is published when the scale settles on a new value; ``cmd/weigh`` publishes the next
stable reading; tare and zero are sent as ``T``/``Z`` and confirmed from the stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from drivers.base import Driver
from drivers.bridge import MqttBridge
from drivers.frame import BadFrame
from drivers.options import DriverOptions
from drivers.scale.base import SerialScale
from drivers.scale.sics_driver import MtSicsScaleDriver
from drivers.scale.toledo import Reading, ToledoFramer
from wcs.contract import Command
from wcs.errors import DeviceUnavailable
from wcs.floor import ScaleDevice
from wcs.tasks import run_all


def driver_for_scale(device: ScaleDevice, bridge: MqttBridge, options: DriverOptions) -> Driver:
    if device.protocol == "toledo-continuous":
        return ToledoScaleDriver(device, bridge, options)
    return MtSicsScaleDriver(device, bridge, options)


class ToledoScaleDriver(SerialScale):
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
