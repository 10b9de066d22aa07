"""The simulated scanner seen from a host: raw pyserial on a TCP serial server or a pty."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import serial

from device_sim import gs1
from device_sim.scanner import ScannerOptions, ScannerSim
from device_sim.serial_link import DEFAULT_GARBAGE
from tests.integration.device_sim.wire import open_port, read_for, read_n, read_until
from wcs.errors import ConfigError

SSCC = "106141411234567897"


async def test_gs1_128_sscc_over_tcp_with_aim_prefix_and_crlf() -> None:
    async with ScannerSim.over_tcp("scan-t1") as scanner:
        assert scanner.url.startswith("socket://127.0.0.1:")
        port = open_port(scanner.url)
        try:
            await scanner.wait_for_host(2)
            sent = await scanner.scan(gs1.sscc_element(SSCC))
            received = await read_until(port, b"\n")
        finally:
            port.close()
    assert received == b"]C100106141411234567897\r\n"
    assert sent == received


async def test_ean13_over_pty_with_cr_and_without_aim_prefix() -> None:
    async with ScannerSim.over_pty("scan-t2", options=ScannerOptions(terminator="CR")) as scanner:
        assert scanner.url.startswith("/dev/pts/")
        port = serial.Serial(scanner.url, timeout=0)
        try:
            await scanner.scan(gs1.ean13("400638133393"), symbology="]E0")
            await scanner.scan("T000123", symbology=None)
            received = await read_until(port, b"T000123\r")
        finally:
            port.close()
    assert received == b"]E04006381333931\rT000123\r"


async def test_gs_separator_after_variable_length_element_through_pty_symlink(
    tmp_path: Path,
) -> None:
    link = tmp_path / "ttyScanner"
    code = gs1.element_string(("01", "09506000134352"), ("10", "LOT42"), ("21", "SN7"))
    async with ScannerSim.over_pty("scan-t3", link_path=str(link)) as scanner:
        assert link.is_symlink()
        assert os.readlink(link).startswith("/dev/pts/")
        port = open_port(str(link))
        try:
            await scanner.scan(code, symbology="]d2", terminator="CRLF")
            received = await read_until(port, b"\r\n")
        finally:
            port.close()
    assert received == b"]d20109506000134352" + b"10LOT42\x1d21SN7\r\n"
    assert not link.exists()


async def test_scan_with_no_host_is_lost_not_delivered_later() -> None:
    async with ScannerSim.over_tcp("scan-t4") as scanner:
        await scanner.scan("T000001")
        assert scanner.endpoint.dropped_bytes == len(b"]C1T000001\r\n")
        port = open_port(scanner.url)
        try:
            await scanner.wait_for_host(2)
            await scanner.scan("T000002")
            received = await read_until(port, b"\n")
        finally:
            port.close()
    assert received == b"]C1T000002\r\n"


async def test_tcp_disconnect_breaks_the_client_and_reconnect_serves_again() -> None:
    async with ScannerSim.over_tcp("scan-t5") as scanner:
        url = scanner.url
        port = open_port(url)
        try:
            await scanner.wait_for_host(2)
            await scanner.disconnect()
            with pytest.raises(serial.SerialException):
                await read_for(port, 0.5)
        finally:
            port.close()
        with pytest.raises(serial.SerialException):
            open_port(url)  # nothing listens during the outage
        await scanner.reconnect()
        assert scanner.url == url
        port = open_port(url)
        try:
            await scanner.wait_for_host(2)
            await scanner.scan("T000003")
            assert await read_until(port, b"\n") == b"]C1T000003\r\n"
        finally:
            port.close()


async def test_pty_hangup_and_recreated_port_behind_the_same_symlink(tmp_path: Path) -> None:
    link = tmp_path / "ttyScan"
    async with ScannerSim.over_pty("scan-t6", link_path=str(link)) as scanner:
        port = open_port(str(link))
        try:
            async with scanner.outage():
                assert not link.exists()
                with pytest.raises(serial.SerialException):
                    await read_for(port, 0.2)
        finally:
            port.close()
        assert link.is_symlink()
        port = open_port(str(link))
        try:
            await scanner.scan("T000004")
            assert await read_until(port, b"\n") == b"]C1T000004\r\n"
        finally:
            port.close()


async def test_garbage_then_a_good_scan() -> None:
    async with ScannerSim.over_tcp("scan-t7") as scanner:
        port = open_port(scanner.url)
        try:
            await scanner.wait_for_host(2)
            await scanner.send_garbage()
            await scanner.scan("T000005")
            received = await read_until(port, b"T000005\r\n")
        finally:
            port.close()
    assert received == DEFAULT_GARBAGE + b"]C1T000005\r\n"


async def test_reply_delay_holds_the_transmission_back() -> None:
    options = ScannerOptions(reply_delay_s=0.3)
    async with ScannerSim.over_tcp("scan-t8", options=options) as scanner:
        port = open_port(scanner.url)
        try:
            await scanner.wait_for_host(2)
            loop = asyncio.get_running_loop()
            started = loop.time()
            scan = asyncio.create_task(scanner.scan("T000006"), name="test-scan")
            assert await read_for(port, 0.15) == b""
            assert await read_until(port, b"\n") == b"]C1T000006\r\n"
            assert loop.time() - started >= 0.3
            await scan
        finally:
            port.close()


async def test_a_second_host_is_refused_like_a_busy_device_server_port() -> None:
    async with ScannerSim.over_tcp("scan-t9") as scanner:
        first = open_port(scanner.url)
        try:
            await scanner.wait_for_host(2)
            second = open_port(scanner.url)
            try:
                with pytest.raises(serial.SerialException):
                    await read_for(second, 0.5)
            finally:
                second.close()
            await scanner.scan("T000007")
            assert await read_n(first, 12) == b"]C1T000007\r\n"
            assert scanner.endpoint.rejected == 1  # type: ignore[attr-defined]
        finally:
            first.close()


async def test_frames_are_validated() -> None:
    scanner = ScannerSim.over_tcp("scan-t10")
    with pytest.raises(ValueError, match="terminator"):
        await scanner.scan("X", terminator="LF")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="CR or LF"):
        await scanner.scan("A\rB")
    with pytest.raises(ValueError, match="AIM"):
        await scanner.scan("A", symbology="C1")


async def test_a_real_file_at_the_link_path_is_not_replaced(tmp_path: Path) -> None:
    precious = tmp_path / "ttyUSB0"
    precious.write_text("not a tty")
    scanner = ScannerSim.over_pty("scan-t11", link_path=str(precious))
    with pytest.raises(ConfigError, match="not a symlink"):
        await scanner.start()
    assert precious.read_text() == "not a tty"
    assert not scanner.running
