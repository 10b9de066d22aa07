"""Pick-to-light driver: ``cmd/light``/``cmd/clear`` in, ``evt/confirm`` out (Modbus TCP).

Confirm presses are read from the panel's latched counters (input registers 100+),
so a press between two polls is never lost; one ``evt/confirm`` per increment, with
the quantity the picker entered (input registers 200+). The counters found when the
driver connects are the baseline: presses made before the driver ran are not replayed.
After a lost link the baseline is kept, so presses latched by the panel while the
link was down are still sent (a panel that restarted, its counters back near zero,
gets a new baseline instead). A heartbeat in holding register 0 keeps the panel lit;
without it the panel blanks itself after 10 s, so a dead host never leaves stale
lights on the floor.

While no controller is online (their retained presence, ``controller/+/status``) the
panel shows "controller offline" (holding register 1) and its lights are put out:
nobody picks to lights no controller will confirm. The message goes when one is back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from drivers.base import Driver
from drivers.bridge import MqttBridge
from drivers.counters import CounterTracker
from drivers.modbus_link import ModbusHub
from drivers.options import DriverOptions
from drivers.ptl import codec
from wcs.contract import ClearCommand, Command, ConfirmEvent, LightCommand
from wcs.errors import DeviceUnavailable, ProtocolError
from wcs.floor import PtlDevice
from wcs.tasks import run_all


class PtlDriver(Driver):
    kind = "ptl"
    accepts = frozenset({"light", "clear"})

    def __init__(
        self, device: PtlDevice, bridge: MqttBridge, options: DriverOptions, hub: ModbusHub
    ) -> None:
        super().__init__(device.id, bridge, options)
        self.device = device
        self.hub = hub
        self.unit = device.link.unit
        self.span = max(device.slots)  # registers cover slots 1..span
        self._tracker: CounterTracker | None = None
        self._heartbeat = 0

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[None]:
        (count,) = await self.hub.read_input_registers(self.unit, codec.IR_SLOT_COUNT, 1)
        if count < self.span:
            raise ProtocolError(
                f"{self.who} reports {count} slots but the floor file uses slot {self.span}; "
                "fix the floor file or the panel's configuration"
            )
        if self._tracker is None:
            # First contact: presses made before the driver ran are not replayed. After
            # a lost link the old baseline stays, so presses latched meanwhile are sent.
            self._tracker = CounterTracker(await self._counters())
        self.healthy()
        yield

    async def _counters(self) -> list[int]:
        return await self.hub.read_input_registers(self.unit, codec.IR_CONFIRM_COUNTER, self.span)

    async def serve(self) -> None:
        await run_all(
            {
                f"{self.device_id}/poll": self._poll_loop(),
                f"{self.device_id}/heartbeat": self._heartbeat_loop(),
                f"{self.device_id}/controller": self._controller_loop(),
            }
        )

    async def _controller_loop(self) -> None:
        """Show "controller offline" on the panel while no controller is online."""
        shown: int | None = None
        while True:
            online = self.bridge.controller_online
            wanted = codec.MESSAGE_CONTROLLER_OFFLINE if online is False else codec.MESSAGE_NONE
            if wanted != shown:
                if wanted == codec.MESSAGE_CONTROLLER_OFFLINE:
                    await self.hub.write_coils(self.unit, codec.COIL_LIGHT, [False] * self.span)
                await self.hub.write_register(self.unit, codec.HR_MESSAGE, wanted)
                self.log.info("panel message", controller_offline=bool(wanted))
                shown = wanted
            self.bridge.controllers_changed.clear()
            await self.bridge.controllers_changed.wait()

    async def _poll_loop(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self.device.link.poll_interval_s)

    async def poll_once(self) -> int:
        """Read the counters once; publish one confirm per increment. Returns how many."""
        tracker = self._tracker
        if tracker is None:
            raise DeviceUnavailable(f"{self.who} is not connected")
        resets = tracker.resets
        changes = tracker.update(await self._counters())
        if tracker.resets != resets:
            self.log.warning("confirm counters jumped back: panel restarted? new baseline")
        if not changes:
            return 0
        qtys = await self.hub.read_input_registers(self.unit, codec.IR_CONFIRM_QTY, self.span)
        published = 0
        for change in changes:
            slot = change.index + 1
            if slot not in self.device.slots:
                self.log.warning("confirm on a slot the floor file does not list", slot=slot)
            if change.increments > 1:
                self.log.info("several presses between polls", slot=slot, presses=change.increments)
            for _ in range(change.increments):
                self.counters.frames += 1
                self.bridge.publish_event(
                    "confirm",
                    ConfirmEvent(
                        msg_id=self.bridge.next_msg_id(), slot=slot, qty=qtys[change.index]
                    ),
                )
                published += 1
        return published

    async def _heartbeat_loop(self) -> None:
        while True:
            self._heartbeat = codec.next_heartbeat(self._heartbeat)
            await self.hub.write_register(self.unit, codec.HR_HEARTBEAT, self._heartbeat)
            await asyncio.sleep(self.options.heartbeat_s)

    def _check_slot(self, slot: int) -> str | None:
        if slot not in self.device.slots:
            known = ", ".join(str(s) for s in sorted(self.device.slots))
            return f"{self.who} has no slot {slot} (slots: {known})"
        return None

    async def execute(self, name: str, command: Command) -> str | None:
        self.require_online()
        if isinstance(command, LightCommand):
            problem = self._check_slot(command.slot)
            if problem:
                return problem
            plan = codec.plan_light(command.slot, command.qty, command.color, command.blink)
            await self.hub.write_register(self.unit, plan.qty_address, plan.qty)
            await self.hub.write_register(self.unit, plan.color_address, plan.color)
            await self.hub.write_coil(self.unit, plan.coil, True)
            return None
        if isinstance(command, ClearCommand):
            if command.slot is None:
                await self.hub.write_coils(self.unit, codec.COIL_LIGHT, [False] * self.span)
                return None
            problem = self._check_slot(command.slot)
            if problem:
                return problem
            await self.hub.write_coil(self.unit, codec.slot_offset(command.slot), False)
            return None
        return await super().execute(name, command)
