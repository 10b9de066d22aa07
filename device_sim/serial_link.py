"""The device end of a serial line: a pty pair or a TCP serial device server.

Serial devices (scanners, scales, serially attached printers) reach their host either
through a real port or through a serial device server (Moxa NPort style) that puts the
line on a TCP port. The simulator offers both:

- :class:`PtyEndpoint`: ``os.openpty()`` in raw mode. The host opens the slave path
  (``/dev/pts/N``) like any tty; an optional symlink gives it a stable name, and is
  re-pointed when the pty is recreated after a disconnect.
- :class:`TcpSerialEndpoint`: a TCP listener; hosts connect with pyserial's
  ``socket://host:port``. Like a device server in TCP-server mode it accepts at most
  ``max_clients`` connections (default 1) and closes any extra one at once.

Bytes written while no host listens are dropped (counted in ``dropped_bytes``), as on a
real line with nothing attached. :class:`SerialSim` adds what every serial device shares
on top of an endpoint: reply delay, garbage injection and the link-fault methods of
:class:`device_sim.base.Simulator`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import errno
import os
import socket
import tty
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import structlog

from device_sim.base import Simulator, TaskSet
from wcs.errors import ConfigError
from wcs.logs import get_logger

DataHandler = Callable[[bytes], None]

# Bytes a noisy line or a mis-set baud rate produces: framing garbage with no terminator.
DEFAULT_GARBAGE = b"\x00\xff\xfe\x13\x11~\x80\x9f"


class SerialEndpoint(abc.ABC):
    """A byte pipe to the host; received bytes go to ``on_data``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.on_data: DataHandler = lambda _data: None
        self.dropped_bytes = 0
        self.log: structlog.stdlib.BoundLogger = get_logger("device_sim.serial").bind(device=name)

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """What the host passes to pyserial ``serial_for_url`` (or opens as a path)."""

    @property
    @abc.abstractmethod
    def is_open(self) -> bool: ...

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def write(self, data: bytes) -> None:
        """Send to the host; dropped (and counted) when nobody listens."""

    async def wait_for_host(self, timeout_s: float) -> None:
        """Return once a host is attached (only TCP can tell; a pty returns at once)."""
        del timeout_s


class PtyEndpoint(SerialEndpoint):
    """A pseudo-terminal pair; the host opens the slave side by path."""

    def __init__(self, name: str, link_path: str | Path | None = None) -> None:
        super().__init__(name)
        self.link_path = Path(link_path) if link_path is not None else None
        self._master: int | None = None
        # Holding the slave open ourselves keeps the master readable while no host has
        # the port open; otherwise the master reports EIO and the reader would spin.
        self._slave: int | None = None
        self._slave_path: str | None = None

    @property
    def slave_path(self) -> str:
        if self._slave_path is None:
            raise RuntimeError(f"{self.name}: pty is not open")
        return self._slave_path

    @property
    def url(self) -> str:
        if self.link_path is not None:
            return str(self.link_path)
        return self._slave_path or "pty (not open)"

    @property
    def is_open(self) -> bool:
        return self._master is not None

    async def open(self) -> None:
        if self._master is not None:
            return
        link = self.link_path
        if link is not None and link.exists() and not link.is_symlink():
            raise ConfigError(f"{link} exists and is not a symlink; not replacing it")
        master, slave = os.openpty()
        # Raw mode: no echo of host bytes back to the host, no CR/LF translation.
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._slave_path = os.ttyname(slave)
        asyncio.get_running_loop().add_reader(master, self._readable)
        if self.link_path is not None:
            self._point_link()
        self.log.debug("pty open", slave=self._slave_path, link=self.link_path)

    def _point_link(self) -> None:
        assert self.link_path is not None and self._slave_path is not None
        # Replace atomically so a host polling for the path never sees it missing.
        tmp = self.link_path.with_name(f".{self.link_path.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(self._slave_path, tmp)
        os.replace(tmp, self.link_path)

    def _readable(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            return
        if data:
            self.on_data(data)

    async def write(self, data: bytes) -> None:
        if self._master is None:
            self.dropped_bytes += len(data)
            return
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._master, view)
            except BlockingIOError:
                # The slave's input queue is full: nobody reads the port. A real line
                # would lose these bytes too.
                self.dropped_bytes += len(view)
                return
            view = view[written:]

    async def close(self) -> None:
        if self._master is None:
            return
        asyncio.get_running_loop().remove_reader(self._master)
        os.close(self._master)
        if self._slave is not None:
            os.close(self._slave)
        if (
            self.link_path is not None
            and self.link_path.is_symlink()
            and os.readlink(self.link_path) == self._slave_path
        ):
            self.link_path.unlink()
        self._master = self._slave = None
        self._slave_path = None


class TcpSerialEndpoint(SerialEndpoint):
    """A serial device server in TCP-server mode (``socket://host:port``)."""

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0, max_clients: int = 1):
        super().__init__(name)
        if max_clients < 1:
            raise ValueError("max_clients must be at least 1")
        self.host = host
        self.port = port
        self.max_clients = max_clients
        self.rejected = 0
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._handlers = TaskSet(f"{name}:tcp", self.log)
        self._attached = asyncio.Event()

    @property
    def url(self) -> str:
        return f"socket://{self.host}:{self.port}"

    @property
    def is_open(self) -> bool:
        return self._server is not None

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def open(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        # Port 0 asks the OS for a free port; report the one actually bound.
        self.port = self._server.sockets[0].getsockname()[1]

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if len(self._clients) >= self.max_clients:
            self.rejected += 1
            self.log.warning("connection refused: port busy", peer=peer)
            writer.close()
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._clients.add(writer)
        self._attached.set()
        self._handlers.spawn(self._serve(reader, writer), f"rx:{peer[0]}:{peer[1]}")
        self.log.info("host connected", peer=peer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(4096):
                self.on_data(data)
        except ConnectionError:
            pass
        finally:
            self._clients.discard(writer)
            if not self._clients:
                self._attached.clear()
            writer.close()
            self.log.info("host disconnected", peer=writer.get_extra_info("peername"))

    async def wait_for_host(self, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            await self._attached.wait()

    async def write(self, data: bytes) -> None:
        if not self._clients:
            self.dropped_bytes += len(data)
            return
        for writer in list(self._clients):
            try:
                writer.write(data)
                await writer.drain()
            except ConnectionError:
                self._clients.discard(writer)

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._clients):
            writer.close()
        await self._handlers.cancel_all()
        await self._server.wait_closed()
        self._clients.clear()
        self._attached.clear()
        self._server = None


def endpoint_for_url(name: str, url: str, *, port_override: int | None = None) -> SerialEndpoint:
    """The endpoint that serves what a driver would open as ``url``.

    ``socket://host:port`` becomes a TCP listener on that port (``port_override``
    replaces it, e.g. 0 for a free port); a filesystem path becomes a pty whose slave is
    symlinked at that path. Other pyserial URL schemes have no device side here.
    """
    if url.startswith("socket://"):
        parts = urlsplit(url)
        if parts.port is None:
            raise ConfigError(f"{name}: serial URL {url!r} has no port")
        port = parts.port if port_override is None else port_override
        return TcpSerialEndpoint(name, parts.hostname or "127.0.0.1", port)
    if "://" in url:
        raise ConfigError(
            f"{name}: cannot simulate a device behind {url!r}; use socket://host:port or a path"
        )
    return PtyEndpoint(name, link_path=url)


class SerialSim(Simulator):
    """A simulated device on a serial line, with the faults every serial link can have.

    Faults: ``reply_delay_s`` (every frame the device sends waits this long),
    :meth:`send_garbage` (line noise), and the link faults of the base class
    (a pty is hung up and recreated; a TCP listener and its clients are closed).
    """

    def __init__(self, device_id: str, endpoint: SerialEndpoint, *, reply_delay_s: float = 0.0):
        super().__init__(device_id)
        self.endpoint = endpoint
        self.reply_delay_s = reply_delay_s
        endpoint.on_data = self._received

    @property
    def address(self) -> str:
        return self.endpoint.url

    @property
    def url(self) -> str:
        """What the host opens: ``socket://host:port``, the pty slave, or its symlink."""
        return self.endpoint.url

    async def _open_link(self) -> None:
        await self.endpoint.open()

    async def _close_link(self) -> None:
        await self.endpoint.close()

    def _received(self, data: bytes) -> None:
        """Bytes from the host; devices that take commands override this."""
        del data

    async def send(self, data: bytes) -> None:
        """Send one frame to the host, after the configured reply delay."""
        if self.reply_delay_s > 0:
            await asyncio.sleep(self.reply_delay_s)
        await self.endpoint.write(data)

    async def send_garbage(self, data: bytes = DEFAULT_GARBAGE) -> None:
        """Put noise on the line: bytes no valid frame contains."""
        self.log.warning("fault injected: garbage", nbytes=len(data))
        await self.endpoint.write(data)

    async def wait_for_host(self, timeout_s: float = 5.0) -> None:
        """Wait until a host has connected (TCP); a pty cannot tell and returns at once."""
        await self.endpoint.wait_for_host(timeout_s)
