"""The Modbus hub: one client per gateway, a gap between frames, errors translated."""

from __future__ import annotations

import asyncio
import time

import pytest

from drivers.modbus_link import ModbusHub, ModbusHubs
from tests.integration.drivers.modbus_server import INPUT, device_context, modbus_server
from tests.ports import free_port
from wcs.errors import ConfigError, DeviceUnavailable, ProtocolError
from wcs.floor import ModbusLink


async def test_shared_bus_keeps_the_frame_gap_and_serialises() -> None:
    async with modbus_server(
        {1: device_context(ir={5: 11}), 2: device_context(ir={5: 22})}
    ) as regs:
        hubs = ModbusHubs()
        a = hubs.acquire(ModbusLink(port=regs.port, unit=1, frame_gap_s=0.0), "ptl-a")
        b = hubs.acquire(ModbusLink(port=regs.port, unit=2, frame_gap_s=0.03), "ptl-b")
        assert a is b and a.gap_s == 0.03  # the slowest device's gap wins on a shared bus
        started = time.monotonic()
        results = await asyncio.gather(
            *(a.read_input_registers(1 + n % 2, 5, 1) for n in range(10))
        )
        elapsed = time.monotonic() - started
        assert results == [[11], [22]] * 5
        assert elapsed >= 9 * 0.03  # ten frames, nine gaps, never two at once
        assert a.requests == 10
        hubs.release(ModbusLink(port=regs.port, unit=1), "ptl-a")
        hubs.release(ModbusLink(port=regs.port, unit=2), "ptl-b")
        assert hubs.hubs == {}


def test_one_unit_one_device() -> None:
    hubs = ModbusHubs()
    hubs.acquire(ModbusLink(port=1502, unit=3), "ptl-a")
    with pytest.raises(ConfigError, match="ptl-a and ptl-b both use Modbus unit 3"):
        hubs.acquire(ModbusLink(port=1502, unit=3), "ptl-b")


async def test_errors_are_translated() -> None:
    hub = ModbusHub("127.0.0.1", free_port(), timeout_s=0.5)
    with pytest.raises(DeviceUnavailable, match="check power and network"):
        await hub.read_input_registers(1, 0, 1)
    async with modbus_server({1: device_context(size=10)}) as regs:
        hub = ModbusHub("127.0.0.1", regs.port, timeout_s=0.5)
        assert await hub.read_input_registers(1, 0, 2) == [0, 0]
        with pytest.raises(ProtocolError, match=r"exception 2 \(illegal data address\)"):
            await hub.read_input_registers(1, 200, 1)
        await regs.set(1, INPUT, 1, [7])
        assert await hub.read_input_registers(1, 1, 1) == [7]  # still usable afterwards
        hub.close()
