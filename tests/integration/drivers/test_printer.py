"""Printer driver against a test-side raw-TCP (port 9100 style) printer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from tests.integration.drivers.support import Watch, make_driver, running
from wcs.floor import PrinterDevice, TcpLink
from wcs.settings import MqttEndpoint

LABEL = "^XA^FO50,50^BY3^BCN,120,Y,N,N,D^FD(00)106141411234567897^FS^XZ"


@dataclass
class Zebra:
    """The printer's side: answers ~HS with three status strings, keeps the ZPL."""

    paper_out: bool = False
    paused: bool = False
    head_up: bool = False
    ribbon_out: bool = False
    answer_status: bool = True
    zpl: bytearray = field(default_factory=bytearray)
    connections: int = 0
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    def host_status(self) -> bytes:
        f = {k: int(getattr(self, k)) for k in ("paper_out", "paused", "head_up", "ribbon_out")}
        one = f"030,{f['paper_out']},{f['paused']},1245,000,0,0,0,000,0,0,0"
        two = f"001,0,{f['head_up']},{f['ribbon_out']},1,2,6,0,00000000,1,000"
        return b"".join(b"\x02" + s.encode() + b"\x03\r\n" for s in (one, two, "1234,0"))

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        buffer = b""
        try:
            while data := await reader.read(4096):
                buffer += data
                while b"~HS" in buffer:
                    before, buffer = buffer.split(b"~HS", 1)
                    self.zpl += before
                    if self.answer_status:
                        writer.write(self.host_status())
                if b"^XZ" in buffer.upper():
                    cut = buffer.upper().rindex(b"^XZ") + 3
                    self.zpl += buffer[:cut]
                    buffer = buffer[cut:]
        except ConnectionError:
            pass
        finally:
            writer.close()

    def drop_connections(self) -> None:
        for writer in self._writers:
            writer.close()
        self._writers.clear()


@contextlib.asynccontextmanager
async def zebra(printer: Zebra, port: int = 0) -> AsyncIterator[int]:
    server = await asyncio.start_server(printer.serve, "127.0.0.1", port, reuse_address=True)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        printer.drop_connections()
        await server.wait_closed()


def device(port: int) -> PrinterDevice:
    return PrinterDevice(
        id="prn-p1",
        zone="pack",
        station="P1",
        link=TcpLink(host="127.0.0.1", port=port),
        status_poll_s=0.1,
        status_timeout_s=0.3,
    )


async def test_print_is_sent_and_acked(
    mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    printer = Zebra()
    async with zebra(printer) as port, running(make_driver(device(port), mqtt_endpoint, site)):
        await watch.status("prn-p1", "online")
        cmd = await watch.command("prn-p1", "print", zpl=LABEL, job_id="106141411234567897")
        ack = await watch.ack("prn-p1", cmd)
        await asyncio.sleep(0.05)
    assert ack["ok"] is True and ack["error"] is None
    assert printer.zpl.decode() == LABEL


async def test_paper_out_is_a_fault_and_blocks_printing(
    mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    printer = Zebra()
    async with zebra(printer) as port, running(make_driver(device(port), mqtt_endpoint, site)):
        await watch.status("prn-p1", "online")
        printer.paper_out = True
        fault = await watch.status("prn-p1", "fault")
        assert fault["detail"] == "paper out"
        cmd = await watch.command("prn-p1", "print", zpl=LABEL)
        refused = await watch.ack("prn-p1", cmd)
        assert refused == {**refused, "ok": False, "error": "paper out"}
        assert printer.zpl == b""
        printer.paper_out = False
        await watch.status("prn-p1", "online")
        cmd = await watch.command("prn-p1", "print", zpl=LABEL)
        assert (await watch.ack("prn-p1", cmd))["ok"] is True
        printer.head_up, printer.ribbon_out, printer.paused = True, True, True
        fault = await watch.status("prn-p1", "fault", detail="ribbon")
        assert fault["detail"] == "head open, ribbon out, paused"
        await asyncio.sleep(0.05)
    assert printer.zpl.decode() == LABEL


async def test_silent_printer_is_a_possible_fault(
    mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    printer = Zebra()
    async with zebra(printer) as port, running(make_driver(device(port), mqtt_endpoint, site)):
        await watch.status("prn-p1", "online")
        printer.answer_status = False  # what a Zebra may do with the head open
        fault = await watch.status("prn-p1", "fault")
        assert "does not answer ~HS" in fault["detail"]
        cmd = await watch.command("prn-p1", "print", zpl=LABEL)
        assert "does not answer ~HS" in (await watch.ack("prn-p1", cmd))["error"]
        printer.answer_status = True
        await watch.status("prn-p1", "online")


async def test_incomplete_zpl_is_refused(
    mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    printer = Zebra()
    async with zebra(printer) as port, running(make_driver(device(port), mqtt_endpoint, site)):
        await watch.status("prn-p1", "online")
        cmd = await watch.command("prn-p1", "print", zpl="^XA^FDhalf a label^FS")
        ack = await watch.ack("prn-p1", cmd)
    assert ack["ok"] is False and "not closed" in ack["error"]
    assert printer.zpl == b""


async def test_printer_restart_is_survived(
    mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    printer = Zebra()
    async with zebra(printer) as port:
        driver = make_driver(device(port), mqtt_endpoint, site)
        async with running(driver):
            await watch.status("prn-p1", "online")
            printer.drop_connections()
            await watch.status("prn-p1", "fault", detail=f"tcp://127.0.0.1:{port}")
            await watch.status("prn-p1", "online")
            cmd = await watch.command("prn-p1", "print", zpl=LABEL)
            assert (await watch.ack("prn-p1", cmd))["ok"] is True
            await asyncio.sleep(0.05)
    assert printer.connections >= 2
    assert printer.zpl.decode() == LABEL
