"""Line noise from the scale and the printer: counted, dead-lettered, survived.

The scanner's garbage drill lives with the driver fault tests; these add the two
other byte-stream devices. Random bytes arrive while the driver is idle (the status
probe is slowed down so no reply of the device can be cut in two by the noise);
afterwards the device still works through the same driver.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from drivers.frame import MAX_LINE
from tests.integration.drivers.support import FAST, Pty, Watch, make_driver, running
from tests.integration.drivers.test_printer import LABEL, Zebra, zebra
from tests.integration.drivers.test_scale import device as scale_device
from tests.integration.drivers.test_scale import scale_on
from wcs.floor import PrinterDevice, TcpLink
from wcs.mqtt.mosquitto import PrivateMosquitto
from wcs.settings import MqttEndpoint

pytestmark = pytest.mark.broker

# No status probe while the noise is on the wire: nothing of the device's own to garble.
QUIET = replace(FAST, scale_poll_s=3600.0)


@pytest.fixture
def pty(tmp_path: Path) -> Iterator[Pty]:
    device = Pty(tmp_path, "ttyNOISE")
    try:
        yield device
    finally:
        device.close()


@pytest.fixture
def broker() -> Iterator[PrivateMosquitto]:
    # Thousands of dead letters in a burst: a shared broker's per-client queue limit
    # (1000 by default) would drop some on the way to the watcher.
    with PrivateMosquitto() as private:
        yield private


@pytest.fixture
def endpoint(broker: PrivateMosquitto) -> MqttEndpoint:
    return broker.endpoint


@pytest.fixture
async def watch(endpoint: MqttEndpoint, site: str) -> AsyncIterator[Watch]:
    async with Watch(endpoint, site) as w:
        yield w


def noise_line(rng: random.Random) -> bytes:
    """One line an MT-SICS scale never sends: random bytes with a non-ASCII one in it."""
    size = rng.randint(1, 200)
    line = bytearray(
        rng.choice([b for b in range(256) if b not in (0x0A, 0x0D)]) for _ in range(size)
    )
    line[rng.randrange(size)] = rng.randint(0x80, 0xFF)
    return bytes(line)


async def test_scale_survives_random_bytes(
    pty: Pty, endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    rng = random.Random(4242)
    lines = [noise_line(rng) for _ in range(1500)]
    # Plausible-looking lies count as noise too. (A well-formed reply the driver has no
    # meaning for - "Q Q", a weight in stones - is no noise: the scale is alive and says
    # something odd; it refuses a command or is a fault, but is not dead-lettered.)
    lines += [b"S S nan g", b"S S 1e400 g", b"S S 12.5", b"S S", b"s s 1 g"]
    overlong = bytes(rng.randint(0x20, 0x7E) for _ in range(MAX_LINE * 3))
    driver = make_driver(scale_device(pty), endpoint, site, options=QUIET)
    async with scale_on(pty), running(driver):
        await watch.status("scale-p1", "online")
        for start in range(0, len(lines), 20):
            await pty.write(b"".join(line + b"\r\n" for line in lines[start : start + 20]))
        await pty.write(overlong + b"\r\n")
        total = len(lines) + 1
        await watch.wait(lambda: watch.count("dlq") >= total, 30)
        await asyncio.sleep(0.2)
        # Still a scale: it weighs on command.
        ack = await watch.ack("scale-p1", await watch.command("scale-p1", "weigh"))
        (weight,) = await watch.expect("dev/scale-p1/evt/weight")
        statuses = {s["state"] for s in watch.on("dev/scale-p1/status")}
    assert statuses == {"online"}  # never a fault for noise
    assert ack["ok"] is True and weight["grams"] == 1234.5
    assert driver.counters.bad_frames == total == watch.count("dlq")
    dead = watch.on("dlq")
    assert all(d["topic"] == pty.path and "scale scale-p1" in d["error"] for d in dead)
    assert any("not ASCII" in d["error"] for d in dead)
    assert any(f"no line end within {MAX_LINE} bytes" in d["error"] for d in dead)
    assert max(len(d["raw"]) for d in dead) <= 1024 * 4 + 16


async def test_printer_survives_random_bytes(
    endpoint: MqttEndpoint, site: str, watch: Watch
) -> None:
    rng = random.Random(9100)
    printer = Zebra()
    async with zebra(printer) as port:
        device = PrinterDevice(
            id="prn-p1",
            zone="pack",
            station="P1",
            link=TcpLink(host="127.0.0.1", port=port),
            status_poll_s=3600,
            status_timeout_s=1.0,
        )
        driver = make_driver(device, endpoint, site)
        async with running(driver):
            await watch.status("prn-p1", "online")
            writer = printer._writers[-1]
            for _ in range(200):  # framing bytes included: STX/ETX in the wrong places
                writer.write(rng.randbytes(rng.randint(1, 300)) + bytes([rng.choice((2, 3, 13))]))
                await writer.drain()
                await asyncio.sleep(0.001)
            await watch.wait(lambda: driver.counters.bad_frames > 0, 20)
            await asyncio.sleep(0.5)
            # The link and its status protocol still work, and so does printing.
            status = await driver.query_status()
            cmd = await watch.command("prn-p1", "print", zpl=LABEL, job_id="j1")
            ack = await watch.ack("prn-p1", cmd)
            await watch.wait(lambda: watch.count("dlq") >= driver.counters.bad_frames, 20)
            await asyncio.sleep(0.2)
    assert status is not None and status.detail is None
    assert ack["ok"] is True
    assert printer.zpl.decode().endswith(LABEL)
    assert watch.count("dlq") == driver.counters.bad_frames > 0
    assert all("printer prn-p1" in d["error"] for d in watch.on("dlq"))
