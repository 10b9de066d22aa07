"""Byte-stream links: serial ports by URL (pyserial) and raw TCP sockets.

Both give the drivers the same small pipe, :class:`ByteLink`, and translate every
pyserial/socket failure into :class:`~wcs.errors.DeviceUnavailable` with a message a
floor supervisor can act on. One driver owns one port: :class:`PortClaims` refuses a
second owner, and real serial devices are opened with an exclusive lock so another
program cannot read half of the frames either.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass, field
from typing import Any

import serial
import serial_asyncio_fast

from wcs.errors import ConfigError, DeviceUnavailable
from wcs.floor import SerialLink, TcpLink

READ_CHUNK = 4096


class ByteLink:
    """An open byte stream to one device."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str, who: str
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.name = name  # the port as configured, e.g. socket://10.0.0.5:4001
        self.who = who  # "scanner scan-p1"
        self.closed = False

    async def read(self, size: int = READ_CHUNK) -> bytes:
        """Some bytes (at least one); DeviceUnavailable when the link is gone."""
        try:
            data = await self._reader.read(size)
        except (serial.SerialException, OSError) as exc:
            raise DeviceUnavailable(
                f"{self.who}: lost port {self.name} ({exc}); check the cable and power",
                port=self.name,
            ) from None
        if not data:
            raise DeviceUnavailable(
                f"{self.who}: port {self.name} was closed by the other end; "
                "check the cable, power or serial server",
                port=self.name,
            )
        return data

    async def write(self, data: bytes) -> None:
        if self.closed or self._writer.is_closing():
            raise DeviceUnavailable(f"{self.who}: port {self.name} is closed", port=self.name)
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (serial.SerialException, OSError) as exc:
            raise DeviceUnavailable(
                f"{self.who}: cannot write to {self.name} ({exc}); check the cable and power",
                port=self.name,
            ) from None

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._writer.wait_closed(), 2.0)


def _is_url(port: str) -> bool:
    return "://" in port


async def open_serial(link: SerialLink, who: str, timeout_s: float = 5.0) -> ByteLink:
    """Open a serial port by URL: a device path, ``socket://host:port``, a pty."""
    kwargs: dict[str, Any] = {
        "url": link.url,
        "baudrate": link.baudrate,
        "bytesize": link.bytesize,
        "parity": link.parity,
        "stopbits": link.stopbits,
        "xonxoff": link.xonxoff,
    }
    if not _is_url(link.url):
        kwargs["exclusive"] = True
    try:
        reader, writer = await asyncio.wait_for(
            serial_asyncio_fast.open_serial_connection(**kwargs), timeout_s
        )
    except TimeoutError:
        raise DeviceUnavailable(
            f"{who}: port {link.url} did not open within {timeout_s:g} s; "
            "check the network path to the serial server",
            port=link.url,
        ) from None
    except ConnectionRefusedError:
        raise DeviceUnavailable(
            f"{who}: port {link.url} refused connection; check the cable/serial server",
            port=link.url,
        ) from None
    except (serial.SerialException, OSError, ValueError) as exc:
        raise DeviceUnavailable(
            f"{who}: cannot open port {link.url} ({exc}); check the cable and that no "
            "other program holds the port",
            port=link.url,
        ) from None
    tune_socket(writer)
    return ByteLink(reader, writer, link.url, who)


def tune_socket(writer: asyncio.StreamWriter) -> None:
    """TCP_NODELAY, and keepalive probes so a serial server or printer that lost power
    (no FIN ever comes) is noticed within about half a minute instead of never."""
    sock = writer.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


async def open_tcp(link: TcpLink, who: str, timeout_s: float = 5.0) -> ByteLink:
    name = f"tcp://{link.host}:{link.port}"
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(link.host, link.port), timeout_s
        )
    except TimeoutError:
        raise DeviceUnavailable(
            f"{who}: {name} did not answer within {timeout_s:g} s; check power and network",
            port=name,
        ) from None
    except OSError as exc:
        raise DeviceUnavailable(
            f"{who}: {name} refused connection ({exc.strerror or exc}); check power and "
            "network, and that no other host holds the printer's port",
            port=name,
        ) from None
    tune_socket(writer)
    return ByteLink(reader, writer, name, who)


async def open_link(link: SerialLink | TcpLink, who: str, timeout_s: float = 5.0) -> ByteLink:
    if isinstance(link, TcpLink):
        return await open_tcp(link, who, timeout_s)
    return await open_serial(link, who, timeout_s)


def port_key(link: SerialLink | TcpLink) -> str:
    if isinstance(link, TcpLink):
        return f"tcp://{link.host}:{link.port}"
    return link.url


@dataclass
class PortClaims:
    """Which device owns which byte-stream port: one owner per physical port."""

    owners: dict[str, str] = field(default_factory=dict)

    def claim(self, link: SerialLink | TcpLink, device_id: str) -> None:
        key = port_key(link)
        owner = self.owners.get(key)
        if owner is not None and owner != device_id:
            raise ConfigError(
                f"devices {owner} and {device_id} both use port {key}; "
                "a port has exactly one device"
            )
        self.owners[key] = device_id

    def release(self, link: SerialLink | TcpLink, device_id: str) -> None:
        if self.owners.get(port_key(link)) == device_id:
            del self.owners[port_key(link)]
