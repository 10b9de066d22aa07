"""The drivers against the simulated panel and PLC on every shipped register profile
and on maps a floor file defines: light, count down, confirm, clear, heartbeat; arrival,
route handshake, faults; 32-bit counters past 16 bits. The simulator lays its
registers out from the same map with its own encoding, so a wrong address, word order
or scale shows as an illegal address or a wrong value, not as a silent agreement."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_sim.diverter import DiverterOptions, DiverterSim
from device_sim.ptl import PtlOptions, PtlSim
from drivers.base import Resources
from drivers.options import DriverOptions
from drivers.registry import build_driver
from tests.integration.drivers.support import FAST, Watch, running
from tests.integration.drivers.test_ptl import _clear, _presence
from wcs.contract import Topics
from wcs.floor import DiverterDevice, Floor, ModbusLink, PtlDevice, load_floor
from wcs.register_maps import SHIPPED, DiverterMap, PtlMap
from wcs.settings import MqttEndpoint

VENDOR_FLOOR = Path(__file__).resolve().parents[3] / "floors" / "vendor-maps.yaml"
LANES = {1: "qc", 2: "pack:P1", 3: "pack:P2", 4: "outbound", 5: "exception"}


def maps_of(kind: str) -> list[tuple[str, PtlMap | DiverterMap]]:
    floor = load_floor(VENDOR_FLOOR)
    found = [(n, m) for n, m in SHIPPED.items() if m.kind == kind]
    found += [(n, m) for n, m in floor.register_maps.items() if m.kind == kind]
    return found


def driver_for(device: PtlDevice | DiverterDevice, m: object, endpoint: MqttEndpoint, site: str):  # type: ignore[no-untyped-def]
    return build_driver(
        device,
        endpoint=endpoint,
        topics=Topics(site),
        options=DriverOptions(**{**FAST.__dict__, "heartbeat_s": 0.1}),
        resources=Resources(),
        register_map=m,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("name", "m"), maps_of("ptl"), ids=lambda v: v if isinstance(v, str) else ""
)
async def test_panel_profiles(
    name: str, m: PtlMap, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    async with PtlSim(
        "ptl-v", slots=8, port=0, options=PtlOptions(hold_s=0), register_map=m
    ) as sim:
        device = PtlDevice(
            id="ptl-v",
            zone="pick",
            link=ModbusLink(port=sim.port, poll_interval_s=0.02),
            slots={n: f"A-01-0{n}-1" for n in range(1, 9)},
            register_map=name,
        )
        sim.set_counter(2, 65534)  # a long shift: 16-bit counters wrap, 32-bit ones do not
        async with running(driver_for(device, m, mqtt_endpoint, site)):
            await watch.status("ptl-v", "online")
            light = await watch.command("ptl-v", "light", slot=2, qty=3, color="green")
            assert (await watch.ack("ptl-v", light))["ok"]
            view = sim.slot(2)
            assert (view.lit, view.qty, view.colour, view.blink) == (True, 3, "green", False)
            red = await watch.command("ptl-v", "light", slot=5, qty=1, color="red", blink=True)
            assert (await watch.ack("ptl-v", red))["ok"]
            assert (sim.slot(5).colour, sim.slot(5).blink) == ("red", True)
            assert set(sim.lit()) == {2, 5}

            await sim.press(2, 2)  # two of three, then the third
            await watch.expect("dev/ptl-v/evt/confirm", 1)
            await sim.press(2, 1)
            confirms = await watch.expect("dev/ptl-v/evt/confirm", 2)
            assert [(c["slot"], c["qty"]) for c in confirms] == [(2, 2), (2, 1)]
            if m.confirm_counter.words == 2:
                assert sim.slot(2).counter == 65536  # past 16 bits, no wrap
            clear = await watch.command("ptl-v", "clear", slot=None)
            assert (await watch.ack("ptl-v", clear))["ok"]
            assert sim.lit() == {}
            if m.heartbeat is not None:
                beat = sim.heartbeat
                await sim.wait_for(lambda: sim.heartbeat != beat, 2)
            # No controller online (their retained presence): lights out, and the
            # display says so where the map has a message register.
            relit = await watch.command("ptl-v", "light", slot=3, qty=1, color="green")
            assert (await watch.ack("ptl-v", relit))["ok"]
            await _presence(mqtt_endpoint, site, "c9", "offline")
            await sim.wait_for(lambda: sim.lit() == {}, 5)
            if m.message is not None:
                await sim.wait_for(lambda: sim.message == m.messages["controller_offline"], 5)
            await _presence(mqtt_endpoint, site, "c9", "online")
            if m.message is not None:
                await sim.wait_for(lambda: sim.message == m.messages["none"], 5)
            await _clear(mqtt_endpoint, site, ("c9",))
            if m.max_qty < 9999:  # a smaller display than the contract's 0-9999
                too_many = await watch.command("ptl-v", "light", slot=1, qty=m.max_qty + 1)
                error = (await watch.ack("ptl-v", too_many))["error"]
                assert f"quantity {m.max_qty + 1} is outside 0-{m.max_qty}" in error
    assert watch.on("dlq") == []


@pytest.mark.parametrize(
    ("name", "m"), maps_of("diverter"), ids=lambda v: v if isinstance(v, str) else ""
)
async def test_diverter_profiles(
    name: str, m: DiverterMap, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    options = DiverterOptions(decision_window_s=3.0)
    async with DiverterSim(
        "div-v", lanes=LANES, default_lane=5, port=0, options=options, register_map=m
    ) as sim:
        device = DiverterDevice(
            id="div-v",
            zone="qc",
            link=ModbusLink(port=sim.port, poll_interval_s=0.02),
            point="D1",
            lanes=LANES,
            default_lane=5,
            register_map=name,
        )
        if m.arrivals.words == 2:
            sim.fields.set(m.arrivals, 65535)  # the next tote takes the counter past 16 bits
        driver = driver_for(device, m, mqtt_endpoint, site)
        async with running(driver):
            await watch.status("div-v", "online")
            sim.arrive("T000777")
            (arrival,) = await watch.expect("dev/div-v/evt/arrival")
            assert (arrival["tote"], arrival["point"]) == ("T000777", "D1")
            route = await watch.command("div-v", "route", tote="T000777", lane="pack", station="P2")
            assert (await watch.ack("div-v", route))["ok"]
            divert = await sim.divert_of("T000777")
            assert (divert.lane, divert.route, divert.timed_out) == (3, "pack:P2", False)
            if m.arrivals.words == 2:
                assert sim.arrival_count == 65536

            sim.arrive("T000778")
            await watch.expect("dev/div-v/evt/arrival", 2)
            sim.force_lane(4)
            wrong = await watch.command("div-v", "route", tote="T000778", lane="qc")
            assert (
                "took lane 4 (outbound) instead of lane 1 (qc)"
                in (await watch.ack("div-v", wrong))["error"]
            )

            sim.jam()
            await watch.status("div-v", "fault", detail="conveyor jam")
            sim.clear()
            await watch.status("div-v", "online")
            if m.heartbeat is not None:
                seen = sim.heartbeats
                await sim.wait_for(lambda: sim.heartbeats > seen + 1, 2)
    assert watch.on("dlq") == []


def test_the_vendor_floor_uses_every_kind_of_map() -> None:
    floor: Floor = load_floor(VENDOR_FLOOR)
    used = {d.register_map for d in floor.devices if isinstance(d, PtlDevice | DiverterDevice)}
    assert used == {"block-ptl", "line-panel", "sorter-plc", "dock-plc"}
