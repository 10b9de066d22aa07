"""The simulated pick-to-light panel seen from a pymodbus client (0-based addresses)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from device_sim.ptl import PickerBehaviour, PtlOptions, PtlSim

UNIT = 3


@pytest.fixture
async def panel() -> AsyncIterator[PtlSim]:
    async with PtlSim("ptl-t", slots=8, port=0, unit=UNIT) as sim:
        yield sim


@pytest.fixture
async def host(panel: PtlSim) -> AsyncIterator[AsyncModbusTcpClient]:
    client = AsyncModbusTcpClient(panel.host, port=panel.port, timeout=0.5, retries=0)
    assert await client.connect()
    yield client
    client.close()


@pytest.fixture
async def impatient(panel: PtlSim) -> AsyncIterator[AsyncModbusTcpClient]:
    """A client that gives up quickly, for the faults that make it wait."""
    client = AsyncModbusTcpClient(panel.host, port=panel.port, timeout=0.2, retries=0)
    assert await client.connect()
    yield client
    client.close()


async def ir(client: AsyncModbusTcpClient, address: int, count: int = 1) -> list[int]:
    response = await client.read_input_registers(address, count=count, device_id=UNIT)
    assert not response.isError(), response
    return list(response.registers)


async def test_slot_count_light_quantity_and_colour(
    panel: PtlSim, host: AsyncModbusTcpClient
) -> None:
    assert await ir(host, 0) == [8]
    assert not (await host.write_register(100 + 2, 7, device_id=UNIT)).isError()
    assert not (await host.write_register(200 + 2, 3 + 256, device_id=UNIT)).isError()
    assert not (await host.write_coil(2, True, device_id=UNIT)).isError()
    lit = panel.lit()
    assert list(lit) == [3]
    assert (lit[3].qty, lit[3].colour, lit[3].blink) == (7, "blue", True)
    coils = await host.read_coils(0, count=8, device_id=UNIT)
    assert coils.bits[:8] == [False, False, True, False, False, False, False, False]
    holding = await host.read_holding_registers(100, count=8, device_id=UNIT)
    assert holding.registers == [0, 0, 7, 0, 0, 0, 0, 0]
    assert not (await host.write_coils(0, [True, True], device_id=UNIT)).isError()
    assert sorted(panel.lit()) == [1, 2, 3]
    assert panel.lit()[1].colour == "green"  # the power-on colour
    assert not (await host.write_coil(2, False, device_id=UNIT)).isError()
    assert sorted(panel.lit()) == [1, 2]


async def test_press_counts_and_reports_the_quantity(
    panel: PtlSim, host: AsyncModbusTcpClient
) -> None:
    await host.write_register(100 + 4, 5, device_id=UNIT)
    await host.write_coil(4, True, device_id=UNIT)
    press = panel.press_nowait(5)
    held = await host.read_discrete_inputs(0, count=8, device_id=UNIT)
    assert held.bits[:8] == [False, False, False, False, True, False, False, False]
    assert await ir(host, 100 + 4) == [1]
    assert await ir(host, 200 + 4) == [5]
    assert (press.counter, press.qty) == (1, 5)
    assert panel.lit() == {}, "the confirm puts the light out"
    assert (await host.read_coils(4, count=1, device_id=UNIT)).bits[0] is False
    panel.release(5)
    assert (await host.read_discrete_inputs(4, count=1, device_id=UNIT)).bits[0] is False
    await panel.press(5, qty=3, hold_s=0)  # a short pick
    assert await ir(host, 100 + 4) == [2]
    assert await ir(host, 200 + 4) == [3]
    assert await ir(host, 100, count=8) == [0, 0, 0, 0, 2, 0, 0, 0]


async def test_confirm_counter_wraps(panel: PtlSim, host: AsyncModbusTcpClient) -> None:
    panel.set_counter(1, 65535)
    assert await ir(host, 100) == [65535]
    await panel.press(1, qty=1, hold_s=0)
    assert await ir(host, 100) == [0]
    assert await ir(host, 200) == [1]


async def test_heartbeat_keeps_lights_and_silence_blanks_the_panel() -> None:
    options = PtlOptions(heartbeat_timeout_s=0.3)
    async with PtlSim("ptl-hb", slots=4, port=0, unit=1, options=options) as panel:
        client = AsyncModbusTcpClient(panel.host, port=panel.port, timeout=0.5, retries=0)
        assert await client.connect()
        try:
            await client.write_register(0, 1, device_id=1)
            await client.write_coil(0, True, device_id=1)
            for beat in range(2, 6):  # 0.4 s of steady heartbeats: longer than the timeout
                await asyncio.sleep(0.1)
                await client.write_register(0, beat, device_id=1)
            assert list(panel.lit()) == [1]
            await client.write_register(0, 5, device_id=1)  # written, but not a change
            await panel.wait_for(lambda: not panel.lit(), 1)
            assert (await client.read_coils(0, count=1, device_id=1)).bits[0] is False
            assert panel.blank_count == 1
            # While the heartbeat is stale a light goes straight back out.
            await client.write_coil(1, True, device_id=1)
            await panel.wait_for(lambda: not panel.lit(), 1)
            await client.write_register(0, 6, device_id=1)
            await client.write_coil(1, True, device_id=1)
            await asyncio.sleep(0.05)
            assert list(panel.lit()) == [2]
        finally:
            client.close()


async def test_automatic_picker_confirms_lit_slots() -> None:
    options = PtlOptions(heartbeat_timeout_s=None, hold_s=0)
    async with PtlSim("ptl-auto", slots=4, port=0, unit=1, options=options) as panel:
        client = AsyncModbusTcpClient(panel.host, port=panel.port, timeout=0.5, retries=0)
        assert await client.connect()
        try:
            panel.start_picker(PickerBehaviour(delay_s=0.05))
            await client.write_register(101, 4, device_id=1)
            await client.write_coil(1, True, device_id=1)
            await panel.wait_for(lambda: len(panel.presses) == 1, 1)
            regs = await client.read_input_registers(101, count=1, device_id=1)
            assert regs.registers == [1]
            assert (await client.read_input_registers(201, count=1, device_id=1)).registers == [4]
            panel.start_picker(PickerBehaviour(delay_s=0.05, short_probability=1.0, seed=7))
            await client.write_coil(1, True, device_id=1)
            await panel.wait_for(lambda: len(panel.presses) == 2, 1)
            short = panel.presses[-1]
            assert short.by == "picker" and 0 <= short.qty < 4
            panel.stop_picker()
            await client.write_coil(2, True, device_id=1)
            await asyncio.sleep(0.15)
            assert len(panel.presses) == 2
        finally:
            client.close()


async def test_addresses_outside_the_map(host: AsyncModbusTcpClient) -> None:
    for request in (
        host.read_holding_registers(2, count=1, device_id=UNIT),
        host.read_holding_registers(100, count=9, device_id=UNIT),
        host.read_input_registers(208, count=1, device_id=UNIT),
        host.read_coils(8, count=1, device_id=UNIT),
        host.write_register(300, 1, device_id=UNIT),
        host.write_coil(9, True, device_id=UNIT),
    ):
        response = await request
        assert response.isError()
        assert response.exception_code == 2


async def test_other_unit_ids_are_not_answered_as_this_panel(host: AsyncModbusTcpClient) -> None:
    response = await host.read_input_registers(0, count=1, device_id=UNIT + 1)
    assert response.isError()
    assert response.exception_code == 0x0B


@pytest.mark.parametrize("code", [2, 4, 6])
async def test_injected_exception_codes(
    panel: PtlSim, host: AsyncModbusTcpClient, code: int
) -> None:
    panel.answer_with_exception(code)
    read = await host.read_input_registers(0, count=1, device_id=UNIT)
    write = await host.write_coil(0, True, device_id=UNIT)
    assert (read.exception_code, write.exception_code) == (code, code)
    assert panel.lit() == {}, "a refused write changes nothing"
    panel.answer_with_exception(None)
    assert await ir(host, 0) == [8]


async def test_not_answering_times_the_client_out(
    panel: PtlSim, impatient: AsyncModbusTcpClient
) -> None:
    host = impatient
    panel.stop_answering()
    with pytest.raises(ModbusIOException):
        await host.write_coil(0, True, device_id=UNIT)
    assert panel.lit() == {}, "a request that is not answered is not executed either"
    assert panel.dropped_replies >= 1
    panel.resume_answering()
    assert await ir(host, 0) == [8]
    panel.stop_answering(duration_s=0.2)
    with pytest.raises(ModbusIOException):
        await ir(host, 0)
    await asyncio.sleep(0.2)
    assert await ir(host, 0) == [8]


async def test_slow_and_garbled_replies(
    panel: PtlSim, host: AsyncModbusTcpClient, impatient: AsyncModbusTcpClient
) -> None:
    panel.reply_delay_s = 0.2
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await ir(host, 0) == [8]
    assert loop.time() - started >= 0.2
    panel.reply_delay_s = 0.0
    panel.garbage_replies = True
    with pytest.raises(ModbusIOException):
        await ir(impatient, 0)


async def test_disconnect_keeps_the_panel_memory(
    panel: PtlSim, impatient: AsyncModbusTcpClient
) -> None:
    await impatient.write_register(100, 9, device_id=UNIT)
    await panel.disconnect()
    with pytest.raises(ModbusIOException):
        await ir(impatient, 100)
    await panel.reconnect()
    client = AsyncModbusTcpClient(panel.host, port=panel.port, timeout=0.5, retries=0)
    assert await client.connect()
    try:
        regs = await client.read_holding_registers(100, count=1, device_id=UNIT)
        assert regs.registers == [9]
    finally:
        client.close()
