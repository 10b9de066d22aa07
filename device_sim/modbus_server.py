"""The Modbus TCP side of a simulated PLC or panel, on pymodbus's server.

A device keeps a *process image* (:class:`RegisterImage`): the coils, discrete inputs,
holding and input registers its register map defines, at their 0-based wire addresses.
The device logic reads and changes the image directly; a pymodbus ``SimDevice`` action
copies the image into pymodbus's memory on every request and copies host writes back,
then calls :meth:`ModbusSim._on_host_write` so the device can react (a heartbeat, a
divert request). Addresses outside the map answer exception 2 (illegal data address);
for coils and discrete inputs pymodbus stores bits in 16-bit words, so a read that
*starts* inside the map may run on into the rest of the last word and read zeros.

The server answers only its own unit id; any other unit gets exception 0x0B (gateway
target failed to respond), as a Modbus TCP gateway does for an absent device.

Faults a test can inject, each seen by the host as it would be on the floor:

- :meth:`ModbusSim.answer_with_exception` - every request gets that exception code
  (2 illegal address, 4 device failure, 6 busy ...); nothing is read or written.
- :meth:`ModbusSim.stop_answering` - requests are neither executed nor answered, for a
  while or until :meth:`ModbusSim.resume_answering`: the client times out.
- ``reply_delay_s`` - every answer comes this late (a slow or overloaded PLC).
- ``garbage_replies`` - answers are corrupted on the wire (every byte inverted with
  0xA5), so the client cannot frame them.
- :meth:`disconnect` / :meth:`reconnect` / :meth:`outage` - listener and open
  connections closed; the image (the PLC's memory) survives.
"""

from __future__ import annotations

import asyncio
import enum
import errno
from collections.abc import Iterable, Sequence
from typing import Any, cast

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from device_sim.base import Simulator, now, sleep_until
from wcs.register_maps import Reg


class Table(enum.Enum):
    COILS = "coils"
    DISCRETE_INPUTS = "discrete inputs"
    HOLDING = "holding registers"
    INPUT = "input registers"


_FUNCTION_TABLE = {
    1: Table.COILS,
    5: Table.COILS,
    15: Table.COILS,
    2: Table.DISCRETE_INPUTS,
    3: Table.HOLDING,
    6: Table.HOLDING,
    16: Table.HOLDING,
    22: Table.HOLDING,
    23: Table.HOLDING,
    4: Table.INPUT,
}
_BIT_TABLES = (Table.COILS, Table.DISCRETE_INPUTS)


class RegisterImage:
    """The device's memory, by table and 0-based wire address."""

    def __init__(self) -> None:
        self.coils: dict[int, bool] = {}
        self.discrete: dict[int, bool] = {}
        self.holding: dict[int, int] = {}
        self.input: dict[int, int] = {}

    def table(self, table: Table) -> dict[int, Any]:
        tables: dict[Table, dict[int, Any]] = {
            Table.COILS: self.coils,
            Table.DISCRETE_INPUTS: self.discrete,
            Table.HOLDING: self.holding,
            Table.INPUT: self.input,
        }
        return tables[table]


_TABLES = {
    "coil": Table.COILS,
    "discrete": Table.DISCRETE_INPUTS,
    "holding": Table.HOLDING,
    "input": Table.INPUT,
}


class Fields:
    """The device's side of its register map: each value by field and slot, kept in the
    image at the addresses the map gives, words and scale as the map says.

    Written for the simulator on its own (the drivers have their own encoding), so a
    mistake in one cannot hide by being copied into the other."""

    def __init__(self, image: RegisterImage, numbering: int, word_order: str) -> None:
        self.image = image
        self.numbering = numbering
        self.low_first = word_order == "low_first"

    def where(self, reg: Reg, slot: int = 1) -> tuple[Table, int]:
        """The table and the first wire address of ``reg`` for ``slot``."""
        return _TABLES[reg.table], reg.address - self.numbering + reg.stride * (slot - 1)

    def declare(self, reg: Reg, slots: int = 1, value: int = 0) -> None:
        for slot in range(1, slots + 1):
            table, address = self.where(reg, slot)
            for word in range(reg.words):
                self.image.table(table)[address + word] = False if table in _BIT_TABLES else 0
            self.set(reg, value, slot)

    def get(self, reg: Reg, slot: int = 1) -> int:
        table, address = self.where(reg, slot)
        cells = self.image.table(table)
        if table in _BIT_TABLES:
            return int(bool(cells[address]))
        if reg.words == 1:
            raw = int(cells[address])
        else:
            first, second = int(cells[address]), int(cells[address + 1])
            high, low = (second, first) if self.low_first else (first, second)
            raw = high * 65536 + low
        return raw // reg.scale

    def set(self, reg: Reg, value: int, slot: int = 1) -> None:
        table, address = self.where(reg, slot)
        cells = self.image.table(table)
        if table in _BIT_TABLES:
            cells[address] = bool(value)
            return
        raw = value * reg.scale
        if reg.words == 1:
            cells[address] = raw % 65536
            return
        high, low = (raw // 65536) % 65536, raw % 65536
        cells[address], cells[address + 1] = (low, high) if self.low_first else (high, low)

    def touches(self, reg: Reg, table: Table, start: int, count: int, slot: int = 1) -> bool:
        """Whether a write of ``count`` values at ``start`` in ``table`` reached ``reg``."""
        where, address = self.where(reg, slot)
        return where is table and start < address + reg.words and address < start + count


def address_runs(addresses: Iterable[int]) -> list[tuple[int, int]]:
    """Contiguous ``(start, count)`` runs of a set of addresses."""
    runs: list[tuple[int, int]] = []
    for address in sorted(addresses):
        if runs and runs[-1][0] + runs[-1][1] == address:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((address, 1))
    return runs


class _OneUnit:
    """pymodbus datastore wrapper that answers one unit id only (0 = any)."""

    def __init__(self, inner: Any, unit: int) -> None:
        self._inner = inner
        self._unit = unit

    def _check(self, device_id: int) -> None:
        if self._unit and device_id != self._unit:
            raise NoSuchIdException(f"unit {device_id} is not this device (unit {self._unit})")

    def device_ids(self) -> list[int]:
        return [self._unit]

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> Any:
        self._check(device_id)
        return await self._inner.async_getValues(device_id, func_code, address, count)

    async def async_setValues(
        self, device_id: int, func_code: int, address: int, values: Any
    ) -> Any:
        self._check(device_id)
        return await self._inner.async_setValues(device_id, func_code, address, values)


class ModbusSim(Simulator):
    """Base of the Modbus TCP simulators: server lifecycle, image mirroring, faults."""

    def __init__(
        self, device_id: str, *, host: str, port: int, unit: int, reply_delay_s: float = 0.0
    ):
        super().__init__(device_id)
        if not 0 <= unit <= 247:
            raise ValueError("Modbus unit id must be 0-247")
        self.host = host
        self.port = port
        self.unit = unit
        self.image = RegisterImage()
        self.reply_delay_s = reply_delay_s
        self.garbage_replies = False
        self.exception_code: int | None = None
        self.dropped_replies = 0
        self.clients = 0
        self._silent_until: float | None = None
        self._server: ModbusTcpServer | None = None
        self._closing = asyncio.Event()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port} unit {self.unit}"

    # -- faults --------------------------------------------------------------------

    def answer_with_exception(self, code: int | None) -> None:
        """Answer every request with Modbus exception ``code``; ``None`` to stop."""
        if code is not None:
            ExcCodes(code)  # refuse codes that are not Modbus exception codes
            self.log.warning("fault injected: exception responses", code=code)
        self.exception_code = code

    def stop_answering(self, duration_s: float | None = None) -> None:
        """Neither execute nor answer requests, for ``duration_s`` or until resumed."""
        self._silent_until = float("inf") if duration_s is None else now() + duration_s
        self.log.warning("fault injected: not answering", duration_s=duration_s)

    def resume_answering(self) -> None:
        self._silent_until = None

    @property
    def answering(self) -> bool:
        return self._silent_until is None or now() >= self._silent_until

    # -- server --------------------------------------------------------------------

    def _build_device(self) -> SimDevice:
        def blocks(table: Table) -> list[SimData]:
            image = self.image.table(table)
            bits = table in _BIT_TABLES
            # pymodbus needs every table to hold something; an unmapped table gets
            # one placeholder that the action refuses like any unmapped address.
            runs = address_runs(image) or [(0, 1)]
            if bits:
                return [
                    SimData(start, values=[False] * count, datatype=DataType.BITS)
                    for start, count in runs
                ]
            return [
                SimData(start, count=count, values=0, datatype=DataType.REGISTERS)
                for start, count in runs
            ]

        return SimDevice(
            id=self.unit,
            simdata=(
                blocks(Table.COILS),
                blocks(Table.DISCRETE_INPUTS),
                blocks(Table.HOLDING),
                blocks(Table.INPUT),
            ),
            action=self._action,
        )

    async def _open_link(self) -> None:
        self._closing.clear()
        server = ModbusTcpServer(
            self._build_device(),
            address=(self.host, self.port),
            trace_packet=self._trace_packet,
            trace_connect=self._trace_connect,
        )
        server.context = cast(Any, _OneUnit(server.context, self.unit))
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:
            raise OSError(errno.EADDRINUSE, f"cannot listen on {self.host}:{self.port}") from exc
        listener = cast(asyncio.Server, server.transport)
        self.port = listener.sockets[0].getsockname()[1]
        self._server = server

    async def _close_link(self) -> None:
        self._closing.set()
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
        # Let the closed connections' callbacks run before anyone rebinds the port.
        await asyncio.sleep(0)

    def _trace_connect(self, connected: bool) -> None:
        self.clients = max(self.clients + (1 if connected else -1), 0)
        self.log.info("host connected" if connected else "host disconnected", clients=self.clients)

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            return data
        if not self.answering:
            self.dropped_replies += 1
            return b""
        if self.garbage_replies:
            return bytes(b ^ 0xA5 for b in data)
        return data

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: Sequence[int] | Sequence[bool] | None,
    ) -> ExcCodes | None:
        del count  # for bit tables pymodbus passes words here, not bits
        table = _FUNCTION_TABLE.get(function_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        if not self.answering:
            # Not executed; the reply is dropped on the way out (_trace_packet).
            return ExcCodes.DEVICE_BUSY
        if self.reply_delay_s > 0:
            await sleep_until(now() + self.reply_delay_s, self._closing)
        if self.exception_code is not None:
            return ExcCodes(self.exception_code)
        image = self.image.table(table)
        if address not in image:
            return ExcCodes.ILLEGAL_ADDRESS
        if set_values is not None:
            addresses = range(address, address + len(set_values))
            if any(a not in image for a in addresses):
                return ExcCodes.ILLEGAL_ADDRESS
            old = [image[a] for a in addresses]
            new: list[Any] = [bool(v) if table in _BIT_TABLES else int(v) for v in set_values]
            for a, value in zip(addresses, new, strict=True):
                image[a] = value
            self._on_host_write(table, address, old, new)
            self.changes.notify()
        self._render(table, start_address, registers)
        return None

    def _render(self, table: Table, start: int, registers: list[int]) -> None:
        image = self.image.table(table)
        # pymodbus keeps one spare word after each block; it is never served.
        if table in _BIT_TABLES:
            for word in range(len(registers) - 1):
                base = (start + word) * 16
                registers[word] = sum(1 << bit for bit in range(16) if image.get(base + bit))
            return
        for offset in range(len(registers) - 1):
            value = image.get(start + offset)
            if value is not None:
                registers[offset] = value

    def _on_host_write(self, table: Table, address: int, old: list[Any], new: list[Any]) -> None:
        """React to a host write; ``old``/``new`` are the values before and after."""
