"""The MT-SICS driver against the simulated scale in each reply variant it models.

Each variant: online within 2 s, no dead letter from the probe (nor from anything
else), weigh (and weigh with moving readings), tare, immediate tare, preset tare,
zero, immediate zero, reset; and the continuous (SIR) mode with its stability filter,
interrupted by commands and resumed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from device_sim.scale import UNIT_GRAMS, ScaleOptions, ScaleSim
from drivers.base import Driver
from tests.integration.drivers.support import Watch, make_driver, running
from wcs.floor import ScaleDevice, SerialLink
from wcs.settings import MqttEndpoint


@dataclass(frozen=True)
class Variant:
    name: str
    dialect: str
    unit: str

    @property
    def resolution_g(self) -> float:
        """One display step in grams: how close a reading can be to the load."""
        decimals = {"g": 1, "kg": 4, "lb": 4, "oz": 3}[self.unit]
        return UNIT_GRAMS[self.unit] / 10**decimals


VARIANTS = [
    Variant("manual-g", "standard", "g"),
    Variant("echo-g", "echo", "g"),
    Variant("manual-kg", "standard", "kg"),
    Variant("echo-lb", "echo", "lb"),
    Variant("manual-oz", "standard", "oz"),
]


@contextlib.asynccontextmanager
async def scale_and_driver(
    variant: Variant, endpoint: MqttEndpoint, site: str, *, mode: str = "request"
) -> AsyncIterator[tuple[ScaleSim, Driver]]:
    options = ScaleOptions(
        dialect=variant.dialect,  # type: ignore[arg-type]
        unit=variant.unit,  # type: ignore[arg-type]
        settle_s=0.4,
        stable_timeout_s=1.0,
        continuous_interval_s=0.05,
        serial_number="B000000042",
    )
    async with ScaleSim.over_pty(f"sim-{variant.name}", options=options) as sim:
        device = ScaleDevice(
            id="scale-v",
            zone="pack",
            station="P1",
            link=SerialLink(url=sim.url),
            unit=variant.unit,  # type: ignore[arg-type]
            mode=mode,  # type: ignore[arg-type]
            stable_within_s=3.0,
        )
        driver = make_driver(device, endpoint, site)
        async with running(driver):
            yield sim, driver


async def ack_ok(watch: Watch, name: str, **fields: object) -> None:
    ack = await watch.ack("scale-v", await watch.command("scale-v", name, **fields))
    assert ack["ok"] is True, f"{name} {fields}: {ack['error']}"


def weights(watch: Watch) -> list[tuple[float, bool]]:
    return [(w["grams"], w["stable"]) for w in watch.on("dev/scale-v/evt/weight")]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
async def test_request_mode(
    variant: Variant, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    loop = asyncio.get_running_loop()
    step = variant.resolution_g
    async with scale_and_driver(variant, mqtt_endpoint, site) as (sim, driver):
        started = loop.time()
        await watch.status("scale-v", "online", within=2)
        assert loop.time() - started < 2
        # Several probes, no dead letter, no flapping.
        await sim.wait_for(lambda: list(sim.commands).count("SI") >= 3, 5)

        sim.place(1234.5, settle_s=0.4)
        await ack_ok(watch, "weigh")
        (grams, stable) = weights(watch)[-1]
        assert stable and abs(grams - 1234.5) <= step

        sim.place(800.0, settle_s=0.6)
        await ack_ok(watch, "weigh", dynamic=True)
        seen = weights(watch)[1:]
        assert any(not stable for _, stable in seen), seen  # moving readings, asked for
        assert seen[-1][1] and abs(seen[-1][0] - 800.0) <= step

        await ack_ok(watch, "tare")
        assert abs(sim.tare_g - 800.0) <= step
        sim.add(100.0, settle_s=0.3)
        await ack_ok(watch, "tare", immediate=True)  # TI: at once, moving or not
        assert sim.tare_g > 0
        await ack_ok(watch, "reset")
        assert sim.tare_g == 0.0  # @ clears the tare

        await ack_ok(watch, "tare", preset_g=250.0)
        assert abs(sim.tare_g - 250.0) <= step
        await sim.wait_for(lambda: sim.stable, 2)
        await ack_ok(watch, "weigh")
        assert abs(weights(watch)[-1][0] - (900.0 - 250.0)) <= 2 * step

        sim.remove(settle_s=0.2)
        await ack_ok(watch, "zero")
        sim.place(12.0, settle_s=0.3)  # a label on the empty pan
        await ack_ok(watch, "zero", immediate=True)
        assert abs(sim.zero_offset_g) <= 12.0 + step
        statuses = [s["state"] for s in watch.on("dev/scale-v/status")]
        commands = set(sim.commands)
    assert {"S", "SI", "T", "TI", "@", "Z", "ZI"} <= commands
    assert any(c.startswith("TA ") for c in commands)
    assert statuses == ["online"]  # never a fault, never flapping
    assert watch.on("dlq") == []
    assert driver.counters.bad_frames == 0


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
async def test_continuous_mode(
    variant: Variant, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    step = variant.resolution_g
    async with scale_and_driver(variant, mqtt_endpoint, site, mode="continuous") as (sim, _):
        await watch.status("scale-v", "online", within=2)
        await sim.wait_for(lambda: sim.streaming, 2)
        sim.place(1500.0, settle_s=0.5)
        await watch.wait(lambda: any(abs(g - 1500.0) <= step for g, _ in weights(watch)), 3)
        settled = [w for w in weights(watch) if w[1]]
        # Settling published once (no event per stable reading of the stream), and the
        # moving readings not at all: the floor file did not ask for them.
        assert [abs(g - 1500.0) <= step for g, _ in settled[-1:]] == [True]
        assert all(stable for _, stable in weights(watch))
        count = len(weights(watch))
        await asyncio.sleep(0.5)
        assert len(weights(watch)) == count  # still 1500 g: nothing new to say

        await ack_ok(watch, "tare")  # interrupts SIR; the driver restarts it
        await sim.wait_for(lambda: sim.streaming, 2)
        await watch.wait(lambda: any(abs(g) <= step for g, _ in weights(watch)[count:]), 3)

        await ack_ok(watch, "weigh")  # from the stream: the next settled weight
        assert abs(weights(watch)[-1][0]) <= step and weights(watch)[-1][1]
        sim.add(300.0, settle_s=0.6)
        await ack_ok(watch, "weigh", dynamic=True)
        tail = weights(watch)[count:]
        assert any(not stable for _, stable in tail)
        assert tail[-1][1] and abs(tail[-1][0] - 300.0) <= step
        sim.remove(settle_s=0)  # lifted off (a parcel dropped back would swing below 0)
        await ack_ok(watch, "zero", immediate=True)
        await sim.wait_for(lambda: sim.streaming, 2)
        sim.add(5000.0, settle_s=0)
        zero = await watch.ack("scale-v", await watch.command("scale-v", "zero", immediate=True))
        assert zero["ok"] is False
        assert zero["error"].endswith("above the zero-setting range (ZI +)")
        statuses = [s["state"] for s in watch.on("dev/scale-v/status")]
    assert statuses == ["online"]
    assert watch.on("dlq") == []


async def test_continuous_mode_survives_a_scale_restart(
    mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    """A power cut ends SIR on the scale: the driver reports it and asks again."""
    variant = VARIANTS[0]
    async with scale_and_driver(variant, mqtt_endpoint, site, mode="continuous") as (sim, _):
        await watch.status("scale-v", "online", within=2)
        await sim.wait_for(lambda: sim.streaming, 2)
        sim._stop_stream()  # the scale restarted: it no longer streams
        await watch.status("scale-v", "fault", detail="stopped streaming", within=4)
        await watch.status("scale-v", "online", within=4)
        assert sim.streaming
    assert watch.on("dlq") == []
