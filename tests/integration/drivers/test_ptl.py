"""PTL driver against a pymodbus 3.16 server playing the panel."""

from __future__ import annotations

import asyncio

from drivers.base import Resources
from tests.integration.drivers.modbus_server import (
    COILS,
    HOLDING,
    INPUT,
    Registers,
    device_context,
    modbus_server,
)
from tests.integration.drivers.support import Watch, make_driver, running
from wcs.floor import ModbusLink, PtlDevice
from wcs.settings import MqttEndpoint

SLOTS = {n: f"A-01-{n:02d}-1" for n in range(1, 9)}


def panel(port: int, unit: int = 1, device_id: str = "ptl-a") -> PtlDevice:
    return PtlDevice(
        id=device_id,
        zone="pick",
        link=ModbusLink(host="127.0.0.1", port=port, unit=unit, poll_interval_s=0.02),
        slots=SLOTS,
    )


async def press(regs: Registers, slot: int, qty: int, unit: int = 1) -> None:
    """What the panel does on a press: latch the quantity, bump the counter."""
    (count,) = await regs.get(unit, INPUT, 100 + slot - 1)
    await regs.set(unit, INPUT, 200 + slot - 1, [qty])
    await regs.set(unit, INPUT, 100 + slot - 1, [(count + 1) % 65536])


async def test_light_confirm_clear(mqtt_endpoint: MqttEndpoint, site: str, watch: Watch) -> None:
    async with modbus_server({1: device_context()}) as regs:
        await regs.set(1, INPUT, 0, [8])
        await regs.set(1, INPUT, 102, [5])  # presses made before the driver ran
        await regs.set(1, INPUT, 100, [65535])  # about to wrap
        async with running(make_driver(panel(regs.port), mqtt_endpoint, site)):
            await watch.status("ptl-a", "online")
            cmd = await watch.command("ptl-a", "light", slot=3, qty=2, color="green", blink=False)
            assert (await watch.ack("ptl-a", cmd))["ok"] is True
            assert await regs.get(1, HOLDING, 102) == [2]
            assert await regs.get(1, HOLDING, 202) == [1]
            assert await regs.get(1, COILS, 0, 4) == [0, 0, 1, 0]
            cmd = await watch.command("ptl-a", "light", slot=5, qty=12, color="red", blink=True)
            assert (await watch.ack("ptl-a", cmd))["ok"] is True
            assert await regs.get(1, HOLDING, 204) == [2 + 256]

            await press(regs, 3, 2)
            (confirm,) = await watch.expect("dev/ptl-a/evt/confirm")
            assert (confirm["slot"], confirm["qty"]) == (3, 2)
            await press(regs, 1, 1)  # 65535 -> 0
            await press(regs, 1, 4)  # two presses may fall between two polls
            confirms = await watch.expect("dev/ptl-a/evt/confirm", 3)
            assert [(c["slot"], c["qty"]) for c in confirms[1:]] in (
                [(1, 1), (1, 4)],
                [(1, 4), (1, 4)],  # both seen in one poll: the last quantity is all we have
            )
            assert len({c["msg_id"] for c in confirms}) == 3

            cmd = await watch.command("ptl-a", "clear", slot=3)
            assert (await watch.ack("ptl-a", cmd))["ok"] is True
            assert await regs.get(1, COILS, 0, 8) == [0, 0, 0, 0, 1, 0, 0, 0]
            cmd = await watch.command("ptl-a", "clear", slot=None)
            assert (await watch.ack("ptl-a", cmd))["ok"] is True
            assert await regs.get(1, COILS, 0, 8) == [0] * 8

            cmd = await watch.command("ptl-a", "light", slot=9, qty=1, color="green")
            ack = await watch.ack("ptl-a", cmd)
            assert ack["ok"] is False and "no slot 9" in ack["error"]
            # heartbeat keeps changing so the panel stays lit
            first = await regs.get(1, HOLDING, 0)
            await asyncio.sleep(0.5)
            assert await regs.get(1, HOLDING, 0) != first
        await asyncio.sleep(0.1)
    assert len(watch.on("dev/ptl-a/evt/confirm")) == 3


async def test_two_panels_share_one_gateway(
    mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    async with modbus_server({1: device_context(), 2: device_context()}) as regs:
        for unit in (1, 2):
            await regs.set(unit, INPUT, 0, [8])
        shared = Resources()
        a = make_driver(panel(regs.port, 1, "ptl-a"), mqtt_endpoint, site, resources=shared)
        b = make_driver(panel(regs.port, 2, "ptl-b"), mqtt_endpoint, site, resources=shared)
        assert a.hub is b.hub  # type: ignore[attr-defined]
        async with running(a, b):
            await watch.status("ptl-a", "online")
            await watch.status("ptl-b", "online")
            ca = await watch.command("ptl-a", "light", slot=1, qty=7, color="blue")
            cb = await watch.command("ptl-b", "light", slot=2, qty=9, color="white")
            assert (await watch.ack("ptl-a", ca))["ok"] and (await watch.ack("ptl-b", cb))["ok"]
            assert await regs.get(1, HOLDING, 100, 2) == [7, 0]
            assert await regs.get(2, HOLDING, 100, 2) == [0, 9]
            await press(regs, 4, 3, unit=2)
            (confirm,) = await watch.expect("dev/ptl-b/evt/confirm")
            assert confirm["slot"] == 4 and confirm["qty"] == 3
            assert watch.on("dev/ptl-a/evt/confirm") == []


async def test_panel_lost_and_back(mqtt_endpoint: MqttEndpoint, site: str, watch: Watch) -> None:
    async with modbus_server({1: device_context()}) as regs:
        port = regs.port
        await regs.set(1, INPUT, 0, [8])
        async with running(make_driver(panel(port), mqtt_endpoint, site)):
            await watch.status("ptl-a", "online")
            await regs.server.shutdown()
            fault = await watch.status("ptl-a", "fault")
            assert f"127.0.0.1:{port}" in fault["detail"]
            cmd = await watch.command("ptl-a", "light", slot=1, qty=1, color="green")
            assert (await watch.ack("ptl-a", cmd))["ok"] is False
            async with modbus_server({1: device_context()}, port=port) as again:
                await again.set(1, INPUT, 0, [8])
                await watch.status("ptl-a", "online", within=5)
                await press(again, 2, 1)
                (confirm,) = await watch.expect("dev/ptl-a/evt/confirm")
                assert confirm["slot"] == 2


async def test_presses_during_a_lost_link_are_not_lost(
    mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    async with modbus_server({1: device_context(ir={0: 8, 101: 3})}) as regs:
        port = regs.port
        async with running(make_driver(panel(port), mqtt_endpoint, site)):
            await watch.status("ptl-a", "online")
            await regs.server.shutdown()
            await watch.status("ptl-a", "fault")
            # the panel latched two presses on slot 2 while the network was down
            again = device_context(ir={0: 8, 101: 5, 201: 1})
            async with modbus_server({1: again}, port=port):
                await watch.status("ptl-a", "online", within=5)
                confirms = await watch.expect("dev/ptl-a/evt/confirm", 2)
                await asyncio.sleep(0.2)
    assert [(c["slot"], c["qty"]) for c in confirms] == [(2, 1), (2, 1)]
    assert len(watch.on("dev/ptl-a/evt/confirm")) == 2


async def test_panel_with_too_few_slots_is_a_fault(
    mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    async with modbus_server({1: device_context()}) as regs:
        await regs.set(1, INPUT, 0, [4])
        async with running(make_driver(panel(regs.port), mqtt_endpoint, site)):
            fault = await watch.status("ptl-a", "fault")
    assert "reports 4 slots" in fault["detail"]


async def _presence(mqtt: MqttEndpoint, site: str, instance: str, state: str) -> None:
    from wcs.contract.payloads import ControllerStatus
    from wcs.contract.topics import Topics
    from wcs.mqtt.client import make_client

    payload = ControllerStatus(state=state, instance=instance).to_json()  # type: ignore[arg-type]
    async with make_client(mqtt) as client:
        await client.publish(Topics(site).controller_status(instance), payload, qos=1, retain=True)


async def _until(regs: Registers, address: int, value: int, limit_s: float = 10.0) -> None:
    async with asyncio.timeout(limit_s):
        while await regs.get(1, HOLDING, address) != [value]:
            await asyncio.sleep(0.02)


async def test_panel_shows_controller_offline(
    mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    """The controllers' retained presence: with none online the panel shows "controller
    offline" (holding register 1) and its lights go out; one back clears the message."""
    async with modbus_server({1: device_context()}) as regs:
        await regs.set(1, INPUT, 0, [8])
        await _presence(mqtt_endpoint, site, "c1", "online")
        async with running(make_driver(panel(regs.port), mqtt_endpoint, site)):
            await watch.status("ptl-a", "online")
            cmd = await watch.command("ptl-a", "light", slot=2, qty=1, color="green", blink=False)
            assert (await watch.ack("ptl-a", cmd))["ok"] is True
            await _until(regs, 1, 0)
            assert await regs.get(1, COILS, 0, 3) == [0, 1, 0]

            await _presence(mqtt_endpoint, site, "c1", "offline")  # as its Last Will says
            await _until(regs, 1, 1)
            assert await regs.get(1, COILS, 0, 8) == [0] * 8

            await _presence(mqtt_endpoint, site, "c2", "online")  # another one takes over
            await _until(regs, 1, 0)
    await _clear(mqtt_endpoint, site, ("c1", "c2"))


async def _clear(mqtt: MqttEndpoint, site: str, instances: tuple[str, ...]) -> None:
    from wcs.contract.topics import Topics
    from wcs.mqtt.client import make_client

    async with make_client(mqtt) as client:
        for instance in instances:
            await client.publish(Topics(site).controller_status(instance), b"", retain=True)
