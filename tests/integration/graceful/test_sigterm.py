"""SIGTERM under load: ``wcs controller`` drains, exits 0, and loses nothing.

The controller acknowledges an MQTT message only after its effect committed, on a
persistent session named by its instance id. So every event the broker accepted
before (or during) the shutdown is either committed by the stopping process or
redelivered to the restarted one: after the restart each of them is in the inbox.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.graceful.support import (
    ControllerProcess,
    EventStream,
    inbox_keys,
    write_floor,
)
from wcs.mqtt.mosquitto import PrivateMosquitto

pytestmark = [pytest.mark.broker, pytest.mark.slow]


async def test_sigterm_drains_and_nothing_is_lost(
    tmp_path: Path, broker: PrivateMosquitto, sqlite: tuple[str, AsyncEngine], site: str
) -> None:
    url, engine = sqlite
    controller = ControllerProcess(
        write_floor(tmp_path, site), url, broker.url, site, tmp_path / "controller.log", "sig1"
    )
    stream = EventStream(broker.endpoint, site, rate_per_s=400)
    try:
        await asyncio.to_thread(controller.start)
        stream.start()
        await asyncio.sleep(2.0)
        code, took = await asyncio.to_thread(controller.terminate, 10.0)
        before_restart = await inbox_keys(engine)
        await asyncio.sleep(0.5)  # events keep coming while no controller runs
        await stream.stop()
        sent = list(stream.accepted)
        assert code == 0, controller.tail()
        assert took < 5.0, f"SIGTERM took {took:.1f} s"
        assert "draining" in controller.tail()
        assert len(before_restart) > 100  # it was really working when the signal came

        await asyncio.to_thread(controller.start)
        missing: set[str] = set(sent)
        async with asyncio.timeout(30):
            while missing:
                missing -= await inbox_keys(engine)
                await asyncio.sleep(0.1)
        code, _ = await asyncio.to_thread(controller.terminate, 10.0)
        assert code == 0, controller.tail()
    finally:
        await stream.stop()
        controller.kill()
    # What the first run had not committed, the restarted one received and applied.
    assert set(sent) - before_restart, "the restart had nothing to pick up: test too weak"
    print(f"{len(sent)} events; {len(before_restart)} committed before SIGTERM ({took:.2f} s)")
