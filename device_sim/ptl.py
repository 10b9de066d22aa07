"""Simulated pick-to-light panel: a Modbus TCP server laid out by a register map.

The map is a named profile (:mod:`wcs.register_maps`): ``wcs-ptl`` by default, the
map of ``mqtt_topics.md``, or any other the floor file names (``block-ptl``: a block
of holding registers per slot, numbered from 1, the light as a register, a 32-bit
confirm counter low word first, a display with one decimal). In the default map:

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
from device_sim.modbus_server import Fields, ModbusSim, Table
from wcs.register_maps import SHIPPED, PtlMap

DEFAULT_MAP = SHIPPED["wcs-ptl"]


@dataclass(frozen=True)
class PickerBehaviour:
    delay_s: float = 1.0
    short_probability: float = 0.0
    seed: int | None = None


@dataclass(frozen=True)
class PtlOptions:
    # "map": as the register map says (10 s for wcs-ptl); None: never blank.
    heartbeat_timeout_s: float | Literal["map"] | None = "map"
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
        register_map: PtlMap | None = None,
    ):
        self.options = options or PtlOptions()
        super().__init__(
            device_id, host=host, port=port, unit=unit, reply_delay_s=self.options.reply_delay_s
        )
        m = self.map = register_map or _default_map()
        if not 1 <= slots <= m.max_slots:
            raise ValueError(f"a panel has 1-{m.max_slots} slots, not {slots}")
        self.slots = slots
        self.presses: list[Press] = []
        self.blank_count = 0
        self._last_heartbeat = 0.0
        self._picker_task: asyncio.Task[Any] | None = None
        self._off = m.light_values["off"] if m.light_values is not None else 0
        self._counter_modulo = 1 << (16 * m.confirm_counter.words)
        f = self.fields = Fields(self.image, m.numbering, m.word_order)
        if m.heartbeat is not None:
            f.declare(m.heartbeat.at)
        if m.slot_count is not None:
            f.declare(m.slot_count, value=slots)
        f.declare(m.light, slots, self._off)
        f.declare(m.qty, slots)
        if m.color is not None:
            f.declare(m.color, slots, m.colors["green"])
        f.declare(m.confirm_counter, slots)
        f.declare(m.confirm_qty, slots)
        if m.button is not None:
            f.declare(m.button, slots)
        if m.message is not None:
            f.declare(m.message, value=m.messages["none"])

    # -- what the picker sees ------------------------------------------------------

    def _offset(self, slot: int) -> int:
        if not 1 <= slot <= self.slots:
            raise ValueError(f"{self.device_id} has slots 1-{self.slots}, not {slot}")
        return slot - 1

    def slot(self, slot: int) -> SlotView:
        self._offset(slot)
        m, f = self.map, self.fields
        light = f.get(m.light, slot)
        lit = light != self._off
        blink = m.light_values is not None and light == m.light_values["blink"]
        colour: str | None = None
        if m.color is not None:
            value = f.get(m.color, slot)
            if m.blink_flag is not None and value >= m.blink_flag:
                value, blink = value - m.blink_flag, True
            colour = next((name for name, v in m.colors.items() if v == value), None)
        return SlotView(
            slot=slot,
            lit=lit,
            qty=f.get(m.qty, slot),
            colour=colour,
            blink=blink,
            counter=f.get(m.confirm_counter, slot),
            confirmed_qty=f.get(m.confirm_qty, slot),
            held=bool(f.get(m.button, slot)) if m.button is not None else False,
        )

    def lit(self) -> dict[int, SlotView]:
        """Slots lit now, by slot number."""
        views = (self.slot(n) for n in range(1, self.slots + 1))
        return {view.slot: view for view in views if view.lit}

    @property
    def message(self) -> int:
        """What the host asked the display to say (the map's message codes; default
        map: 0 nothing, 1 controller offline)."""
        return self.fields.get(self.map.message) if self.map.message is not None else 0

    @property
    def heartbeat(self) -> int:
        beat = self.map.heartbeat
        return self.fields.get(beat.at) if beat is not None else 0

    @property
    def heartbeat_age_s(self) -> float:
        return now() - self._last_heartbeat

    # -- picker actions ------------------------------------------------------------

    def press_nowait(
        self, slot: int, qty: int | None = None, *, by: Literal["script", "picker"] = "script"
    ) -> Press:
        """Latch a press (counter +1, confirmed quantity) and hold the button down."""
        self._offset(slot)
        m, f = self.map, self.fields
        confirmed = f.get(m.qty, slot) if qty is None else qty
        if not 0 <= confirmed * m.confirm_qty.scale <= 0xFFFF:
            raise ValueError(f"confirmed quantity {confirmed} does not fit a register")
        counter = (f.get(m.confirm_counter, slot) + 1) % self._counter_modulo
        # Counter and quantity change in the same instant: a host reading between
        # polls never sees one without the other.
        f.set(m.confirm_counter, counter, slot)
        f.set(m.confirm_qty, confirmed, slot)
        if m.button is not None:
            f.set(m.button, 1, slot)
        if self.options.press_clears_light:
            f.set(m.light, self._off, slot)
        press = Press(slot, confirmed, counter, now(), by)
        self.presses.append(press)
        self.log.info("confirm pressed", slot=slot, qty=confirmed, counter=counter, by=by)
        self.changes.notify()
        return press

    def release(self, slot: int) -> None:
        self._offset(slot)
        if self.map.button is not None:
            self.fields.set(self.map.button, 0, slot)
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
        self._offset(slot)
        self.fields.set(self.map.confirm_counter, value % self._counter_modulo, slot)
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
        limit = self.options.heartbeat_timeout_s
        if limit == "map":
            limit = self.map.heartbeat.timeout_s if self.map.heartbeat is not None else None
        if limit is not None and self.map.heartbeat is not None:
            self.tasks.spawn(self._watchdog(limit), "watchdog")
        if self.options.picker is not None:
            self.start_picker(self.options.picker)

    def _on_host_write(self, table: Table, address: int, old: list[Any], new: list[Any]) -> None:
        beat = self.map.heartbeat
        if (
            beat is not None
            and old != new
            and self.fields.touches(beat.at, table, address, len(new))
        ):
            self._last_heartbeat = now()
        if old != new:
            self.log.debug("host write", table=table.value, address=address, values=new)

    async def _watchdog(self, limit_s: float) -> None:
        while True:
            stale_in = self._last_heartbeat + limit_s - now()
            if stale_in > 0:
                await asyncio.sleep(stale_in)
                continue
            lit = self.lit()
            if lit:
                for slot in lit:
                    self.fields.set(self.map.light, self._off, slot)
                self.blank_count += 1
                self.log.warning(
                    "heartbeat lost: panel blanked", silent_s=round(limit_s - stale_in, 3)
                )
                self.changes.notify()
            await self.changes.wait()


def _default_map() -> PtlMap:
    assert isinstance(DEFAULT_MAP, PtlMap)
    return DEFAULT_MAP
