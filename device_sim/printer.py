"""Simulated Zebra label printer: ZPL II on a raw TCP port (9100 style) or a serial line.

Models what a host sees of a Zebra: it serves **one TCP client at a time** (a second
connection is accepted by the network stack but nothing it sends is read or answered
until the first client closes); formats ``^XA ... ^XZ`` go into the receive buffer and
print when the printer is ready; tilde commands act at once:

- ``~HS``: three status strings, each ``<STX>...<ETX><CR><LF>``. String 1
  ``aaa,b,c,dddd,eee,f,g,h,000,j,k,l`` (b paper out, c pause, dddd label length in
  dots, eee formats in the buffer, h partial format); string 2
  ``mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www`` (o head up, p ribbon out, uuuuuuuu labels
  remaining); string 3 ``xxxx,y`` (password, static RAM).
- ``~HI`` identification, ``~PS`` resume, ``~PP`` pause, ``~JA`` cancel all formats.

Printed labels are kept in :attr:`PrinterSim.labels` with their fields and bar codes
parsed (:class:`device_sim.zpl.Label`), so a test can read the SSCC that was printed.
PDF jobs (``%PDF-`` ... ``%%EOF`` between formats, as a printer with PDF Direct takes
them) print too and are kept in :attr:`PrinterSim.documents`.

Faults: ``paper_out``, ``head_open``, ``paused``, ``ribbon_out`` (each raises its flag
in ``~HS`` and holds formats in the buffer until cleared); ``silent_on_fault`` (no
answer to ``~HS`` at all while paper out, ribbon out or head open, as Zebra documents
for recent firmware); ``reply_delay_s`` (late ``~HS`` answers); :meth:`send_garbage`;
link down/up.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

from device_sim.base import Simulator, TaskSet
from device_sim.serial_link import DEFAULT_GARBAGE, SerialEndpoint
from device_sim.zpl import Immediate, Label, PdfDocument, ZplInterpreter

STX, ETX = b"\x02", b"\x03\r\n"
# 9600 baud, 8 data bits, 1 stop bit, no parity, Xon/Xoff, encoded as ~HS does it.
_COMM_SETTINGS = 30


@dataclass(frozen=True)
class PrinterOptions:
    label_length_dots: int = 1218  # 6 in at 203 dpi: a 4x6 shipping label
    silent_on_fault: bool = False
    print_time_s: float = 0.0
    reply_delay_s: float = 0.0
    model: str = "ZD621-203dpi"
    firmware: str = "V93.21.26Z"
    password: str = "1234"


def frame_status(*strings: str) -> bytes:
    return b"".join(STX + s.encode("ascii") + ETX for s in strings)


class _Link:
    """Where replies for the connection being served go."""

    def __init__(self, writer: asyncio.StreamWriter | None, endpoint: SerialEndpoint | None):
        self.writer = writer
        self.endpoint = endpoint

    async def write(self, data: bytes) -> None:
        if self.endpoint is not None:
            await self.endpoint.write(data)
        elif self.writer is not None and not self.writer.is_closing():
            self.writer.write(data)
            await self.writer.drain()


class PrinterSim(Simulator):
    kind = "printer"

    def __init__(
        self,
        device_id: str,
        host: str = "127.0.0.1",
        port: int = 9100,
        options: PrinterOptions | None = None,
        *,
        serial: SerialEndpoint | None = None,
    ):
        super().__init__(device_id)
        self.options = options or PrinterOptions()
        self.host = host
        self.port = port
        self.reply_delay_s = self.options.reply_delay_s
        self.silent_on_fault = self.options.silent_on_fault
        self.labels: list[Label] = []
        self.documents: list[PdfDocument] = []
        self.pending: list[Label | PdfDocument] = []
        self.status_requests = 0
        self.unanswered_status_requests = 0
        self.connections_served = 0
        self._serial = serial
        self._serial_interp = ZplInterpreter()
        self._serial_items: asyncio.Queue[Label | Immediate | PdfDocument] = asyncio.Queue()
        self._server: asyncio.Server | None = None
        self._sessions = TaskSet(f"{device_id}:tcp", self.log)
        self._writers: set[asyncio.StreamWriter] = set()
        self._one_client = asyncio.Lock()
        self._current: _Link | None = None
        self._read_cursor = 0
        self._faults = {
            "paper_out": False,
            "head_open": False,
            "paused": False,
            "ribbon_out": False,
        }
        if serial is not None:
            serial.on_data = self._serial_data

    @classmethod
    def over_serial(
        cls, device_id: str, endpoint: SerialEndpoint, options: PrinterOptions | None = None
    ) -> PrinterSim:
        return cls(device_id, options=options, serial=endpoint)

    @property
    def serial_endpoint(self) -> SerialEndpoint | None:
        """The serial line this printer hangs on, or ``None`` for a TCP printer."""
        return self._serial

    @property
    def address(self) -> str:
        if self._serial is not None:
            return self._serial.url
        return f"{self.host}:{self.port}"

    # -- faults --------------------------------------------------------------------

    def _set_fault(self, name: str, value: bool) -> None:
        if self._faults[name] != value:
            self._faults[name] = value
            if value:
                self.log.warning("fault injected", fault=name)
            else:
                self.log.info("fault cleared", fault=name)
            self.changes.notify()

    @property
    def paper_out(self) -> bool:
        return self._faults["paper_out"]

    @paper_out.setter
    def paper_out(self, value: bool) -> None:
        self._set_fault("paper_out", value)

    @property
    def head_open(self) -> bool:
        return self._faults["head_open"]

    @head_open.setter
    def head_open(self, value: bool) -> None:
        self._set_fault("head_open", value)

    @property
    def paused(self) -> bool:
        return self._faults["paused"]

    @paused.setter
    def paused(self, value: bool) -> None:
        self._set_fault("paused", value)

    @property
    def ribbon_out(self) -> bool:
        return self._faults["ribbon_out"]

    @ribbon_out.setter
    def ribbon_out(self, value: bool) -> None:
        self._set_fault("ribbon_out", value)

    def clear_faults(self) -> None:
        for name in self._faults:
            self._set_fault(name, False)

    @property
    def ready(self) -> bool:
        return not any(self._faults.values())

    @property
    def _mute(self) -> bool:
        return self.silent_on_fault and (self.paper_out or self.head_open or self.ribbon_out)

    # -- status --------------------------------------------------------------------

    def status_strings(self, partial_format: bool = False) -> bytes:
        """The three ``~HS`` strings for the current state."""
        formats = min(len(self.pending), 999)
        remaining = min(
            sum(job.quantity if isinstance(job, Label) else 1 for job in self.pending),
            99_999_999,
        )
        one = (
            f"{_COMM_SETTINGS:03d},{int(self.paper_out)},{int(self.paused)},"
            f"{self.options.label_length_dots:04d},{formats:03d},0,0,{int(partial_format)},000,0,0,0"
        )
        # 001: thermal transfer media; print mode 2 tear-off; format-while-printing 1.
        two = f"001,0,{int(self.head_open)},{int(self.ribbon_out)},1,2,6,0,{remaining:08d},1,000"
        three = f"{self.options.password},0"
        return frame_status(one, two, three)

    def identification(self) -> bytes:
        return frame_status(f"{self.options.model},{self.options.firmware},8,8192KB")

    # -- label flow ----------------------------------------------------------------

    async def next_label(self, timeout_s: float = 5.0) -> Label:
        """The next printed label not yet returned by this method."""
        await self.wait_for(lambda: len(self.labels) > self._read_cursor, timeout_s)
        label = self.labels[self._read_cursor]
        self._read_cursor += 1
        return label

    def _start_behaviour(self) -> None:
        self.tasks.spawn(self._print_loop(), "print")
        if self._serial is not None:
            self.tasks.spawn(self._serial_loop(self._serial), "serial-rx")

    async def _print_loop(self) -> None:
        while True:
            await self.changes.wait_for(lambda: bool(self.pending) and self.ready, None)
            if self.options.print_time_s > 0:
                await asyncio.sleep(self.options.print_time_s)
                if not self.ready:
                    continue
            job = self.pending.pop(0)
            if isinstance(job, PdfDocument):
                self.documents.append(job)
                self.log.info("PDF printed", size=len(job.data))
            else:
                self.labels.append(job)
                self.log.info("label printed", fields=len(job.fields), sscc=job.sscc)
            self.changes.notify()

    async def _handle(self, items: list[Label | Immediate | PdfDocument], link: _Link) -> None:
        for item in items:
            if isinstance(item, Label | PdfDocument):
                self.pending.append(item)
                self.changes.notify()
                continue
            name = item.name
            if name == "HS":
                self.status_requests += 1
                if self._mute:
                    self.unanswered_status_requests += 1
                    continue
                await self._reply(link, self.status_strings(item.partial_format))
            elif name == "HI":
                await self._reply(link, self.identification())
            elif name == "PS":
                self.paused = False
            elif name == "PP":
                self.paused = True
            elif name == "JA":
                self.log.info("formats cancelled", count=len(self.pending))
                self.pending.clear()
                self.changes.notify()

    async def _reply(self, link: _Link, data: bytes) -> None:
        if self.reply_delay_s > 0:
            await asyncio.sleep(self.reply_delay_s)
        await link.write(data)

    async def send_garbage(self, data: bytes = DEFAULT_GARBAGE) -> None:
        """Line noise to the client being served."""
        self.log.warning("fault injected: garbage", nbytes=len(data))
        if self._current is not None:
            await self._current.write(data)

    # -- serial link ---------------------------------------------------------------

    def _serial_data(self, data: bytes) -> None:
        for item in self._serial_interp.feed(data):
            self._serial_items.put_nowait(item)

    async def _serial_loop(self, endpoint: SerialEndpoint) -> None:
        # One consumer keeps answers in the order the commands arrived.
        link = _Link(None, endpoint)
        while True:
            item = await self._serial_items.get()
            await self._handle([item], link)

    # -- TCP link ------------------------------------------------------------------

    async def _open_link(self) -> None:
        if self._serial is not None:
            await self._serial.open()
            self._current = _Link(None, self._serial)
            return
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close_link(self) -> None:
        if self._serial is not None:
            await self._serial.close()
            self._current = None
            return
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._sessions.cancel_all()
        await self._server.wait_closed()
        self._writers.clear()
        self._server = None

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._writers.add(writer)
        peer = writer.get_extra_info("peername")
        self._sessions.spawn(self._session(reader, writer), f"client:{peer[0]}:{peer[1]}")

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            # The raw port serves one client at a time; later ones wait, unread.
            async with self._one_client:
                self.connections_served += 1
                self.log.info("client connected", peer=peer)
                link = _Link(writer, None)
                self._current = link
                interp = ZplInterpreter()
                try:
                    while data := await reader.read(65536):
                        items = interp.feed(data)
                        await self._handle(items, link)
                except ConnectionError:
                    pass
                finally:
                    self._current = None
                    self.log.info("client disconnected", peer=peer)
        finally:
            self._writers.discard(writer)
            writer.close()
