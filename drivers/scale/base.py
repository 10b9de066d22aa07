"""What the scale drivers share: one serial port per scale, weights to the broker."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from drivers.base import Driver
from drivers.bridge import MqttBridge
from drivers.options import DriverOptions
from drivers.serial_link import ByteLink, open_serial
from wcs.contract import WeightEvent
from wcs.errors import DeviceUnavailable
from wcs.floor import ScaleDevice


class SerialScale(Driver):
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
