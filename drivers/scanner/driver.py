"""Scanner driver: serial lines in, ``evt/scan`` (or ``dlq``) out. Takes no commands."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from drivers.base import Driver
from drivers.bridge import MqttBridge
from drivers.frame import BadFrame, LineFramer, Overlong
from drivers.options import DriverOptions
from drivers.scanner.codec import decode_scan
from drivers.serial_link import ByteLink, open_serial
from wcs.contract import ScanEvent
from wcs.errors import DeviceUnavailable
from wcs.floor import ScannerDevice


class ScannerDriver(Driver):
    kind = "scanner"

    def __init__(self, device: ScannerDevice, bridge: MqttBridge, options: DriverOptions) -> None:
        super().__init__(device.id, bridge, options)
        self.device = device
        self._link: ByteLink | None = None

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[None]:
        link = await open_serial(self.device.link, self.who, self.options.open_timeout_s)
        self._link = link
        try:
            self.healthy()
            yield
        finally:
            self._link = None
            await link.close()

    async def serve(self) -> None:
        link = self._link
        if link is None:
            raise DeviceUnavailable(f"{self.who}: no open port")
        framer = LineFramer(self.device.terminator)
        while True:
            data = await link.read()
            for frame in framer.feed(data):
                self.handle_frame(frame, link.name)

    def handle_frame(self, frame: bytes | Overlong, source: str) -> None:
        if isinstance(frame, Overlong):
            self.bad_frame(source, BadFrame(frame.reason, frame.raw))
            return
        try:
            scan = decode_scan(frame)
        except BadFrame as exc:
            self.bad_frame(source, exc)
            return
        self.counters.frames += 1
        self.bridge.publish_event(
            "scan",
            ScanEvent(msg_id=self.bridge.next_msg_id(), code=scan.code, symbology=scan.symbology),
        )
