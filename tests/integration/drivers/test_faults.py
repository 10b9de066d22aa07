"""Fault drills: the broker goes away under load, a device spews garbage.

These run against a private Mosquitto so stopping it cannot disturb other tests.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import pytest

from drivers.options import DriverOptions
from tests.integration.drivers.support import FAST, Pty, Watch, make_driver, running
from wcs.floor import ScannerDevice, SerialLink
from wcs.mqtt.mosquitto import PrivateMosquitto


@pytest.fixture
def broker() -> Iterator[PrivateMosquitto]:
    # Persistence keeps the test subscriber's session (and its queued messages)
    # across the restart, so what it sees does not depend on who reconnects first.
    with PrivateMosquitto(persistence=True) as private:
        yield private


def scanner(url: str) -> ScannerDevice:
    return ScannerDevice(id="scan-p1", zone="pack", link=SerialLink(url=url))


@pytest.mark.slow
async def test_broker_outage_loses_nothing(pty: Pty, broker: PrivateMosquitto, site: str) -> None:
    total = 500
    driver = make_driver(scanner(pty.path), broker.endpoint, site)
    async with Watch(broker.endpoint, site, persistent=True) as watch, running(driver):
        await watch.status("scan-p1", "online")

        async def feed() -> None:
            for n in range(total):
                await pty.write(f"T{n:06d}\r\n".encode())
                await asyncio.sleep(0.024)  # 500 scans over 12 s, a busy pack line

        feeder = asyncio.create_task(feed(), name="test-feed")
        await asyncio.sleep(1.0)
        await asyncio.to_thread(broker.stop)
        assert watch.count("dev/scan-p1/evt/scan") < total
        await asyncio.sleep(10.0)
        assert driver.bridge.connected.is_set() is False
        buffered = len(driver.bridge.outbox)
        assert buffered > 300  # the scans kept coming while the broker was away
        await asyncio.to_thread(broker.start)
        await feeder
        await watch.wait(
            lambda: len({s["code"] for s in watch.on("dev/scan-p1/evt/scan")}) == total, 30
        )
    scans = watch.on("dev/scan-p1/evt/scan")
    codes_in_order = list(dict.fromkeys(s["code"] for s in scans))
    assert codes_in_order == [f"T{n:06d}" for n in range(total)]
    ids_per_code: dict[str, set[str]] = {}
    for s in scans:
        ids_per_code.setdefault(s["code"], set()).add(s["msg_id"])
    # a repeat is only ever a redelivery of the same event, never a second event
    assert all(len(ids) == 1 for ids in ids_per_code.values())
    assert len({s["msg_id"] for s in scans}) == total
    assert driver.counters.events_dropped == 0
    assert driver.counters.mqtt_failures >= 1


async def test_offline_buffer_is_bounded(pty: Pty, broker: PrivateMosquitto, site: str) -> None:
    options = DriverOptions(**{**FAST.__dict__, "buffer_capacity": 50})
    driver = make_driver(scanner(pty.path), broker.endpoint, site, options=options)
    async with Watch(broker.endpoint, site, persistent=True) as watch, running(driver):
        await watch.status("scan-p1", "online")
        await asyncio.to_thread(broker.stop)
        await pty.write(b"".join(f"B{n:04d}\r".encode() for n in range(200)))
        await asyncio.sleep(0.5)
        assert len(driver.bridge.outbox) == 50
        assert driver.counters.events_dropped == 150
        await asyncio.to_thread(broker.start)
        await watch.wait(lambda: watch.count("dev/scan-p1/evt/scan") >= 50, 15)
        await asyncio.sleep(0.3)
    codes = list(dict.fromkeys(s["code"] for s in watch.on("dev/scan-p1/evt/scan")))
    assert codes == [f"B{n:04d}" for n in range(150, 200)]  # the newest 50, in order


def garbage(rng: random.Random) -> bytes:
    """A frame no scanner sends: random bytes with at least one control byte in it."""
    size = 5000 if rng.random() < 0.01 else rng.randint(1, 120)
    allowed = [b for b in range(256) if b not in (0x0A, 0x0D)]
    frame = bytearray(rng.choice(allowed) for _ in range(size))
    frame[rng.randrange(size)] = rng.choice([0x00, 0x01, 0x07, 0x08, 0x1B, 0x7F])
    return bytes(frame)


async def test_ten_thousand_garbage_frames(pty: Pty, broker: PrivateMosquitto, site: str) -> None:
    total = 10_000
    rng = random.Random(20261125)
    frames = [garbage(rng) for _ in range(total)]
    driver = make_driver(scanner(pty.path), broker.endpoint, site)
    async with Watch(broker.endpoint, site) as watch, running(driver):
        await watch.status("scan-p1", "online")
        for start in range(0, total, 500):
            await pty.write(b"".join(f + b"\r\n" for f in frames[start : start + 500]))
            await asyncio.sleep(0.01)
        await pty.write(b"]C100106141411234567897\r\n")  # still alive afterwards
        await watch.expect("dev/scan-p1/evt/scan", 1, within=30)
        await watch.wait(lambda: watch.count("dlq") >= total, 30)
        await asyncio.sleep(0.2)
        assert (await watch.status("scan-p1", "online"))["state"] == "online"
    assert watch.count("dlq") == total
    assert driver.counters.bad_frames == total
    assert driver.counters.frames == 1
    dead = watch.on("dlq")
    assert all(d["topic"] == pty.path and "scanner scan-p1" in d["error"] for d in dead)
    assert max(len(d["raw"]) for d in dead) <= 1024 * 4 + 16
