"""Diverter driver: ``evt/arrival`` out, ``cmd/route`` in, over Modbus TCP.

Every address comes from the PLC's register map (the floor file's ``register_map``;
see :mod:`wcs.register_maps`). Arrivals come from the PLC's arrival counter (one
event per increment; the barcode registers name the tote, an unreadable or missed one
is ``NOREAD``). A route is the handshake of the map: write the lane, then a new
sequence id; the PLC acts on the id change and echoes it with the lane the tote
actually took. The ack is ``ok`` only when the echoed lane is the one asked for;
otherwise it names the lane taken, or says the PLC did not answer in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from drivers.base import Driver
from drivers.bridge import MqttBridge
from drivers.counters import CounterTracker
from drivers.diverter import codec
from drivers.frame import BadFrame
from drivers.modbus_link import ModbusHub
from drivers.modbus_map import MappedRegisters
from drivers.options import DriverOptions
from wcs.contract import ArrivalEvent, Command, RouteCommand
from wcs.errors import DeviceUnavailable
from wcs.floor import DiverterDevice
from wcs.register_maps import DiverterMap
from wcs.tasks import run_all


class DiverterDriver(Driver):
    kind = "diverter"
    accepts = frozenset({"route"})

    def __init__(
        self,
        device: DiverterDevice,
        bridge: MqttBridge,
        options: DriverOptions,
        hub: ModbusHub,
        register_map: DiverterMap,
    ) -> None:
        super().__init__(device.id, bridge, options)
        self.device = device
        self.hub = hub
        self.map = register_map
        self.regs = MappedRegisters.of(hub, device.link.unit, register_map)
        self.seq = 0
        self._tracker: CounterTracker | None = None

    def lane_name(self, number: int) -> str:
        route = self.device.lanes.get(number)
        return f"lane {number} ({route})" if route else f"lane {number} (not in the floor file)"

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[None]:
        arrivals, status = await self._arrivals_and_status()
        self.seq = await self.regs.read(self.map.request_seq)
        if self._tracker is None:  # kept across lost links: no arrival is skipped
            modulo = 1 << (16 * self.map.arrivals.words)
            self._tracker = CounterTracker([arrivals], modulo=modulo)
        self._apply_status(status)
        yield

    async def _arrivals_and_status(self) -> tuple[int, int]:
        arrivals, status = await self.regs.read_many(self.map.arrivals, self.map.status)
        return arrivals, status

    def _apply_status(self, status: int) -> None:
        fault = codec.plc_fault(self.map, status)
        if fault:
            self.fault(f"{self.who} at {self.device.point}: {fault}")
        else:
            self.healthy()

    async def serve(self) -> None:
        loops = {f"{self.device_id}/poll": self._poll_loop()}
        for name, loop in self.regs.heartbeat(self.map, self.options.heartbeat_s).items():
            loops[f"{self.device_id}/{name}"] = loop
        await run_all(loops)

    async def _poll_loop(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self.device.link.poll_interval_s)

    async def poll_once(self) -> int:
        tracker = self._tracker
        if tracker is None:
            raise DeviceUnavailable(f"{self.who} is not connected")
        arrivals_now, status = await self._arrivals_and_status()
        self._apply_status(status)
        changes = tracker.update([arrivals_now])
        if not changes:
            return 0
        raw = await self.regs.read_words(self.map.barcode, self.map.barcode_registers)
        try:
            tote = codec.decode_barcode(raw, self.map.byte_order)
        except BadFrame as exc:
            self.bad_frame(f"{self.hub.name}/unit{self.regs.unit}", exc)
            tote = codec.NOREAD
        arrivals = changes[0].increments
        if arrivals > 1:
            # Only the last tote's barcode is still in the registers.
            self.log.warning("several totes between polls; earlier ones as NOREAD", count=arrivals)
        for i in range(arrivals):
            self.counters.frames += 1
            self.bridge.publish_event(
                "arrival",
                ArrivalEvent(
                    msg_id=self.bridge.next_msg_id(),
                    tote=tote if i == arrivals - 1 else codec.NOREAD,
                    point=self.device.point,
                ),
            )
        return arrivals

    async def execute(self, name: str, command: Command) -> str | None:
        if not isinstance(command, RouteCommand):
            return await super().execute(name, command)
        self.require_online()
        wanted = f"{command.lane}:{command.station}" if command.station else command.lane
        number = self.device.lane_for(command.lane, command.station)
        if number is None:
            lanes = ", ".join(f"{n}={r}" for n, r in sorted(self.device.lanes.items()))
            return f"{self.who} has no lane for {wanted} (lanes: {lanes})"
        seq = codec.next_seq(self.seq, self.map.seq_limit())
        await self.regs.write(self.map.lane, number)
        await self.regs.write(self.map.request_seq, seq)
        self.seq = seq
        deadline = time.monotonic() + self.options.route_timeout_s
        while True:
            # Read together: the PLC sets the echo and the lane taken in one step.
            echo, taken = await self.regs.read_many(self.map.seq_echo, self.map.lane_taken)
            if echo == seq:
                break
            if time.monotonic() >= deadline:
                return (
                    f"{self.who} did not confirm route request {seq} for tote {command.tote} "
                    f"within {self.options.route_timeout_s:g} s"
                )
            await asyncio.sleep(self.device.link.poll_interval_s)
        if taken == 0:
            return (
                f"{self.who} at {self.device.point} diverted nothing for tote {command.tote}: "
                "no tote was at the point when the request arrived"
            )
        if taken != number:
            return (
                f"tote {command.tote} took {self.lane_name(taken)} "
                f"instead of {self.lane_name(number)}"
            )
        return None
