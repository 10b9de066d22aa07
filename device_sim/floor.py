"""A whole simulated floor: one simulator per device of a floor file.

:class:`SimFloor` reads the same :class:`wcs.floor.Floor` the drivers read and serves
each device where its driver will look for it:

- serial devices with ``socket://host:port`` -> TCP serial server on that port; with a
  path -> a pty whose slave is symlinked at that path;
- printers with a ``tcp`` link -> raw ZPL server on that port (a serial link as above);
- PTL panels and diverters -> Modbus TCP server on host:port answering the floor's unit.

Simulator behaviour is not part of the floor file (its schema forbids unknown keys):
:class:`SimOptions` carries defaults per device kind plus per-device overrides. With
``ephemeral_ports=True`` every listener binds a free port and :attr:`SimFloor.floor`
is the floor *as served* (real ports, pty paths) to hand to drivers in tests;
``serial_over="pty"`` serves every serial device on a pty whatever its URL says.

Diverters are attached to one :class:`device_sim.diverter.Conveyor`
(:attr:`SimFloor.conveyor`), so a scenario can follow totes past each point.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal, Self, TypeVar

from device_sim.base import Simulator
from device_sim.diverter import Conveyor, DiverterOptions, DiverterSim
from device_sim.printer import PrinterOptions, PrinterSim
from device_sim.ptl import PtlOptions, PtlSim
from device_sim.scale import ScaleOptions, ScaleSim
from device_sim.scanner import ScannerOptions, ScannerSim
from device_sim.serial_link import PtyEndpoint, SerialEndpoint, TcpSerialEndpoint, endpoint_for_url
from wcs.errors import ConfigError
from wcs.floor import (
    Device,
    DiverterDevice,
    Floor,
    ModbusLink,
    PrinterDevice,
    PtlDevice,
    ScaleDevice,
    ScannerDevice,
    SerialLink,
    TcpLink,
    load_floor,
)

DeviceOptions = ScannerOptions | ScaleOptions | PrinterOptions | PtlOptions | DiverterOptions
SimT = TypeVar("SimT", bound=Simulator)


@dataclass(frozen=True)
class SimOptions:
    scanner: ScannerOptions = field(default_factory=ScannerOptions)
    scale: ScaleOptions = field(default_factory=ScaleOptions)
    printer: PrinterOptions = field(default_factory=PrinterOptions)
    ptl: PtlOptions = field(default_factory=PtlOptions)
    diverter: DiverterOptions = field(default_factory=DiverterOptions)
    # Per device id, replacing the kind's defaults for that device.
    devices: Mapping[str, DeviceOptions] = field(default_factory=dict)
    conveyor_travel_s: float = 0.0
    ephemeral_ports: bool = False
    serial_over: Literal["floor", "pty"] = "floor"
    # Directory for pty symlinks when serial_over="pty" (none: bare /dev/pts paths).
    pty_dir: Path | None = None

    def for_device(self, device_id: str, default: DeviceOptions) -> DeviceOptions:
        chosen = self.devices.get(device_id, default)
        if type(chosen) is not type(default):
            raise ConfigError(
                f"simulator options for {device_id} are {type(chosen).__name__}, "
                f"expected {type(default).__name__}"
            )
        return chosen


class SimFloor:
    """Every device of a floor, simulated; ``async with SimFloor(floor) as sim: ...``."""

    def __init__(self, floor: Floor, options: SimOptions | None = None) -> None:
        self.source = floor
        self.options = options or SimOptions()
        self.devices: dict[str, Simulator] = {}
        self.conveyor = Conveyor(self.options.conveyor_travel_s)
        self._stack = contextlib.AsyncExitStack()

    @classmethod
    def from_file(cls, path: str | Path, options: SimOptions | None = None) -> SimFloor:
        return cls(load_floor(path), options)

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> Self:
        try:
            self._stack.push_async_callback(self.conveyor.aclose)
            for device in self.source.devices:
                sim = self._build(device)
                try:
                    await self._stack.enter_async_context(sim)
                except OSError as exc:
                    hint = (
                        "; is another process using the port?"
                        if exc.errno == errno.EADDRINUSE
                        else ""
                    )
                    raise ConfigError(
                        f"simulator for {device.id} cannot serve {sim.address}: "
                        f"{exc.strerror or exc}{hint}"
                    ) from None
                self.devices[device.id] = sim
                if isinstance(sim, DiverterSim):
                    self.conveyor.attach(sim)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    # -- access --------------------------------------------------------------------

    def __getitem__(self, device_id: str) -> Simulator:
        try:
            return self.devices[device_id]
        except KeyError:
            raise ConfigError(f"device {device_id!r} is not on this simulated floor") from None

    def __iter__(self) -> Iterator[Simulator]:
        return iter(self.devices.values())

    def _typed(self, device_id: str, kind: type[SimT]) -> SimT:
        sim = self[device_id]
        if not isinstance(sim, kind):
            raise ConfigError(f"device {device_id!r} is a {sim.kind}, not a {kind.kind}")
        return sim

    def scanner(self, device_id: str) -> ScannerSim:
        return self._typed(device_id, ScannerSim)

    def scale(self, device_id: str) -> ScaleSim:
        return self._typed(device_id, ScaleSim)

    def printer(self, device_id: str) -> PrinterSim:
        return self._typed(device_id, PrinterSim)

    def ptl(self, device_id: str) -> PtlSim:
        return self._typed(device_id, PtlSim)

    def diverter(self, device_id: str) -> DiverterSim:
        return self._typed(device_id, DiverterSim)

    def of_kind(self, kind: str) -> list[Simulator]:
        return [sim for sim in self.devices.values() if sim.kind == kind]

    @property
    def floor(self) -> Floor:
        """The floor as served: the real ports and pty paths the drivers must open."""
        return self.source.model_copy(
            update={"devices": [self._as_served(d) for d in self.source.devices]}
        )

    def _as_served(self, device: Device) -> Device:
        sim = self.devices.get(device.id)
        if sim is None:
            return device
        link = device.link
        if isinstance(link, SerialLink):
            endpoint: SerialEndpoint | None = None
            if isinstance(sim, ScannerSim | ScaleSim):
                endpoint = sim.endpoint
            elif isinstance(sim, PrinterSim):
                endpoint = sim.serial_endpoint
            if endpoint is not None:
                link = link.model_copy(update={"url": endpoint.url})
        elif isinstance(link, TcpLink | ModbusLink) and isinstance(
            sim, PrinterSim | PtlSim | DiverterSim
        ):
            link = link.model_copy(update={"port": sim.port})
        return device.model_copy(update={"link": link})

    # -- building ------------------------------------------------------------------

    def _port(self, port: int) -> int:
        return 0 if self.options.ephemeral_ports else port

    def _serial_endpoint(self, device_id: str, link: SerialLink) -> SerialEndpoint:
        if self.options.serial_over == "pty":
            pty_dir = self.options.pty_dir
            return PtyEndpoint(device_id, pty_dir / device_id if pty_dir is not None else None)
        endpoint = endpoint_for_url(device_id, link.url)
        if isinstance(endpoint, TcpSerialEndpoint) and self.options.ephemeral_ports:
            endpoint.port = 0
        return endpoint

    def _build(self, device: Device) -> Simulator:
        opts = self.options
        if isinstance(device, ScannerDevice):
            scanner_opts = opts.for_device(device.id, opts.scanner)
            assert isinstance(scanner_opts, ScannerOptions)
            if device.terminator != "auto" and device.id not in opts.devices:
                scanner_opts = dataclasses.replace(scanner_opts, terminator=device.terminator)
            return ScannerSim(
                device.id, self._serial_endpoint(device.id, device.link), scanner_opts
            )
        if isinstance(device, ScaleDevice):
            scale_opts = opts.for_device(device.id, opts.scale)
            assert isinstance(scale_opts, ScaleOptions)
            scale_opts = dataclasses.replace(scale_opts, protocol=device.protocol, unit=device.unit)
            return ScaleSim(device.id, self._serial_endpoint(device.id, device.link), scale_opts)
        if isinstance(device, PrinterDevice):
            printer_opts = opts.for_device(device.id, opts.printer)
            assert isinstance(printer_opts, PrinterOptions)
            if isinstance(device.link, SerialLink):
                return PrinterSim.over_serial(
                    device.id, self._serial_endpoint(device.id, device.link), printer_opts
                )
            return PrinterSim(
                device.id, device.link.host, self._port(device.link.port), printer_opts
            )
        if isinstance(device, PtlDevice):
            ptl_opts = opts.for_device(device.id, opts.ptl)
            assert isinstance(ptl_opts, PtlOptions)
            link = device.link
            return PtlSim(
                device.id,
                slots=max(device.slots),
                host=link.host,
                port=self._port(link.port),
                unit=link.unit,
                options=ptl_opts,
                register_map=self.source.ptl_map(device),
            )
        if isinstance(device, DiverterDevice):
            div_opts = opts.for_device(device.id, opts.diverter)
            assert isinstance(div_opts, DiverterOptions)
            link = device.link
            return DiverterSim(
                device.id,
                lanes=device.lanes,
                default_lane=device.default_lane,
                point=device.point,
                host=link.host,
                port=self._port(link.port),
                unit=link.unit,
                options=div_opts,
                register_map=self.source.diverter_map(device),
            )
        raise ConfigError(f"no simulator for device kind {device.kind!r}")
