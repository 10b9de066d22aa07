"""Scanner driver over real ports (pty and socket://) and the real broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from tests.integration.drivers.support import Pty, Watch, make_driver, running
from wcs.floor import ScannerDevice, SerialLink
from wcs.settings import MqttEndpoint

GS = b"\x1d"
Peers = asyncio.Queue[asyncio.StreamWriter]


def scanner(url: str, terminator: str = "auto") -> ScannerDevice:
    return ScannerDevice(
        id="scan-p1",
        zone="pack",
        station="P1",
        link=SerialLink(url=url),
        terminator=terminator,  # type: ignore[arg-type]
    )


async def test_pty_scans_reach_the_broker(
    pty: Pty, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    driver = make_driver(scanner(pty.path), mqtt_endpoint, site)
    async with running(driver):
        status = await watch.status("scan-p1", "online")
        assert status["kind"] == "scanner" and status["zone"] == "pack"
        # split frames and a CRLF split across two writes
        await pty.write(b"]C10010614141123")
        await asyncio.sleep(0.02)
        await pty.write(b"4567897\r")
        await asyncio.sleep(0.02)
        await pty.write(b"\n]E04006381333931\r\n]d20109501101530003" + GS + b"10LOT7\r\n")
        scans = await watch.expect("dev/scan-p1/evt/scan", 3)
        assert [(s["code"], s["symbology"]) for s in scans] == [
            ("00106141411234567897", "]C1"),
            ("4006381333931", "]E0"),
            ("0109501101530003\x1d10LOT7", "]d2"),
        ]
        assert len({s["msg_id"] for s in scans}) == 3
        assert all(s["v"] == 1 and s["ts"].endswith("Z") for s in scans)
        assert watch.on("dlq") == []


async def test_noise_goes_to_dlq_and_codes_reach_the_broker_as_read(
    pty: Pty, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    """A frame that cannot be a code goes to dlq; a code goes on as read, a wrong GS1
    check digit included: the controller refuses it where the picker sees why."""
    driver = make_driver(scanner(pty.path, "CR"), mqtt_endpoint, site)
    async with running(driver):
        await watch.status("scan-p1", "online")
        await pty.write(b"]C100106141411234567890\rAB\x07CD\rT000123\r")
        scans = await watch.expect("dev/scan-p1/evt/scan", 2)
        (dead,) = await watch.expect("dlq")
    assert [(s["code"], s["symbology"]) for s in scans] == [
        ("00106141411234567890", "]C1"),
        ("T000123", None),
    ]
    assert dead["raw"] == "AB\x07CD"
    assert "control byte 0x07" in dead["error"]
    assert dead["topic"] == pty.path
    assert driver.counters.bad_frames == 1 and driver.counters.frames == 2


@contextlib.asynccontextmanager
async def serial_server(port: int = 0) -> AsyncIterator[tuple[asyncio.Server, Peers]]:
    """A serial device server: the scanner's bytes come out of a TCP socket."""
    peers: Peers = asyncio.Queue()

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await peers.put(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", port, reuse_address=True)
    try:
        yield server, peers
    finally:
        server.close()
        while not peers.empty():
            peers.get_nowait().close()
        await server.wait_closed()


async def test_socket_url(mqtt_endpoint: MqttEndpoint, site: str, watch: Watch) -> None:
    async with serial_server() as (server, peers):
        port = server.sockets[0].getsockname()[1]
        driver = make_driver(scanner(f"socket://127.0.0.1:{port}", "CRLF"), mqtt_endpoint, site)
        async with running(driver):
            peer = await asyncio.wait_for(peers.get(), 5)
            await watch.status("scan-p1", "online")
            peer.write(b"]Q1https://example.com/t/9\r\n]C0A-01-02-1\r")
            peer.write(b"\n")
            await peer.drain()
            scans = await watch.expect("dev/scan-p1/evt/scan", 2)
            peer.close()
    assert [s["code"] for s in scans] == ["https://example.com/t/9", "A-01-02-1"]


async def test_socket_server_gone_and_back(
    mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    async with serial_server() as (server, peers):
        port = server.sockets[0].getsockname()[1]
        driver = make_driver(scanner(f"socket://127.0.0.1:{port}"), mqtt_endpoint, site)
        async with running(driver):
            peer = await asyncio.wait_for(peers.get(), 5)
            await watch.status("scan-p1", "online")
            server.close()
            peer.close()
            await server.wait_closed()
            fault = await watch.status("scan-p1", "fault")
            assert f"socket://127.0.0.1:{port}" in fault["detail"]
            async with serial_server(port) as (_, peers2):
                peer2 = await asyncio.wait_for(peers2.get(), 5)
                await watch.status("scan-p1", "online")
                peer2.write(b"AFTER\r\n")
                await peer2.drain()
                (scan,) = await watch.expect("dev/scan-p1/evt/scan")
                peer2.close()
    assert scan["code"] == "AFTER"


async def test_pty_unplugged_and_back(
    pty: Pty, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    driver = make_driver(scanner(pty.path), mqtt_endpoint, site)
    async with running(driver):
        await watch.status("scan-p1", "online")
        await pty.write(b"BEFORE\r")
        await watch.expect("dev/scan-p1/evt/scan", 1)
        pty.unplug()
        fault = await watch.status("scan-p1", "fault")
        assert pty.path in fault["detail"]
        await asyncio.sleep(0.3)  # a few failed reopen attempts while unplugged
        pty.replug()
        await watch.status("scan-p1", "online")
        await pty.write(b"AFTER\r")
        scans = await watch.expect("dev/scan-p1/evt/scan", 2)
    assert [s["code"] for s in scans] == ["BEFORE", "AFTER"]
    assert driver.counters.device_connects >= 2


async def test_stop_publishes_offline(
    pty: Pty, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    driver = make_driver(scanner(pty.path), mqtt_endpoint, site)
    async with running(driver):
        await watch.status("scan-p1", "online")
    status = await watch.status("scan-p1", "offline")
    assert status["detail"] == "driver stopped"


@pytest.mark.parametrize("terminator", ["CR", "CRLF", "auto"])
async def test_terminators_over_a_pty(
    terminator: str, pty: Pty, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    end = b"\r\n" if terminator == "CRLF" else b"\r"
    driver = make_driver(scanner(pty.path, terminator), mqtt_endpoint, site)
    async with running(driver):
        await watch.status("scan-p1", "online")
        await pty.write(b"ONE" + end + b"TWO" + end)
        scans = await watch.expect("dev/scan-p1/evt/scan", 2)
    assert [s["code"] for s in scans] == ["ONE", "TWO"]
