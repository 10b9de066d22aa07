"""Modbus TCP buses: one client and one lock per gateway, shared by its devices.

Two PTL panels behind one Modbus gateway (different unit ids) share the client, so
their requests never interleave on the wire; an optional gap between frames gives
slow RS-485 gateways time to turn the line around. pymodbus' own reconnect is off:
reconnects follow the drivers' backoff, and pymodbus errors are translated here into
:class:`~wcs.errors.DeviceUnavailable` (link) or :class:`~wcs.errors.ProtocolError`
(the device answered with a Modbus exception).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ModbusPDU

from wcs.errors import ConfigError, DeviceUnavailable, ProtocolError
from wcs.floor import ModbusLink

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge",
    6: "device busy",
    10: "gateway path unavailable",
    11: "gateway target did not respond",
}


def _cancels() -> int:
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


def _raise_if_cancelled_since(before: int) -> None:
    """Deliver a cancellation that arrived while pymodbus finished a request.

    pymodbus waits for answers with ``asyncio.wait_for``, which on Python 3.11 returns
    the result and drops the cancellation when both happen in the same loop step. A
    poll loop would then never stop: with answers in a millisecond on loopback and a
    short poll interval, a stopped driver hangs its runner. The count is compared with
    the one before the request because on 3.11 a TaskGroup can leave it raised for
    good after a child failed."""
    task = asyncio.current_task()
    if task is not None and task.cancelling() > before:
        raise asyncio.CancelledError


class ModbusHub:
    """The one client of one Modbus TCP gateway (``host:port``)."""

    def __init__(self, host: str, port: int, timeout_s: float = 1.0, gap_s: float = 0.0) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.gap_s = gap_s
        self.lock = asyncio.Lock()
        self.requests = 0
        self._client: AsyncModbusTcpClient | None = None
        self._last_frame = 0.0

    @property
    def name(self) -> str:
        return f"modbus://{self.host}:{self.port}"

    async def _connected(self) -> AsyncModbusTcpClient:
        client = self._client
        if client is not None and client.connected:
            return client
        if client is not None:
            client.close()
        client = AsyncModbusTcpClient(
            self.host,
            port=self.port,
            timeout=self.timeout_s,
            retries=0,
            reconnect_delay=0,  # our backoff decides when to try again
            name=self.name,
        )
        try:
            ok = await client.connect()
        except (ModbusException, OSError) as exc:
            ok = False
            reason = str(exc)
        else:
            reason = "connection refused or timed out"
        if not ok:
            client.close()
            self._client = None
            raise DeviceUnavailable(
                f"Modbus gateway {self.host}:{self.port}: {reason}; check power and network",
                port=self.name,
            )
        self._client = client
        return client

    async def call(
        self,
        unit: int,
        what: str,
        request: Callable[[AsyncModbusTcpClient], Awaitable[ModbusPDU]],
    ) -> ModbusPDU:
        """Run one request under the bus lock; ``what`` names it in error messages."""
        async with self.lock:
            client = await self._connected()
            wait = self._last_frame + self.gap_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            cancels = _cancels()
            try:
                response = await request(client)
                _raise_if_cancelled_since(cancels)
            except (ModbusException, OSError, TimeoutError) as exc:
                self._drop()
                raise DeviceUnavailable(
                    f"Modbus unit {unit} at {self.host}:{self.port} did not answer {what} "
                    f"({exc}); check power, network and the unit id",
                    port=self.name,
                ) from None
            finally:
                self._last_frame = time.monotonic()
                self.requests += 1
        if response.isError():
            code = getattr(response, "exception_code", 0)
            name = EXCEPTION_NAMES.get(code, "unknown exception")
            raise ProtocolError(
                f"Modbus unit {unit} at {self.host}:{self.port} refused {what}: "
                f"exception {code} ({name})",
                port=self.name,
                exception_code=code,
            )
        return response

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def close(self) -> None:
        self._drop()

    # --- typed helpers -------------------------------------------------------------

    async def read_input_registers(self, unit: int, address: int, count: int) -> list[int]:
        response = await self.call(
            unit,
            f"read of input registers {address}-{address + count - 1}",
            lambda c: c.read_input_registers(address, count=count, device_id=unit),
        )
        return list(response.registers[:count])

    async def read_holding_registers(self, unit: int, address: int, count: int) -> list[int]:
        response = await self.call(
            unit,
            f"read of holding registers {address}-{address + count - 1}",
            lambda c: c.read_holding_registers(address, count=count, device_id=unit),
        )
        return list(response.registers[:count])

    async def read_coils(self, unit: int, address: int, count: int) -> list[bool]:
        response = await self.call(
            unit,
            f"read of coils {address}-{address + count - 1}",
            lambda c: c.read_coils(address, count=count, device_id=unit),
        )
        return [bool(b) for b in response.bits[:count]]

    async def read_discrete_inputs(self, unit: int, address: int, count: int) -> list[bool]:
        response = await self.call(
            unit,
            f"read of discrete inputs {address}-{address + count - 1}",
            lambda c: c.read_discrete_inputs(address, count=count, device_id=unit),
        )
        return [bool(b) for b in response.bits[:count]]

    async def write_register(self, unit: int, address: int, value: int) -> None:
        await self.call(
            unit,
            f"write of holding register {address}",
            lambda c: c.write_register(address, value, device_id=unit),
        )

    async def write_registers(self, unit: int, address: int, values: Sequence[int]) -> None:
        await self.call(
            unit,
            f"write of holding registers {address}-{address + len(values) - 1}",
            lambda c: c.write_registers(address, list(values), device_id=unit),
        )

    async def write_coil(self, unit: int, address: int, value: bool) -> None:
        await self.call(
            unit,
            f"write of coil {address}",
            lambda c: c.write_coil(address, value, device_id=unit),
        )

    async def write_coils(self, unit: int, address: int, values: Sequence[bool]) -> None:
        await self.call(
            unit,
            f"write of coils {address}-{address + len(values) - 1}",
            lambda c: c.write_coils(address, list(values), device_id=unit),
        )


@dataclass
class ModbusHubs:
    """One :class:`ModbusHub` per gateway; devices on it are told apart by unit id."""

    hubs: dict[tuple[str, int], ModbusHub] = field(default_factory=dict)
    users: dict[tuple[str, int], dict[int, str]] = field(default_factory=dict)

    def acquire(self, link: ModbusLink, device_id: str) -> ModbusHub:
        key = (link.host, link.port)
        units = self.users.setdefault(key, {})
        owner = units.get(link.unit)
        if owner is not None and owner != device_id:
            raise ConfigError(
                f"devices {owner} and {device_id} both use Modbus unit {link.unit} at "
                f"{link.host}:{link.port}; give each device its own unit id"
            )
        units[link.unit] = device_id
        hub = self.hubs.get(key)
        gap = link.frame_gap_s
        if hub is None:
            hub = self.hubs[key] = ModbusHub(link.host, link.port, link.timeout_s, gap)
        else:
            # Shared bus: the slowest device's needs win.
            hub.timeout_s = max(hub.timeout_s, link.timeout_s)
            hub.gap_s = max(hub.gap_s, gap)
        return hub

    def release(self, link: ModbusLink, device_id: str) -> None:
        key = (link.host, link.port)
        units = self.users.get(key, {})
        if units.get(link.unit) == device_id:
            del units[link.unit]
        if not units and key in self.hubs:
            self.hubs.pop(key).close()
            self.users.pop(key, None)
