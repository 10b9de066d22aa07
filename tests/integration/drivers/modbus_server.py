"""A pymodbus 3.16 server started inside a test, with helpers to poke its registers.

``ModbusSequentialDataBlock(1, values)``: in pymodbus 3.16 a block cannot start at
address 0; a block declared at 1 serves wire address 0 from its first value.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from pymodbus.datastore import (
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusServerContext,
)
from pymodbus.server import ModbusTcpServer

from tests.ports import free_port

COILS, DISCRETE, HOLDING, INPUT = 1, 2, 3, 4


def device_context(size: int = 300, ir: dict[int, int] | None = None) -> ModbusDeviceContext:
    """A unit with every table ``size`` long; ``ir`` presets input registers."""
    inputs = [0] * size
    for address, value in (ir or {}).items():
        inputs[address] = value
    return ModbusDeviceContext(
        co=ModbusSequentialDataBlock(1, [False] * size),
        di=ModbusSequentialDataBlock(1, [False] * size),
        hr=ModbusSequentialDataBlock(1, [0] * size),
        ir=ModbusSequentialDataBlock(1, inputs),
    )


@dataclass
class Registers:
    server: ModbusTcpServer
    port: int

    async def get(self, unit: int, table: int, address: int, count: int = 1) -> list[int]:
        values = await self.server.async_getValues(unit, table, address, count)
        return [int(v) for v in values]

    async def set(self, unit: int, table: int, address: int, values: list[int]) -> None:
        if table in (COILS, DISCRETE):
            await self.server.async_setValues(unit, table, address, [bool(v) for v in values])
        else:
            await self.server.async_setValues(unit, table, address, values)


@contextlib.asynccontextmanager
async def modbus_server(
    units: dict[int, ModbusDeviceContext], port: int = 0
) -> AsyncIterator[Registers]:
    port = port or free_port()
    server = ModbusTcpServer(ModbusServerContext(devices=units), address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    try:
        yield Registers(server, port)
    finally:
        await server.shutdown()
