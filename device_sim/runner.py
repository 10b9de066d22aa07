"""``wcs sim --floor FILE``: serve every device of a floor until SIGINT or SIGTERM.

Run on its own the floor has nobody standing at it, except at the pick-to-light
panels: unless told otherwise every panel runs the automatic picker, which confirms a
lit slot one second after it lights, so a pick wave makes progress with only the
drivers and the controller attached. Scanners, scales, printers and diverters wait for
a scenario (see :class:`device_sim.floor.SimFloor`) to act on them.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from device_sim.floor import SimFloor, SimOptions
from device_sim.ptl import PickerBehaviour, PtlOptions
from wcs.floor import load_floor
from wcs.logs import get_logger
from wcs.settings import Settings

log = get_logger("device_sim.runner")

STANDALONE = SimOptions(ptl=PtlOptions(picker=PickerBehaviour(delay_s=1.0)))


async def run_floor(
    floor_path: Path,
    settings: Settings,
    *,
    options: SimOptions | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve the floor's devices until a signal arrives (or ``stop`` is set)."""
    floor = load_floor(floor_path)
    if floor.site != settings.site:
        log.warning("floor file is for another site", floor_site=floor.site, site=settings.site)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):
            continue  # not the main thread, or a platform without signal handlers
        installed.append(signum)
    try:
        async with SimFloor(floor, options or STANDALONE) as sim:
            for device in sim.floor.devices:
                link = device.link
                where = link.url if link.type == "serial" else f"{link.host}:{link.port}"
                extra = {"unit": link.unit} if link.type == "modbus" else {}
                log.info(
                    "serving",
                    device=device.id,
                    kind=device.kind,
                    zone=device.zone,
                    address=where,
                    **extra,
                )
            log.info("simulated floor ready", file=str(floor_path), devices=len(sim.devices))
            await stop.wait()
            log.info("simulated floor stopping")
        log.info("simulated floor stopped")
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
