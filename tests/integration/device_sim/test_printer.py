"""The simulated Zebra printer seen from a host: raw TCP, ZPL in, ~HS strings out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import serial

from device_sim.printer import PrinterOptions, PrinterSim
from device_sim.serial_link import PtyEndpoint
from tests.integration.device_sim.wire import port_closed, read_until

READY = (
    b"\x02030,0,0,1218,000,0,0,0,000,0,0,0\x03\r\n"
    b"\x02001,0,0,0,1,2,6,0,00000000,1,000\x03\r\n"
    b"\x021234,0\x03\r\n"
)
SSCC = "106141411234567897"
LABEL_D = (
    b"^XA^FO40,40^A0N,40,40^FDORDER o123^FS"
    b"^FO40,120^BY3^BCN,160,Y,N,N,D^FD(00)106141411234567897^FS"
    b"^PQ1^XZ"
)


@pytest.fixture
async def printer() -> AsyncIterator[PrinterSim]:
    async with PrinterSim("prn-t", port=0) as sim:
        yield sim


async def connect(sim: PrinterSim) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(sim.host, sim.port)


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    await writer.wait_closed()


async def host_status(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout_s: float = 1.0
) -> list[list[str]]:
    """Send ~HS and split the three framed strings into their fields."""
    writer.write(b"~HS")
    await writer.drain()
    strings = []
    async with asyncio.timeout(timeout_s):
        for _ in range(3):
            frame = await reader.readuntil(b"\x03\r\n")
            assert frame[:1] == b"\x02"
            strings.append(frame[1:-3].decode("ascii").split(","))
    return strings


async def test_ready_printer_answers_hs_with_three_framed_strings(printer: PrinterSim) -> None:
    reader, writer = await connect(printer)
    try:
        writer.write(b"~HS")
        await writer.drain()
        async with asyncio.timeout(1):
            data = await reader.readexactly(len(READY))
    finally:
        await close(writer)
    assert data == READY


@pytest.mark.parametrize(
    ("fault", "string", "field"),
    [
        ("paper_out", 0, 1),
        ("paused", 0, 2),
        ("head_open", 1, 2),
        ("ribbon_out", 1, 3),
    ],
)
async def test_each_fault_raises_its_flag(
    printer: PrinterSim, fault: str, string: int, field: int
) -> None:
    reader, writer = await connect(printer)
    try:
        before = await host_status(reader, writer)
        setattr(printer, fault, True)
        during = await host_status(reader, writer)
        printer.clear_faults()
        after = await host_status(reader, writer)
    finally:
        await close(writer)
    assert before[string][field] == "0"
    assert during[string][field] == "1"
    assert after == before
    flags = [during[0][1], during[0][2], during[1][2], during[1][3]]
    assert flags.count("1") == 1, "only the injected fault shows"


async def test_label_is_printed_and_its_sscc_readable(printer: PrinterSim) -> None:
    reader, writer = await connect(printer)
    try:
        writer.write(LABEL_D)
        await writer.drain()
        label = await printer.next_label(timeout_s=1)
        status = await host_status(reader, writer)
    finally:
        await close(writer)
    assert label.sscc == SSCC
    assert label.texts == ["ORDER o123"]
    (barcode,) = label.barcodes
    assert (barcode.symbology, barcode.data, barcode.gs1) == ("code128", "00" + SSCC, True)
    assert status[0][4] == "000", "nothing left in the buffer"


async def test_label_split_across_segments_with_invocation_codes_and_hex(
    printer: PrinterSim,
) -> None:
    zpl = b"^XA^FH^FO10,10^FDA_3EB^FS^FO10,60^BCN,100,N^FD>;>800" + SSCC.encode() + b"^FS^XZ"
    _reader, writer = await connect(printer)
    try:
        for i in range(0, len(zpl), 5):
            writer.write(zpl[i : i + 5])
            await writer.drain()
            await asyncio.sleep(0)
        label = await printer.next_label(timeout_s=1)
    finally:
        await close(writer)
    assert label.texts == ["A>B"]
    assert label.sscc == SSCC
    assert label.barcodes[0].data == "00" + SSCC


async def test_paper_out_holds_formats_until_cleared(printer: PrinterSim) -> None:
    printer.paper_out = True
    reader, writer = await connect(printer)
    try:
        writer.write(LABEL_D + LABEL_D.replace(b"^PQ1", b"^PQ2"))
        await writer.drain()
        await printer.wait_for(lambda: len(printer.pending) == 2, 1)
        one, two, _ = await host_status(reader, writer)
        assert (one[1], one[4], two[8]) == ("1", "002", "00000003")
        assert printer.labels == []
        printer.paper_out = False
        await printer.wait_for(lambda: len(printer.labels) == 2, 1)
        one, two, _ = await host_status(reader, writer)
        assert (one[1], one[4], two[8]) == ("0", "000", "00000000")
    finally:
        await close(writer)


async def test_pause_resume_and_cancel_by_command(printer: PrinterSim) -> None:
    reader, writer = await connect(printer)
    try:
        writer.write(b"~PP" + LABEL_D)
        await writer.drain()
        await printer.wait_for(lambda: len(printer.pending) == 1, 1)
        assert (await host_status(reader, writer))[0][2] == "1"
        writer.write(b"~JA~PS")
        await writer.drain()
        await printer.wait_for(lambda: not printer.paused, 1)
        assert printer.pending == [] and printer.labels == []
        assert (await host_status(reader, writer))[0][2] == "0"
    finally:
        await close(writer)


async def test_partial_format_flag(printer: PrinterSim) -> None:
    reader, writer = await connect(printer)
    try:
        writer.write(b"^XA^FO10,10^FDhalf^FS")
        await writer.drain()
        assert (await host_status(reader, writer))[0][7] == "1"
        writer.write(b"^XZ")
        await writer.drain()
        await printer.next_label(timeout_s=1)
        assert (await host_status(reader, writer))[0][7] == "0"
    finally:
        await close(writer)


async def test_silent_while_media_out_or_head_open_when_configured() -> None:
    options = PrinterOptions(silent_on_fault=True)
    async with PrinterSim("prn-silent", port=0, options=options) as printer:
        reader, writer = await connect(printer)
        try:
            printer.head_open = True
            with pytest.raises(TimeoutError):
                await host_status(reader, writer, timeout_s=0.3)
            assert printer.unanswered_status_requests == 1
            printer.paused = True  # pause alone does not silence a Zebra
            printer.head_open = False
            assert (await host_status(reader, writer))[0][2] == "1"
        finally:
            await close(writer)


async def test_one_client_at_a_time(printer: PrinterSim) -> None:
    reader_a, writer_a = await connect(printer)
    reader_b, writer_b = await connect(printer)
    try:
        assert (await host_status(reader_a, writer_a))[0][1] == "0"
        writer_b.write(b"~HS")
        await writer_b.drain()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await reader_b.readuntil(b"\x03\r\n")
        await close(writer_a)
        async with asyncio.timeout(1):
            data = await reader_b.readexactly(len(READY))
        assert data == READY
        assert printer.connections_served == 2
    finally:
        await close(writer_b)


async def test_slow_status_answer(printer: PrinterSim) -> None:
    printer.reply_delay_s = 0.3
    reader, writer = await connect(printer)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await host_status(reader, writer, timeout_s=2)
        assert loop.time() - started >= 0.3
    finally:
        await close(writer)


async def test_garbage_to_the_client(printer: PrinterSim) -> None:
    reader, writer = await connect(printer)
    try:
        await printer.wait_for(lambda: printer.connections_served == 1, 1)
        await printer.send_garbage(b"\xff\x00junk")
        async with asyncio.timeout(1):
            assert await reader.readexactly(6) == b"\xff\x00junk"
    finally:
        await close(writer)


async def test_disconnect_and_reconnect(printer: PrinterSim) -> None:
    reader, writer = await connect(printer)
    try:
        await printer.disconnect()
        async with asyncio.timeout(1):
            assert await reader.read() == b""
    finally:
        await close(writer)
    assert await port_closed(printer.host, printer.port)
    await printer.reconnect()
    reader, writer = await connect(printer)
    try:
        assert (await host_status(reader, writer))[0][1] == "0"
    finally:
        await close(writer)


async def test_identification() -> None:
    async with PrinterSim("prn-hi", port=0) as printer:
        reader, writer = await connect(printer)
        try:
            writer.write(b"~HI")
            await writer.drain()
            async with asyncio.timeout(1):
                frame = await reader.readuntil(b"\x03\r\n")
        finally:
            await close(writer)
    assert frame == b"\x02ZD621-203dpi,V93.21.26Z,8,8192KB\x03\r\n"


async def test_serially_attached_printer() -> None:
    async with PrinterSim.over_serial("prn-serial", PtyEndpoint("prn-serial")) as printer:
        port = serial.Serial(printer.address, timeout=0)
        try:
            port.write(LABEL_D + b"~HS")
            status = await read_until(port, b"1234,0\x03\r\n")
            label = await printer.next_label(timeout_s=1)
        finally:
            port.close()
    assert status.startswith(b"\x02030,0,0,1218,")
    assert label.sscc == SSCC
