"""``wcs drivers --floor FILE``: one driver per device on the floor, run together.

Each driver is a named task (``driver:<device id>``) in one TaskGroup. SIGINT and
SIGTERM stop them cleanly: buffered events are flushed for a few seconds, then each
device's retained status says ``offline`` ("driver stopped"). A driver that fails on
a bug is logged and restarted; it never takes the other devices down with it.

The drivers do not start a broker of their own: while none answers they keep
reconnecting with backoff and buffer events (bounded), so starting the drivers before
the broker loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

from drivers.base import Driver, Resources
from drivers.options import DriverOptions
from drivers.registry import build_driver
from wcs.contract import Topics
from wcs.floor import DiverterDevice, Floor, PtlDevice, load_floor
from wcs.logs import get_logger
from wcs.retry import Reconnect
from wcs.settings import Settings

log = get_logger("drivers.runner")


def build_drivers(floor: Floor, settings: Settings, options: DriverOptions) -> list[Driver]:
    """One driver per device; ConfigError when two devices claim one port or unit."""
    topics = Topics(settings.site)
    resources = Resources()
    return [
        build_driver(
            device,
            endpoint=settings.mqtt,
            topics=topics,
            options=options,
            resources=resources,
            register_map=(
                floor.register_map(device)
                if isinstance(device, PtlDevice | DiverterDevice)
                else None
            ),
        )
        for device in floor.devices
    ]


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):
            continue  # not the main thread (tests) or no signals on this platform
        installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def supervise(driver: Driver) -> None:
    """Run ``driver`` until cancelled; one that fails on a bug is logged with its
    traceback and restarted after the backoff, never taking the others down."""
    restarts = Reconnect(f"driver {driver.device_id}", log, driver.options.backoff, expected=())
    await restarts.run(driver.run)


async def run_floor(
    floor_path: Path,
    settings: Settings,
    *,
    options: DriverOptions | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run every device's driver until SIGINT/SIGTERM (or until ``stop`` is set)."""
    options = options or DriverOptions()
    floor = load_floor(floor_path)
    if floor.site != settings.site:
        log.warning(
            "floor file names another site; using the configured one",
            floor_site=floor.site,
            site=settings.site,
        )
    drivers = build_drivers(floor, settings, options)
    stop = stop or asyncio.Event()
    log.info(
        "drivers starting",
        floor=str(floor_path),
        devices=len(drivers),
        site=settings.site,
        broker=f"{settings.mqtt.host}:{settings.mqtt.port}",
    )
    with _stop_on_signals(stop):
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(supervise(driver), name=f"driver:{driver.device_id}")
                for driver in drivers
            ]
            await stop.wait()
            log.info("stopping drivers", devices=len(tasks))
            for task in tasks:
                task.cancel()
    log.info("drivers stopped")
