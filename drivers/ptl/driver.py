"""Pick-to-light driver: ``cmd/light``/``cmd/clear`` in, ``evt/confirm`` out (Modbus TCP).

Every address comes from the panel's register map (the floor file's
``register_map``: a shipped profile or one of its own; see
:mod:`wcs.register_maps`).

Confirm presses are read from the panel's latched counters, so a press between two
polls is never lost; one ``evt/confirm`` per increment, with the quantity the picker
entered. The counters found when the driver connects are the baseline: presses made
before the driver ran are not replayed. After a lost link the baseline is kept, so
presses latched by the panel while the link was down are still sent (a panel that
restarted, its counters back near zero, gets a new baseline instead). A heartbeat
keeps the panel lit; without it the panel blanks itself, so a dead host never leaves
stale lights on the floor.

While no controller is online (their retained presence, ``controller/+/status``) the
panel shows "controller offline" (the map's message register) and its lights are put
out: nobody picks to lights no controller will confirm. The message goes when one is
back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from drivers.base import Driver
from drivers.bridge import MqttBridge
from drivers.counters import CounterTracker
from drivers.modbus_link import ModbusHub
from drivers.modbus_map import MappedRegisters
from drivers.options import DriverOptions
from drivers.ptl import codec
from wcs.contract import ClearCommand, Command, ConfirmEvent, LightCommand
from wcs.errors import DeviceUnavailable, ProtocolError
from wcs.floor import PtlDevice
from wcs.register_maps import PtlMap
from wcs.tasks import run_all


class PtlDriver(Driver):
    kind = "ptl"
    accepts = frozenset({"light", "clear"})

    def __init__(
        self,
        device: PtlDevice,
        bridge: MqttBridge,
        options: DriverOptions,
        hub: ModbusHub,
        register_map: PtlMap,
    ) -> None:
        super().__init__(device.id, bridge, options)
        self.device = device
        self.hub = hub
        self.map = register_map
        self.regs = MappedRegisters.of(hub, device.link.unit, register_map)
        self.span = max(device.slots)  # registers cover slots 1..span
        self._tracker: CounterTracker | None = None

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[None]:
        if self.map.slot_count is not None:
            count = await self.regs.read(self.map.slot_count)
            if count < self.span:
                raise ProtocolError(
                    f"{self.who} reports {count} slots but the floor file uses slot "
                    f"{self.span}; fix the floor file or the panel's configuration"
                )
        if self._tracker is None:
            # First contact: presses made before the driver ran are not replayed. After
            # a lost link the old baseline stays, so presses latched meanwhile are sent.
            modulo = 1 << (16 * self.map.confirm_counter.words)
            self._tracker = CounterTracker(await self._counters(), modulo=modulo)
        self.healthy()
        yield

    async def _counters(self) -> list[int]:
        return await self.regs.read_slots(self.map.confirm_counter, self.span)

    async def serve(self) -> None:
        loops = {
            f"{self.device_id}/poll": self._poll_loop(),
            f"{self.device_id}/controller": self._controller_loop(),
        }
        for name, loop in self.regs.heartbeat(self.map, self.options.heartbeat_s).items():
            loops[f"{self.device_id}/{name}"] = loop
        await run_all(loops)

    async def _controller_loop(self) -> None:
        """Show "controller offline" on the panel while no controller is online (a panel
        whose map has no message register only puts its lights out)."""
        shown: bool | None = None
        while True:
            offline = self.bridge.controller_online is False
            if offline != shown:
                if offline:
                    off = codec.light_off(self.map)
                    await self.regs.write_slots(self.map.light, off, range(1, self.span + 1))
                if self.map.message is not None:
                    code = self.map.messages["controller_offline" if offline else "none"]
                    await self.regs.write(self.map.message, code)
                self.log.info("panel message", controller_offline=offline)
                shown = offline
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
        qtys = await self.regs.read_slots(self.map.confirm_qty, self.span)
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
            try:
                writes = codec.plan_light(
                    self.map, command.slot, command.qty, command.color, command.blink
                )
            except ValueError as exc:
                return f"{self.who}: {exc}"
            for write in writes:
                await self.regs.write(write.reg, write.value, command.slot)
            return None
        if isinstance(command, ClearCommand):
            off = codec.light_off(self.map)
            if command.slot is None:
                await self.regs.write_slots(self.map.light, off, range(1, self.span + 1))
                return None
            problem = self._check_slot(command.slot)
            if problem:
                return problem
            await self.regs.write(self.map.light, off, command.slot)
            return None
        return await super().execute(name, command)
