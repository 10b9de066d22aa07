"""Diverter driver against a pymodbus 3.16 server and a test-side PLC handshake."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from tests.integration.drivers.modbus_server import (
    HOLDING,
    INPUT,
    Registers,
    device_context,
    modbus_server,
)
from tests.integration.drivers.support import Watch, make_driver, running
from wcs.floor import DiverterDevice, ModbusLink
from wcs.settings import MqttEndpoint


def diverter(port: int) -> DiverterDevice:
    return DiverterDevice(
        id="div-qc",
        zone="qc",
        link=ModbusLink(host="127.0.0.1", port=port, unit=1, poll_interval_s=0.02),
        point="D1",
        lanes={1: "qc", 2: "pack:P1", 3: "pack:P2", 4: "outbound", 5: "exception"},
        default_lane=5,
    )


def barcode(text: str) -> list[int]:
    raw = text.encode().ljust(40, b"\0")
    return [raw[i] << 8 | raw[i + 1] for i in range(0, 40, 2)]


@dataclass
class Plc:
    """The PLC's side of the handshake: act on a new sequence id, echo it."""

    regs: Registers
    force_lane: int | None = None  # divert here whatever was asked (a jammed flap)
    answering: bool = True

    async def run(self) -> None:
        last = (await self.regs.get(1, HOLDING, 1))[0]
        while True:
            lane, seq = await self.regs.get(1, HOLDING, 0, 2)
            if seq != last and self.answering:
                last = seq
                taken = self.force_lane if self.force_lane is not None else lane
                await self.regs.set(1, INPUT, 2, [taken])
                await self.regs.set(1, INPUT, 1, [seq])
            await asyncio.sleep(0.005)

    async def arrive(self, tote: str) -> None:
        await self.regs.set(1, INPUT, 10, barcode(tote))
        (count,) = await self.regs.get(1, INPUT, 0)
        await self.regs.set(1, INPUT, 0, [(count + 1) % 65536])


@contextlib.asynccontextmanager
async def plc() -> AsyncIterator[Plc]:
    async with modbus_server({1: device_context()}) as regs:
        logic = Plc(regs)
        task = asyncio.create_task(logic.run(), name="test-plc")
        try:
            yield logic
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_arrival_and_route_handshake(
    mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    async with plc() as logic:
        await logic.regs.set(1, INPUT, 0, [41])  # totes before the driver started
        await logic.regs.set(1, HOLDING, 1, [7])  # last sequence id of a previous run
        async with running(make_driver(diverter(logic.regs.port), mqtt_endpoint, site)):
            await watch.status("div-qc", "online")
            await logic.arrive("T000123")
            (arrival,) = await watch.expect("dev/div-qc/evt/arrival")
            assert (arrival["tote"], arrival["point"]) == ("T000123", "D1")

            cmd = await watch.command("div-qc", "route", tote="T000123", lane="pack", station="P1")
            ack = await watch.ack("div-qc", cmd)
            assert ack["ok"] is True, ack
            assert await logic.regs.get(1, HOLDING, 0, 2) == [2, 8]

            cmd = await watch.command("div-qc", "route", tote="T000124", lane="outbound")
            assert (await watch.ack("div-qc", cmd))["ok"] is True
            assert await logic.regs.get(1, HOLDING, 0, 2) == [4, 9]

            await logic.regs.set(1, INPUT, 10, [0] * 20)  # nothing readable on the tote
            (count,) = await logic.regs.get(1, INPUT, 0)
            await logic.regs.set(1, INPUT, 0, [count + 1])
            arrivals = await watch.expect("dev/div-qc/evt/arrival", 2)
            assert arrivals[1]["tote"] == "NOREAD"


async def test_wrong_lane_unknown_lane_and_silence(
    mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    async with plc() as logic, running(make_driver(diverter(logic.regs.port), mqtt_endpoint, site)):
        await watch.status("div-qc", "online")
        logic.force_lane = 5
        cmd = await watch.command("div-qc", "route", tote="T1", lane="qc")
        ack = await watch.ack("div-qc", cmd)
        assert ack["ok"] is False
        assert ack["error"] == "tote T1 took lane 5 (exception) instead of lane 1 (qc)"

        cmd = await watch.command("div-qc", "route", tote="T2", lane="pack", station="P9")
        ack = await watch.ack("div-qc", cmd)
        assert ack["ok"] is False and "no lane for pack:P9" in ack["error"]

        logic.force_lane = 0  # the PLC's answer when no tote was at the eye
        cmd = await watch.command("div-qc", "route", tote="T4", lane="qc")
        ack = await watch.ack("div-qc", cmd)
        assert ack["ok"] is False and "diverted nothing for tote T4" in ack["error"]

        logic.answering = False
        cmd = await watch.command("div-qc", "route", tote="T3", lane="qc")
        ack = await watch.ack("div-qc", cmd, within=5)
        assert ack["ok"] is False and "did not confirm route request" in ack["error"]


async def test_jam_is_a_fault(mqtt_endpoint: MqttEndpoint, site: str, watch: Watch) -> None:
    async with plc() as logic, running(make_driver(diverter(logic.regs.port), mqtt_endpoint, site)):
        await watch.status("div-qc", "online")
        await logic.regs.set(1, INPUT, 3, [1])
        fault = await watch.status("div-qc", "fault")
        assert fault["detail"] == "diverter div-qc at D1: conveyor jam"
        await logic.regs.set(1, INPUT, 3, [0])
        await watch.status("div-qc", "online")
