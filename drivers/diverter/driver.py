"""Diverter driver: ``evt/arrival`` out, ``cmd/route`` in, over Modbus TCP.

Arrivals come from the PLC's arrival counter (one event per increment; the barcode
registers name the tote, an unreadable or missed one is ``NOREAD``). A route is the
handshake of the register map: write the lane, then a new sequence id; the PLC acts
on the id change and echoes it with the lane the tote actually took. The ack is
``ok`` only when the echoed lane is the one asked for; otherwise it names the lane
taken, or says the PLC did not answer in time.
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
from drivers.options import DriverOptions
from wcs.contract import ArrivalEvent, Command, RouteCommand
from wcs.errors import DeviceUnavailable
from wcs.floor import DiverterDevice


class DiverterDriver(Driver):
    kind = "diverter"
    accepts = frozenset({"route"})

    def __init__(
        self,
        device: DiverterDevice,
        bridge: MqttBridge,
        options: DriverOptions,
        hub: ModbusHub,
    ) -> None:
        super().__init__(device.id, bridge, options)
        self.device = device
        self.hub = hub
        self.unit = device.link.unit
        self.seq = 0
        self._tracker: CounterTracker | None = None

    def lane_name(self, number: int) -> str:
        route = self.device.lanes.get(number)
        return f"lane {number} ({route})" if route else f"lane {number} (not in the floor file)"

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[None]:
        regs = await self.hub.read_input_registers(self.unit, codec.IR_ARRIVALS, 4)
        (self.seq,) = await self.hub.read_holding_registers(self.unit, codec.HR_SEQ, 1)
        if self._tracker is None:  # kept across lost links: no arrival is skipped
            self._tracker = CounterTracker([regs[codec.IR_ARRIVALS]])
        self._apply_status(regs[codec.IR_STATUS])
        yield

    def _apply_status(self, status: int) -> None:
        fault = codec.plc_fault(status)
        if fault:
            self.fault(f"{self.who} at {self.device.point}: {fault}")
        else:
            self.healthy()

    async def serve(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self.device.link.poll_interval_s)

    async def poll_once(self) -> int:
        tracker = self._tracker
        if tracker is None:
            raise DeviceUnavailable(f"{self.who} is not connected")
        regs = await self.hub.read_input_registers(self.unit, codec.IR_ARRIVALS, 4)
        self._apply_status(regs[codec.IR_STATUS])
        changes = tracker.update([regs[codec.IR_ARRIVALS]])
        if not changes:
            return 0
        raw = await self.hub.read_input_registers(
            self.unit, codec.IR_BARCODE, codec.BARCODE_REGISTERS
        )
        try:
            tote = codec.decode_barcode(raw)
        except BadFrame as exc:
            self.bad_frame(f"{self.hub.name}/unit{self.unit}", exc)
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
        seq = codec.next_seq(self.seq)
        await self.hub.write_register(self.unit, codec.HR_LANE, number)
        await self.hub.write_register(self.unit, codec.HR_SEQ, seq)
        self.seq = seq
        deadline = time.monotonic() + self.options.route_timeout_s
        while True:
            echo, taken = await self.hub.read_input_registers(self.unit, codec.IR_SEQ_ECHO, 2)
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
