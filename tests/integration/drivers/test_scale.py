"""Scale drivers against a test-side scale on a pty: MT-SICS and Toledo continuous."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from drivers.scale.toledo import encode_frame
from tests.integration.drivers.support import Pty, Watch, make_driver, running
from wcs.floor import ScaleDevice, SerialLink
from wcs.settings import MqttEndpoint


@dataclass
class MtSicsScale:
    """The scale's side of MT-SICS, answering every command line it receives."""

    pty: Pty
    weight: str = "1234.5"
    unit: str = "g"
    busy: int = 0  # answer this many S commands with "S I" first
    overload: bool = False
    zero_refused: bool = False
    silent: bool = False
    commands: list[str] = field(default_factory=list)
    # command -> the reply to send instead of the usual one
    odd: dict[str, bytes] = field(default_factory=dict)

    def answer(self, command: str) -> bytes | None:
        if self.silent:
            return None
        if command in self.odd:
            return self.odd[command]
        match command:
            case "S":
                if self.overload:
                    return b"S +"
                if self.busy:
                    self.busy -= 1
                    return b"S I"
                return f"S S {self.weight:>10} {self.unit}".encode()
            case "SI":
                return b"S +" if self.overload else f"S D {self.weight:>10} {self.unit}".encode()
            case "Z":
                return b"Z I" if self.zero_refused else b"Z A"
            case "T":
                return f"T S {self.weight:>10} {self.unit}".encode()
            case "@":
                return b'I4 A "B021002593"'
        return b"ES"

    async def run(self) -> None:
        buffer = b""
        while True:
            buffer += await self.pty.read(within=3600)
            while b"\r\n" in buffer:
                line, buffer = buffer.split(b"\r\n", 1)
                command = line.decode()
                self.commands.append(command)
                reply = self.answer(command)
                if reply is not None:
                    await self.pty.write(reply + b"\r\n")


@contextlib.asynccontextmanager
async def scale_on(pty: Pty) -> AsyncIterator[MtSicsScale]:
    scale = MtSicsScale(pty)
    task = asyncio.create_task(scale.run(), name="test-scale")
    try:
        yield scale
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def device(pty: Pty, protocol: str = "mt-sics") -> ScaleDevice:
    return ScaleDevice(
        id="scale-p1",
        zone="pack",
        station="P1",
        link=SerialLink(url=pty.path),
        protocol=protocol,  # type: ignore[arg-type]
        stable_within_s=1.5,
    )


async def test_weigh_publishes_a_stable_weight_and_acks(
    pty: Pty, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    async with scale_on(pty) as scale, running(make_driver(device(pty), mqtt_endpoint, site)):
        await watch.status("scale-p1", "online")
        cmd = await watch.command("scale-p1", "weigh")
        ack = await watch.ack("scale-p1", cmd)
        (weight,) = await watch.expect("dev/scale-p1/evt/weight")
        assert ack["ok"] is True and ack["error"] is None
        assert weight["grams"] == 1234.5 and weight["stable"] is True
        assert "S" in scale.commands


async def test_busy_scale_is_retried_then_weighed_in_kg(
    pty: Pty, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    async with scale_on(pty) as scale, running(make_driver(device(pty), mqtt_endpoint, site)):
        scale.weight, scale.unit, scale.busy = "1.2345", "kg", 2
        await watch.status("scale-p1", "online")
        cmd = await watch.command("scale-p1", "weigh")
        ack = await watch.ack("scale-p1", cmd)
        (weight,) = await watch.expect("dev/scale-p1/evt/weight")
        assert ack["ok"] is True
        assert weight["grams"] == 1234.5
        assert scale.commands.count("S") == 3


async def test_never_stable_acks_not_ok_without_weight(
    pty: Pty, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    async with scale_on(pty) as scale, running(make_driver(device(pty), mqtt_endpoint, site)):
        scale.busy = 100
        await watch.status("scale-p1", "online")
        cmd = await watch.command("scale-p1", "weigh")
        ack = await watch.ack("scale-p1", cmd)
        assert ack["ok"] is False
        assert "no stable weight within 1.5 s" in ack["error"]
        assert "kept answering 'S I'" in ack["error"]
        assert watch.on("dev/scale-p1/evt/weight") == []


async def test_tare_and_zero(
    pty: Pty, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    async with scale_on(pty) as scale, running(make_driver(device(pty), mqtt_endpoint, site)):
        await watch.status("scale-p1", "online")
        tare = await watch.ack("scale-p1", await watch.command("scale-p1", "tare"))
        zero = await watch.ack("scale-p1", await watch.command("scale-p1", "zero"))
        scale.zero_refused = True
        refused = await watch.ack("scale-p1", await watch.command("scale-p1", "zero"))
    assert tare["ok"] and zero["ok"]
    assert refused["ok"] is False and "Z I" in refused["error"]
    assert {"T", "Z"} <= set(scale.commands)


async def test_overload_and_silence_are_faults(
    pty: Pty, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    async with scale_on(pty) as scale, running(make_driver(device(pty), mqtt_endpoint, site)):
        await watch.status("scale-p1", "online")
        scale.overload = True
        await watch.status("scale-p1", "fault", detail="overload")
        cmd = await watch.command("scale-p1", "weigh")
        assert "overload" in (await watch.ack("scale-p1", cmd))["error"]
        scale.overload = False
        await watch.status("scale-p1", "online")
        scale.silent = True
        await watch.status("scale-p1", "fault", detail="does not answer")
        scale.silent = False
        await watch.status("scale-p1", "online", within=5)


async def test_bad_and_repeated_commands(
    pty: Pty, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    driver = make_driver(device(pty), mqtt_endpoint, site)
    async with scale_on(pty) as scale, running(driver):
        await watch.status("scale-p1", "online")
        await watch.publish("dev/scale-p1/cmd/weigh", b"{not json")
        await watch.publish("dev/scale-p1/cmd/tare", json.dumps({"v": 1}).encode())
        dead = await watch.expect("dlq", 2)
        assert "not valid JSON" in dead[0]["error"]
        assert "cmd_id" in dead[1]["error"]
        assert dead[0]["topic"].endswith("/dev/scale-p1/cmd/weigh")
        # a command this device does not take is acked, not run
        cmd = await watch.command("scale-p1", "print", zpl="^XA^XZ")
        assert "does not take 'print'" in (await watch.ack("scale-p1", cmd))["error"]
        # the same cmd_id twice (a QoS 1 redelivery): weighed once, acked twice
        before = scale.commands.count("S")
        await watch.command("scale-p1", "weigh", cmd_id="c-same")
        await watch.ack("scale-p1", "c-same")
        await watch.command("scale-p1", "weigh", cmd_id="c-same")
        acks = await watch.expect("dev/scale-p1/ack", 3)
        await asyncio.sleep(0.2)
    assert [a["ok"] for a in acks if a["cmd_id"] == "c-same"] == [True, True]
    assert scale.commands.count("S") == before + 1
    assert len(watch.on("dev/scale-p1/evt/weight")) == 1
    assert driver.counters.commands_invalid == 2
    assert driver.counters.commands_duplicate == 1


async def test_toledo_continuous(
    pty: Pty, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    driver = make_driver(device(pty, "toledo-continuous"), mqtt_endpoint, site)
    streaming = {"value": 0.0, "stable": True}

    async def stream() -> None:
        while True:
            await pty.write(encode_frame(streaming["value"], stable=bool(streaming["stable"])))
            await asyncio.sleep(0.02)

    async with running(driver):
        feeder = asyncio.create_task(stream(), name="test-toledo-stream")
        try:
            await watch.status("scale-p1", "online")
            streaming.update(value=0.8, stable=False)
            await asyncio.sleep(0.1)
            streaming.update(value=0.85, stable=True)
            settled = await watch.expect("dev/scale-p1/evt/weight", 2)
            assert settled[0]["grams"] == 0.0 and settled[-1]["grams"] == 850.0
            cmd = await watch.command("scale-p1", "weigh")
            assert (await watch.ack("scale-p1", cmd))["ok"] is True
            weights = await watch.expect("dev/scale-p1/evt/weight", 3)
            assert weights[-1] == {**weights[-1], "grams": 850.0, "stable": True}
            feeder.cancel()
            await watch.status("scale-p1", "fault", detail="stopped sending", within=5)
        finally:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
    assert not [d for d in watch.on("dlq") if "scale-p1" in d["error"]]


async def test_unexpected_but_well_formed_replies_keep_the_scale_online(
    pty: Pty, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    """A scale answering outside the manual but within MT-SICS's grammar is alive: no
    dead letter per probe, no flapping; a command it answers oddly is refused in words."""
    async with scale_on(pty) as scale, running(make_driver(device(pty), mqtt_endpoint, site)):
        scale.odd = {"SI": b"SIX A 7", "S": b"S Q", "T": b'I2 A "WXS205SDU 220.00900 g"'}
        await watch.status("scale-p1", "online", within=2)
        await watch.wait(lambda: scale.commands.count("SI") >= 4, within=4)
        weigh = await watch.ack("scale-p1", await watch.command("scale-p1", "weigh"))
        tare = await watch.ack("scale-p1", await watch.command("scale-p1", "tare"))
        statuses = [s["state"] for s in watch.on("dev/scale-p1/status")]
    assert weigh["ok"] is False and "status Q (S Q)" in weigh["error"]
    assert tare["ok"] is False
    assert "unexpected answer 'I2 A \"WXS205SDU 220.00900 g\"'" in tare["error"]
    for text in (weigh["error"], tare["error"]):
        assert "Status(" not in text and "Other(" not in text and "Weight(" not in text
    assert statuses == ["online"]
    assert watch.on("dlq") == []


async def test_a_weight_that_never_settles_gives_a_plain_reason(
    pty: Pty, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    """A scale that answers S at once with S D (it does not wait for stability) is
    asked again until the bound; the reason names the last reading, in words."""
    async with scale_on(pty) as scale, running(make_driver(device(pty), mqtt_endpoint, site)):
        scale.odd = {"S": b"S D     1234.5 g"}
        await watch.status("scale-p1", "online", within=2)
        started = asyncio.get_running_loop().time()
        ack = await watch.ack("scale-p1", await watch.command("scale-p1", "weigh"))
        took = asyncio.get_running_loop().time() - started
        asked = scale.commands.count("S")
    assert ack["ok"] is False
    assert ack["error"] == (
        "scale scale-p1: weigh: no stable weight within 1.5 s "
        "(last reading 1234.5 g (moving)); check nothing touches the pan"
    )
    assert 1.4 <= took < 4.0
    assert asked >= 4
    assert watch.on("dev/scale-p1/evt/weight") == []  # moving readings only when asked


async def test_weigh_with_dynamic_readings_publishes_them_unstable(
    pty: Pty, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    async with scale_on(pty) as scale, running(make_driver(device(pty), mqtt_endpoint, site)):
        await watch.status("scale-p1", "online", within=2)
        # The probe's own SI replies are not events; the weigh's are.
        scale.odd = {"SI": b"SI D      980.2 g"}
        cmd = await watch.command("scale-p1", "weigh", dynamic=True)
        await watch.expect("dev/scale-p1/evt/weight", 2)
        scale.odd = {"SI": b"SI S     1001.0 g"}
        ack = await watch.ack("scale-p1", cmd)
        weights = watch.on("dev/scale-p1/evt/weight")
    assert ack["ok"] is True
    assert {(w["grams"], w["stable"]) for w in weights[:-1]} == {(980.2, False)}
    assert (weights[-1]["grams"], weights[-1]["stable"]) == (1001.0, True)


async def test_a_unit_without_conversion_is_a_fault_not_dead_letters(
    pty: Pty, mqtt_endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    async with scale_on(pty) as scale, running(make_driver(device(pty), mqtt_endpoint, site)):
        scale.odd = {"SI": b"S S 12 stone"}
        await watch.status("scale-p1", "fault", detail="'stone'", within=3)
        await watch.wait(lambda: scale.commands.count("SI") >= 3, within=4)
        scale.odd = {}
        await watch.status("scale-p1", "online", within=3)
        # Bytes that are not MT-SICS at all still go to dlq, once per frame.
        await pty.write(b"\x01\x02garbage\r\n")
        (dead,) = await watch.expect("dlq")
    assert "not an MT-SICS reply" in dead["error"] or "control" in dead["error"]
