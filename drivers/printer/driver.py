"""Label printer driver: ZPL from ``cmd/print`` out, ``~HS`` status polled in.

The printer is polled with ``~HS`` every ``status_poll_s``; paper out, head open,
ribbon out and pause become a retained ``fault`` status naming them, and ``online``
again once cleared. A ``~HS`` left unanswered is itself a fault: Zebra printers may
stay silent while out of media or with the head open. A print while faulted is not
sent and is acked ``ok: false`` with the reason, so the controller can switch to the
station's backup printer instead of losing the label.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from drivers.base import Driver
from drivers.bridge import MqttBridge
from drivers.frame import BadFrame
from drivers.options import DriverOptions
from drivers.printer.codec import (
    HOST_STATUS,
    HostStatus,
    HostStatusReader,
    check_zpl,
    pdf_document,
)
from drivers.serial_link import ByteLink, open_link, port_key
from wcs.contract import Command, PrintCommand
from wcs.errors import DeviceUnavailable
from wcs.floor import PrinterDevice
from wcs.tasks import run_all

NO_ANSWER = "printer does not answer ~HS (paper out, ribbon out or head open?)"


class PrinterDriver(Driver):
    kind = "printer"
    accepts = frozenset({"print"})

    def __init__(self, device: PrinterDevice, bridge: MqttBridge, options: DriverOptions) -> None:
        super().__init__(device.id, bridge, options)
        self.device = device
        self.port = port_key(device.link)
        self.printed = 0
        self.last_status: HostStatus | None = None
        self._link: ByteLink | None = None
        self._lock = asyncio.Lock()
        self._reader = HostStatusReader()
        self._waiting: asyncio.Future[HostStatus] | None = None

    @property
    def link(self) -> ByteLink:
        if self._link is None:
            raise DeviceUnavailable(f"{self.who} is not connected: {self.last_fault or 'no link'}")
        return self._link

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[None]:
        link = await open_link(self.device.link, self.who, self.options.open_timeout_s)
        self._link = link
        self._reader.reset()
        try:
            yield
        finally:
            self._link = None
            await link.close()

    async def serve(self) -> None:
        await run_all(
            {
                f"{self.device_id}/read": self._read_loop(),
                f"{self.device_id}/status-poll": self._poll_loop(),
            }
        )

    async def _read_loop(self) -> None:
        link = self.link
        while True:
            data = await link.read()
            for item in self._reader.feed(data):
                if isinstance(item, BadFrame):
                    self.bad_frame(link.name, item)
                    continue
                self.counters.frames += 1
                waiting = self._waiting
                if waiting is not None and not waiting.done():
                    waiting.set_result(item)
                else:
                    self._apply(item)

    async def _poll_loop(self) -> None:
        while True:
            await self.query_status()
            await asyncio.sleep(self.device.status_poll_s)

    async def query_status(self) -> HostStatus | None:
        """Ask ``~HS`` and apply the answer; None (and a fault) when there is none."""
        async with self._lock:
            future: asyncio.Future[HostStatus] = asyncio.get_running_loop().create_future()
            self._waiting = future
            try:
                await self.link.write(HOST_STATUS)
                status = await asyncio.wait_for(future, self.device.status_timeout_s)
            except TimeoutError:
                self._reader.reset()  # drop half a reply; the next one starts clean
                self.fault(NO_ANSWER)
                return None
            finally:
                self._waiting = None
        self._apply(status)
        return status

    def _apply(self, status: HostStatus) -> None:
        self.last_status = status
        detail = status.detail
        if detail:
            self.fault(detail)
        else:
            self.healthy()

    async def execute(self, name: str, command: Command) -> str | None:
        if name != "print" or not isinstance(command, PrintCommand):
            return await super().execute(name, command)
        self.require_online()
        if self.last_fault:
            return self.last_fault
        if command.pdf is not None:
            # A PDF goes to the printer as it is: printers with PDF Direct print it.
            data, problem = pdf_document(command.pdf)
        else:
            data, problem = (command.zpl or "").encode("utf-8"), check_zpl(command.zpl or "")
        if problem or data is None:
            return f"{self.who}: {problem}"
        async with self._lock:
            try:
                await asyncio.wait_for(
                    self.link.write(data),
                    self.options.printer_write_timeout_s,
                )
            except TimeoutError:
                raise DeviceUnavailable(
                    f"{self.who}: {self.port} stopped taking data for "
                    f"{self.options.printer_write_timeout_s:g} s; check the printer"
                ) from None
        self.printed += 1
        self.log.info("label sent", cmd_id=command.cmd_id, job_id=command.job_id)
        return None
