"""Host-side helpers for talking to simulators the way a driver would: raw bytes.

Serial ports are opened with plain pyserial in non-blocking mode (``timeout=0``) and
polled from the event loop, so a test needs no threads while the simulator it talks to
runs on the same loop.
"""

from __future__ import annotations

import asyncio

import serial

POLL_S = 0.002


def open_port(url: str) -> serial.SerialBase:
    """What a driver does: ``serial_for_url`` on ``socket://host:port`` or a pty path."""
    return serial.serial_for_url(url, timeout=0)


async def read_until(port: serial.SerialBase, terminator: bytes, timeout_s: float = 2.0) -> bytes:
    data = b""
    async with asyncio.timeout(timeout_s):
        while terminator not in data:
            data += port.read(4096)
            if terminator not in data:
                await asyncio.sleep(POLL_S)
    return data


async def read_for(port: serial.SerialBase, seconds: float) -> bytes:
    """Everything that arrives within ``seconds`` (to show that nothing does)."""
    data = b""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        data += port.read(4096)
        await asyncio.sleep(POLL_S)
    return data + port.read(4096)


async def read_n(port: serial.SerialBase, count: int, timeout_s: float = 2.0) -> bytes:
    data = b""
    async with asyncio.timeout(timeout_s):
        while len(data) < count:
            data += port.read(count - len(data))
            if len(data) < count:
                await asyncio.sleep(POLL_S)
    return data


async def command(port: serial.SerialBase, line: bytes, timeout_s: float = 2.0) -> bytes:
    """Send one MT-SICS command (CR LF added) and return the reply line."""
    port.write(line + b"\r\n")
    return await read_until(port, b"\r\n", timeout_s)


async def port_closed(host: str, port: int) -> bool:
    try:
        _reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return True
    writer.close()
    await writer.wait_closed()
    return False
