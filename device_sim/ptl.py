"""Simulated pick-to-light panel: a Modbus TCP server with the register map of
``mqtt_topics.md`` (0-based wire addresses, slot ``n`` at offset ``n - 1``).

============================  ==================================================
coil ``n-1``                  slot light on/off (host)
holding ``0``                 host heartbeat; no change for ``heartbeat_timeout_s``
                              (default 10 s) and the panel switches every light off
holding ``1``                 panel message: 0 none, 1 "controller offline" (host)
holding ``100 + n-1``         displayed quantity 0-9999 (host)
holding ``200 + n-1``         colour 1 green, 2 red, 3 blue, 4 yellow, 5 white;
                              +256 blink (host)
input ``0``                   number of slots
input ``100 + n-1``           confirm counter: +1 per press, wraps 65535 -> 0
input ``200 + n-1``           quantity confirmed with the last press
discrete input ``n-1``        confirm button held down now
============================  ==================================================

A press latches at once (counter and quantity change in the same instant, so a host
reading between polls never sees one without the other), holds the button input for
``hold_s`` and, by default, puts the slot's light out as real panels do on confirm.

While the heartbeat is stale the panel stays dark: a light the host switches on is put
out again straight away, until the heartbeat moves again.

Scripted picker: :meth:`PtlSim.press`. Automatic picker (:class:`PickerBehaviour`):
every lit slot is confirmed after ``delay_s`` with the displayed quantity, or with a
short quantity with probability ``short_probability`` (seeded, so runs repeat).

Faults: those of :class:`device_sim.modbus_server.ModbusSim`.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any, Literal

from device_sim.base import now
from device_sim.modbus_server import ModbusSim, Table

COLOURS = {1: "green", 2: "red", 3: "blue", 4: "yellow", 5: "white"}
BLINK = 0x100
QTY_BASE = 100
COLOUR_BASE = 200
COUNTER_BASE = 100
CONFIRMED_BASE = 200
MAX_SLOTS = 100


@dataclass(frozen=True)
class PickerBehaviour:
    delay_s: float = 1.0
    short_probability: float = 0.0
    seed: int | None = None


@dataclass(frozen=True)
class PtlOptions:
    heartbeat_timeout_s: float | None = 10.0
    press_clears_light: bool = True
    hold_s: float = 0.05
    reply_delay_s: float = 0.0
    picker: PickerBehaviour | None = None


@dataclass(frozen=True)
class SlotView:
    slot: int
    lit: bool
    qty: int
    colour: str | None
    blink: bool
    counter: int
    confirmed_qty: int
    held: bool


@dataclass(frozen=True)
class Press:
    slot: int
    qty: int
    counter: int
    at: float
    by: Literal["script", "picker"] = "script"


class PtlSim(ModbusSim):
    kind = "ptl"

    def __init__(
        self,
        device_id: str,
        *,
        slots: int,
        host: str = "127.0.0.1",
        port: int = 502,
        unit: int = 1,
        options: PtlOptions | None = None,
    ):
        self.options = options or PtlOptions()
        super().__init__(
            device_id, host=host, port=port, unit=unit, reply_delay_s=self.options.reply_delay_s
        )
        if not 1 <= slots <= MAX_SLOTS:
            raise ValueError(f"a panel has 1-{MAX_SLOTS} slots, not {slots}")
        self.slots = slots
        self.presses: list[Press] = []
        self.blank_count = 0
        self._last_heartbeat = 0.0
        self._picker_task: asyncio.Task[Any] | None = None
        image = self.image
        image.holding[0] = 0
        image.input[0] = slots
        for offset in range(slots):
            image.coils[offset] = False
            image.discrete[offset] = False
            image.holding[QTY_BASE + offset] = 0
            image.holding[COLOUR_BASE + offset] = 1
            image.input[COUNTER_BASE + offset] = 0
            image.input[CONFIRMED_BASE + offset] = 0

    # -- what the picker sees ------------------------------------------------------

    def _offset(self, slot: int) -> int:
        if not 1 <= slot <= self.slots:
            raise ValueError(f"{self.device_id} has slots 1-{self.slots}, not {slot}")
        return slot - 1

    def slot(self, slot: int) -> SlotView:
        offset = self._offset(slot)
        image = self.image
        colour = image.holding[COLOUR_BASE + offset]
        return SlotView(
            slot=slot,
            lit=image.coils[offset],
            qty=image.holding[QTY_BASE + offset],
            colour=COLOURS.get(colour & 0xFF),
            blink=bool(colour & BLINK),
            counter=image.input[COUNTER_BASE + offset],
            confirmed_qty=image.input[CONFIRMED_BASE + offset],
            held=image.discrete[offset],
        )

    def lit(self) -> dict[int, SlotView]:
        """Slots lit now, by slot number."""
        return {n: self.slot(n) for n in range(1, self.slots + 1) if self.image.coils[n - 1]}

    @property
    def message(self) -> int:
        """What the host asked the display to say: 0 nothing, 1 controller offline."""
        value: int = self.image.holding[1]
        return value

    @property
    def heartbeat(self) -> int:
        return self.image.holding[0]

    @property
    def heartbeat_age_s(self) -> float:
        return now() - self._last_heartbeat

    # -- picker actions ------------------------------------------------------------

    def press_nowait(
        self, slot: int, qty: int | None = None, *, by: Literal["script", "picker"] = "script"
    ) -> Press:
        """Latch a press (counter +1, confirmed quantity) and hold the button down."""
        offset = self._offset(slot)
        image = self.image
        confirmed = image.holding[QTY_BASE + offset] if qty is None else qty
        if not 0 <= confirmed <= 0xFFFF:
            raise ValueError(f"confirmed quantity {confirmed} does not fit a register")
        counter = (image.input[COUNTER_BASE + offset] + 1) & 0xFFFF
        image.input[COUNTER_BASE + offset] = counter
        image.input[CONFIRMED_BASE + offset] = confirmed
        image.discrete[offset] = True
        if self.options.press_clears_light:
            image.coils[offset] = False
        press = Press(slot, confirmed, counter, now(), by)
        self.presses.append(press)
        self.log.info("confirm pressed", slot=slot, qty=confirmed, counter=counter, by=by)
        self.changes.notify()
        return press

    def release(self, slot: int) -> None:
        self.image.discrete[self._offset(slot)] = False
        self.changes.notify()

    async def press(
        self,
        slot: int,
        qty: int | None = None,
        *,
        hold_s: float | None = None,
        by: Literal["script", "picker"] = "script",
    ) -> Press:
        """Press and release slot ``slot``'s confirm button; ``qty`` defaults to the display."""
        press = self.press_nowait(slot, qty, by=by)
        hold = self.options.hold_s if hold_s is None else hold_s
        try:
            if hold > 0:
                await asyncio.sleep(hold)
        finally:
            self.release(slot)
        return press

    def set_counter(self, slot: int, value: int) -> None:
        """Preset a confirm counter, as after a long shift (for wrap-around scenarios)."""
        self.image.input[COUNTER_BASE + self._offset(slot)] = value & 0xFFFF
        self.changes.notify()

    # -- automatic picker ----------------------------------------------------------

    def start_picker(self, behaviour: PickerBehaviour | None = None) -> None:
        """Confirm every lit slot automatically (replaces a running picker)."""
        self.stop_picker()
        chosen = behaviour or self.options.picker or PickerBehaviour()
        self._picker_task = self.tasks.spawn(self._picker_loop(chosen), "picker")

    def stop_picker(self) -> None:
        if self._picker_task is not None:
            self._picker_task.cancel()
            self._picker_task = None

    async def _picker_loop(self, behaviour: PickerBehaviour) -> None:
        rng = random.Random(behaviour.seed)
        working: dict[int, asyncio.Task[Any]] = {}
        try:
            while True:
                lit = self.lit()
                # One press per lit episode: a slot is picked again only after its
                # light has gone out and come back on.
                for slot, task in list(working.items()):
                    if task.done() and slot not in lit:
                        del working[slot]
                for slot in lit:
                    if slot not in working:
                        working[slot] = self.tasks.spawn(
                            self._pick(slot, behaviour, rng), f"picker:slot{slot}"
                        )
                await self.changes.wait()
        finally:
            for task in working.values():
                task.cancel()

    async def _pick(self, slot: int, behaviour: PickerBehaviour, rng: random.Random) -> None:
        await asyncio.sleep(behaviour.delay_s)
        view = self.slot(slot)
        if not view.lit:
            return
        qty = view.qty
        if qty > 0 and rng.random() < behaviour.short_probability:
            qty = rng.randrange(qty)
        await self.press(slot, qty, by="picker")

    # -- device logic --------------------------------------------------------------

    def _start_behaviour(self) -> None:
        self._last_heartbeat = now()
        if self.options.heartbeat_timeout_s is not None:
            self.tasks.spawn(self._watchdog(self.options.heartbeat_timeout_s), "watchdog")
        if self.options.picker is not None:
            self.start_picker(self.options.picker)

    def _on_host_write(self, table: Table, address: int, old: list[Any], new: list[Any]) -> None:
        if table is Table.HOLDING and address == 0 and old[0] != new[0]:
            self._last_heartbeat = now()
        if table is Table.COILS:
            for offset, (was, lit) in enumerate(zip(old, new, strict=True), start=address):
                if lit != was:
                    view = self.slot(offset + 1)
                    self.log.debug(
                        "slot light", slot=offset + 1, lit=lit, qty=view.qty, colour=view.colour
                    )

    async def _watchdog(self, limit_s: float) -> None:
        while True:
            stale_in = self._last_heartbeat + limit_s - now()
            if stale_in > 0:
                await asyncio.sleep(stale_in)
                continue
            if any(self.image.coils.values()):
                for offset in self.image.coils:
                    self.image.coils[offset] = False
                self.blank_count += 1
                self.log.warning(
                    "heartbeat lost: panel blanked", silent_s=round(limit_s - stale_in, 3)
                )
                self.changes.notify()
            await self.changes.wait()
