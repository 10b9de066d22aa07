"""Memory under a steady load: the controller's RSS stays flat after warm-up.

One minute in CI form; ``WCS_SOAK_MINUTES=10`` runs the long variant. The controller
is a real ``wcs controller`` process; events (some of them junk for the dead-letter
path) arrive at a steady rate and RSS is sampled from ``/proc``.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.graceful.support import (
    ControllerProcess,
    EventStream,
    inbox_count,
    write_floor,
)
from wcs.mqtt.mosquitto import PrivateMosquitto

pytestmark = [pytest.mark.broker, pytest.mark.slow]

MINUTES = float(os.environ.get("WCS_SOAK_MINUTES", "1"))
RATE_PER_S = 250
SAMPLE_S = 5.0
MAX_GROWTH = 0.20


@pytest.mark.timeout(int(MINUTES * 60 + 120))
async def test_rss_stays_flat_under_steady_load(
    tmp_path: Path, broker: PrivateMosquitto, sqlite: tuple[str, AsyncEngine], site: str
) -> None:
    url, engine = sqlite
    controller = ControllerProcess(
        write_floor(tmp_path, site), url, broker.url, site, tmp_path / "soak.log", "soak"
    )
    stream = EventStream(broker.endpoint, site, rate_per_s=RATE_PER_S, garbage_every=10)
    duration = MINUTES * 60
    warm_up = min(20.0, duration / 3)
    samples: list[tuple[float, int]] = []
    try:
        await asyncio.to_thread(controller.start)
        stream.start()
        started = time.monotonic()
        while time.monotonic() - started < duration:
            await asyncio.sleep(SAMPLE_S)
            elapsed = time.monotonic() - started
            samples.append((elapsed, controller.rss_kib()))
            print(f"t={elapsed:6.1f}s rss={samples[-1][1] / 1024:7.1f} MiB "
                  f"published={len(stream.accepted)}")  # fmt: skip
        await stream.stop()
        async with asyncio.timeout(30):
            while await inbox_count(engine) < len(stream.accepted):
                await asyncio.sleep(0.2)
        code, _ = await asyncio.to_thread(controller.terminate, 10.0)
        assert code == 0, controller.tail()
    finally:
        await stream.stop()
        controller.kill()
    settled = [rss for at, rss in samples if at >= warm_up]
    baseline = settled[0]
    peak = max(settled)
    print(f"baseline after warm-up {baseline / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, "
          f"{len(stream.accepted)} events and {stream.garbage} junk messages")  # fmt: skip
    assert len(stream.accepted) >= RATE_PER_S * duration * 0.8  # the load really ran
    assert peak <= baseline * (1 + MAX_GROWTH), samples
