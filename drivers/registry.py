"""Which driver class serves which device kind, and how one is built."""

from __future__ import annotations

from drivers.base import Driver, Resources
from drivers.bridge import MqttBridge
from drivers.options import DriverOptions
from wcs.contract import Topics
from wcs.floor import (
    Device,
    DiverterDevice,
    PrinterDevice,
    PtlDevice,
    ScaleDevice,
    ScannerDevice,
)
from wcs.settings import MqttEndpoint


def build_driver(
    device: Device,
    *,
    endpoint: MqttEndpoint,
    topics: Topics,
    options: DriverOptions | None = None,
    resources: Resources | None = None,
) -> Driver:
    """The driver for ``device``; claims its port (ConfigError when already taken)."""
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
            hub = resources.modbus.acquire(device.link, device.id)
            return PtlDriver(device, bridge, options, hub)
        case DiverterDevice():
            return DiverterDriver(
                device, bridge, options, resources.modbus.acquire(device.link, device.id)
            )
    raise AssertionError(f"no driver for device kind {device.kind!r}")  # pragma: no cover
