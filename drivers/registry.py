"""Which driver class serves which device kind, and how one is built."""

from __future__ import annotations

from typing import TypeVar

from drivers.base import Driver, Resources
from drivers.bridge import MqttBridge
from drivers.options import DriverOptions
from wcs.contract import Topics
from wcs.errors import ConfigError
from wcs.floor import (
    Device,
    DiverterDevice,
    PrinterDevice,
    PtlDevice,
    ScaleDevice,
    ScannerDevice,
)
from wcs.register_maps import SHIPPED, DiverterMap, PtlMap
from wcs.settings import MqttEndpoint

M = TypeVar("M", PtlMap, DiverterMap)


def _map(device: PtlDevice | DiverterDevice, given: object, kind: type[M]) -> M:
    found = given if given is not None else SHIPPED.get(device.register_map)
    if not isinstance(found, kind):
        raise ConfigError(
            f"device {device.id}: register map {device.register_map!r} is not a shipped "
            f"{device.kind} profile; pass the floor file's definition"
        )
    return found


def build_driver(
    device: Device,
    *,
    endpoint: MqttEndpoint,
    topics: Topics,
    options: DriverOptions | None = None,
    resources: Resources | None = None,
    register_map: PtlMap | DiverterMap | None = None,
) -> Driver:
    """The driver for ``device``; claims its port (ConfigError when already taken).

    ``register_map``: a PTL panel's or diverter's map as the floor defines it (the
    floor's :meth:`~wcs.floor.Floor.register_map`); without it, the shipped profile
    the device names."""
    from drivers.diverter.driver import DiverterDriver
    from drivers.printer.driver import PrinterDriver
    from drivers.ptl.driver import PtlDriver
    from drivers.scale.driver import driver_for_scale
    from drivers.scale.sics_driver import MtSicsScaleDriver
    from drivers.scanner.driver import ScannerDriver

    options = options or DriverOptions()
    resources = resources or Resources()
    accepts: dict[str, frozenset[str]] = {
        "scanner": ScannerDriver.accepts,
        "scale": MtSicsScaleDriver.accepts,
        "printer": PrinterDriver.accepts,
        "ptl": PtlDriver.accepts,
        "diverter": DiverterDriver.accepts,
    }
    bridge = MqttBridge(
        endpoint=endpoint,
        topics=topics,
        device_id=device.id,
        kind=device.kind,
        zone=device.zone,
        accepts=accepts[device.kind],
        options=options,
        # PTL panels show on their display when no controller is online.
        watch_controllers=device.kind == "ptl",
    )
    match device:
        case ScannerDevice():
            resources.ports.claim(device.link, device.id)
            return ScannerDriver(device, bridge, options)
        case ScaleDevice():
            resources.ports.claim(device.link, device.id)
            return driver_for_scale(device, bridge, options)
        case PrinterDevice():
            resources.ports.claim(device.link, device.id)
            return PrinterDriver(device, bridge, options)
        case PtlDevice():
            ptl_map = _map(device, register_map, PtlMap)
            hub = resources.modbus.acquire(device.link, device.id)
            return PtlDriver(device, bridge, options, hub, ptl_map)
        case DiverterDevice():
            diverter_map = _map(device, register_map, DiverterMap)
            hub = resources.modbus.acquire(device.link, device.id)
            return DiverterDriver(device, bridge, options, hub, diverter_map)
    raise AssertionError(f"no driver for device kind {device.kind!r}")  # pragma: no cover
