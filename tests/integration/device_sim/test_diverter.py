"""The simulated diverter PLC seen from a pymodbus client, and the conveyor behind it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pymodbus.client import AsyncModbusTcpClient

from device_sim.diverter import Conveyor, DiverterOptions, DiverterSim

LANES = {1: "qc", 2: "pack:P1", 3: "pack:P2", 4: "outbound", 5: "exception"}
# Long enough for a test's write to land in it on a busy machine (0.3 s was not).
QUICK = DiverterOptions(decision_window_s=1.5)


@pytest.fixture
async def diverter() -> AsyncIterator[DiverterSim]:
    async with DiverterSim(
        "div-t", lanes=LANES, default_lane=5, point="D1", port=0, options=QUICK
    ) as sim:
        yield sim


@pytest.fixture
async def host(diverter: DiverterSim) -> AsyncIterator[AsyncModbusTcpClient]:
    client = AsyncModbusTcpClient(diverter.host, port=diverter.port, timeout=0.5, retries=0)
    assert await client.connect()
    yield client
    client.close()


async def ir(client: AsyncModbusTcpClient, address: int, count: int = 1) -> list[int]:
    response = await client.read_input_registers(address, count=count, device_id=1)
    assert not response.isError(), response
    return list(response.registers)


async def di(client: AsyncModbusTcpClient) -> list[bool]:
    response = await client.read_discrete_inputs(0, count=3, device_id=1)
    assert not response.isError(), response
    return list(response.bits[:3])


async def barcode(client: AsyncModbusTcpClient) -> bytes:
    """Registers 10-29, two ASCII bytes each, high byte first."""
    return b"".join(r.to_bytes(2, "big") for r in await ir(client, 10, 20))


async def poll_ir(client: AsyncModbusTcpClient, address: int, expected: int) -> None:
    """Poll an input register the way a driver does, until it reads ``expected``."""
    async with asyncio.timeout(2):
        while True:
            value = (await ir(client, address))[0]
            if value == expected:
                return
            await asyncio.sleep(0.005)


async def wait_arrivals(client: AsyncModbusTcpClient, count: int) -> None:
    await poll_ir(client, 0, count)


async def test_arrival_then_handshake(diverter: DiverterSim, host: AsyncModbusTcpClient) -> None:
    assert await ir(host, 0, 4) == [0, 0, 0, 0]
    diverter.arrive("T000123")
    await wait_arrivals(host, 1)
    assert await barcode(host) == b"T000123".ljust(40, b"\0")
    assert await di(host) == [True, False, False]
    assert not (await host.write_register(0, 3, device_id=1)).isError()
    assert not (await host.write_register(1, 41, device_id=1)).isError()
    await poll_ir(host, 1, 41)
    assert await ir(host, 0, 4) == [1, 41, 3, 0]
    assert await di(host) == [False, True, False]
    divert = await diverter.next_divert(timeout_s=1)
    assert (divert.tote, divert.lane, divert.route, divert.seq, divert.timed_out) == (
        "T000123",
        3,
        "pack:P2",
        41,
        False,
    )


async def test_lane_and_sequence_in_one_write(
    diverter: DiverterSim, host: AsyncModbusTcpClient
) -> None:
    diverter.arrive("T000200")
    await wait_arrivals(host, 1)
    assert not (await host.write_registers(0, [4, 7], device_id=1)).isError()
    divert = await diverter.next_divert(timeout_s=1)
    assert (divert.lane, divert.seq) == (4, 7)
    assert await ir(host, 1, 2) == [7, 4]


async def test_no_decision_in_the_window_takes_the_default_lane(
    diverter: DiverterSim, host: AsyncModbusTcpClient
) -> None:
    loop = asyncio.get_running_loop()
    diverter.arrive("T000124")
    await wait_arrivals(host, 1)
    arrived = loop.time()
    divert = await diverter.next_divert(timeout_s=4)
    assert loop.time() - arrived >= 1.4
    assert (divert.lane, divert.route, divert.timed_out, divert.seq) == (5, "exception", True, None)
    assert await ir(host, 1, 2) == [0, 5], "no request was executed: the echo stays"


async def test_unknown_lane_goes_to_the_default(
    diverter: DiverterSim, host: AsyncModbusTcpClient
) -> None:
    diverter.arrive("T000125")
    await wait_arrivals(host, 1)
    await host.write_registers(0, [9, 1], device_id=1)
    divert = await diverter.next_divert(timeout_s=1)
    assert (divert.requested_lane, divert.lane, divert.timed_out) == (9, 5, False)
    assert await ir(host, 1, 2) == [1, 5]


async def test_request_with_no_tote_is_echoed_with_lane_zero(
    diverter: DiverterSim, host: AsyncModbusTcpClient
) -> None:
    await host.write_registers(0, [2, 11], device_id=1)
    assert await ir(host, 1, 2) == [11, 0]
    assert diverter.diverts == []


async def test_totes_queue_at_the_point(diverter: DiverterSim, host: AsyncModbusTcpClient) -> None:
    diverter.arrive("T000301")
    diverter.arrive("T000302", noread=True)
    await wait_arrivals(host, 1)
    assert diverter.waiting == 1
    await host.write_registers(0, [1, 1], device_id=1)
    await wait_arrivals(host, 2)
    assert await barcode(host) == bytes(40), "a no-read leaves the barcode blank"
    await host.write_registers(0, [2, 2], device_id=1)
    second = await diverter.divert_of("T000302", timeout_s=1)
    assert (second.lane, second.seq) == (2, 2)
    assert [d.tote for d in diverter.diverts] == ["T000301", "T000302"]


async def test_jam_holds_the_tote_until_cleared(
    diverter: DiverterSim, host: AsyncModbusTcpClient
) -> None:
    diverter.arrive("T000400")
    await wait_arrivals(host, 1)
    diverter.jam()
    assert (await ir(host, 3))[0] == 1
    assert await di(host) == [True, False, True]
    await host.write_registers(0, [1, 5], device_id=1)
    await asyncio.sleep(0.1)
    assert await ir(host, 1, 2) == [0, 0], "nothing moves while jammed"
    diverter.fault()
    assert (await ir(host, 3))[0] == 2
    diverter.clear()
    divert = await diverter.next_divert(timeout_s=1)
    assert (divert.lane, divert.seq) == (1, 5)
    assert await ir(host, 1, 3) == [5, 1, 0]
    assert await di(host) == [False, True, False]


async def test_wrong_lane_taken(diverter: DiverterSim, host: AsyncModbusTcpClient) -> None:
    diverter.force_lane(5)
    diverter.arrive("T000500")
    await wait_arrivals(host, 1)
    await host.write_registers(0, [2, 8], device_id=1)
    divert = await diverter.next_divert(timeout_s=1)
    assert (divert.requested_lane, divert.lane) == (2, 5)
    assert await ir(host, 1, 2) == [8, 5], "sequence echoed, but another lane taken"
    diverter.arrive("T000501")
    await wait_arrivals(host, 2)
    await host.write_registers(0, [2, 9], device_id=1)
    assert (await diverter.next_divert(timeout_s=1)).lane == 2, "the fault was one tote only"


async def test_arrival_counter_wraps(diverter: DiverterSim, host: AsyncModbusTcpClient) -> None:
    diverter.image.input[0] = 65535
    diverter.arrive("T000600")
    await wait_arrivals(host, 0)
    assert diverter.at_eye == "T000600"


async def test_conveyor_carries_totes_between_points() -> None:
    async with (
        DiverterSim(
            "div-a", lanes=LANES, default_lane=5, point="D1", port=0, options=QUICK
        ) as first,
        DiverterSim(
            "div-b",
            lanes={1: "outbound", 2: "exception"},
            default_lane=2,
            point="D2",
            port=0,
            options=DiverterOptions(decision_window_s=0.05),
        ) as second,
        Conveyor(travel_s=0.05) as conveyor,
    ):
        conveyor.attach(first)
        conveyor.attach(second)
        conveyor.connect("div-a", "outbound", second)
        client = AsyncModbusTcpClient(first.host, port=first.port, timeout=0.5, retries=0)
        assert await client.connect()
        try:
            first.arrive("T000700")
            await wait_arrivals(client, 1)
            await client.write_registers(0, [4, 1], device_id=1)
            final = await conveyor.delivered("T000700", timeout_s=2, count=2)
        finally:
            client.close()
        assert conveyor.trail("T000700") == ["div-b", "exception"]
        assert final.via.diverter == "div-b" and final.via.timed_out
        assert second.arrivals == ["T000700"]
        at_b = conveyor.queue("div-b").get_nowait()
        assert at_b.via.route == "outbound"
        first.arrive("T000701")
        delivery = await conveyor.delivered("T000701", timeout_s=5)  # after div-a's window
        assert delivery.destination == "exception"
