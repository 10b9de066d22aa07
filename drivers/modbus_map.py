"""Values through a register map: which registers, how many, which word first, scaled.

The pure half (:func:`encode`, :func:`decode`, :func:`plan_read`) is table-tested; a
:class:`MappedRegisters` does the reads and writes of one device on its Modbus hub.
The map itself (a named profile of the floor file) is :mod:`wcs.register_maps`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from drivers.modbus_link import ModbusHub
from wcs.errors import ProtocolError
from wcs.register_maps import BIT_TABLES, DiverterMap, Heartbeat, PtlMap, Reg, WordOrder

# Most registers (bits) one read may ask for (Modbus application protocol, 6.3/6.1).
MAX_REGISTERS = 125
MAX_BITS = 2000


def encode(value: int, reg: Reg, order: WordOrder) -> list[int]:
    """The register values that hold ``value`` (scaled; two words in ``order``)."""
    wire = value * reg.scale
    limit = 1 << (16 * reg.words)
    if not 0 <= wire < limit:
        raise ValueError(f"{value} does not fit {reg.words * 16} bits at scale {reg.scale}")
    if reg.words == 1:
        return [wire]
    high, low = wire >> 16, wire & 0xFFFF
    return [high, low] if order == "high_first" else [low, high]


def decode(registers: Sequence[int], reg: Reg, order: WordOrder) -> int:
    """The value ``registers`` hold (unscaled to whole units, rounded)."""
    if reg.words == 1:
        wire = registers[0] & 0xFFFF
    else:
        first, second = registers[0] & 0xFFFF, registers[1] & 0xFFFF
        wire = (first << 16 | second) if order == "high_first" else (second << 16 | first)
    return wire if reg.scale == 1 else round(wire / reg.scale)


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """One request: ``count`` registers (or bits) from wire address ``start``."""

    start: int
    count: int


def plan_read(reg: Reg, numbering: int, slots: int) -> list[ReadPlan]:
    """The requests that read ``reg`` for slots 1..``slots``, each within Modbus' limit."""
    first = reg.wire(numbering, 1)
    last = reg.wire(numbering, slots) + reg.words - 1
    limit = MAX_BITS if reg.table in BIT_TABLES else MAX_REGISTERS
    # Never split one slot's value between two requests.
    per = max(((limit - reg.words) // reg.stride) + 1, 1)
    plans: list[ReadPlan] = []
    slot = 1
    while slot <= slots:
        end_slot = min(slot + per - 1, slots)
        start = reg.wire(numbering, slot)
        end = reg.wire(numbering, end_slot) + reg.words - 1
        plans.append(ReadPlan(start, end - start + 1))
        slot = end_slot + 1
    assert plans[0].start == first and plans[-1].start + plans[-1].count - 1 == last
    return plans


class MappedRegisters:
    """One device's values on its Modbus hub, addressed through its register map."""

    def __init__(self, hub: ModbusHub, unit: int, numbering: int, order: WordOrder) -> None:
        self.hub = hub
        self.unit = unit
        self.numbering = numbering
        self.order = order
        self._gapless: set[Reg] = set()  # blocks the device will not read across

    @classmethod
    def of(cls, hub: ModbusHub, unit: int, register_map: PtlMap | DiverterMap) -> MappedRegisters:
        return cls(hub, unit, register_map.numbering, register_map.word_order)

    def heartbeat(self, register_map: PtlMap | DiverterMap, period_s: float) -> dict[str, Any]:
        """The heartbeat loop the map asks for, as a named task (none without one)."""
        if register_map.heartbeat is None:
            return {}
        return {"heartbeat": heartbeat_loop(self, register_map.heartbeat, period_s)}

    async def _raw(self, table: str, start: int, count: int) -> list[int]:
        hub, unit = self.hub, self.unit
        match table:
            case "coil":
                return [int(b) for b in await hub.read_coils(unit, start, count)]
            case "discrete":
                return [int(b) for b in await hub.read_discrete_inputs(unit, start, count)]
            case "holding":
                return await hub.read_holding_registers(unit, start, count)
        return await hub.read_input_registers(unit, start, count)

    async def read(self, reg: Reg, slot: int = 1) -> int:
        raw = await self._raw(reg.table, reg.wire(self.numbering, slot), reg.words)
        return decode(raw, reg, self.order)

    async def read_many(self, *regs: Reg) -> list[int]:
        """Several single values; one request when they sit close in one table, so
        values the device changes together are read together."""
        tables = {r.table for r in regs}
        starts = [r.wire(self.numbering) for r in regs]
        start = min(starts)
        end = max(s + r.words for s, r in zip(starts, regs, strict=True))
        limit = MAX_BITS if regs[0].table in BIT_TABLES else MAX_REGISTERS
        if len(tables) != 1 or end - start > min(limit, 32):
            return [await self.read(r) for r in regs]
        raw = await self._raw(regs[0].table, start, end - start)
        return [
            decode(raw[s - start : s - start + r.words], r, self.order)
            for s, r in zip(starts, regs, strict=True)
        ]

    async def read_slots(self, reg: Reg, slots: int) -> list[int]:
        """The value of ``reg`` for slots 1..``slots``, in as few requests as allowed.

        A per-slot block with registers between the values is read across them; a
        device that refuses that (illegal data address for registers it does not use)
        is then read slot by slot, from then on."""
        if reg.stride > reg.words and reg in self._gapless:
            return [await self.read(reg, n) for n in range(1, slots + 1)]
        try:
            return await self._read_span(reg, slots)
        except ProtocolError as exc:
            if reg.stride <= reg.words or exc.context.get("exception_code") != 2:
                raise
            self._gapless.add(reg)
            return [await self.read(reg, n) for n in range(1, slots + 1)]

    async def _read_span(self, reg: Reg, slots: int) -> list[int]:
        values: list[int] = []
        base = reg.wire(self.numbering, 1)
        for plan in plan_read(reg, self.numbering, slots):
            raw = await self._raw(reg.table, plan.start, plan.count)
            offset = plan.start - base
            for n in range(len(values) + 1, slots + 1):
                at = reg.wire(self.numbering, n) - base - offset
                if at + reg.words > len(raw):
                    break
                values.append(decode(raw[at : at + reg.words], reg, self.order))
        return values

    async def read_words(self, reg: Reg, count: int) -> list[int]:
        """``count`` consecutive raw registers from ``reg`` (a barcode, say)."""
        return await self._raw(reg.table, reg.wire(self.numbering), count)

    async def write(self, reg: Reg, value: int, slot: int = 1) -> None:
        address = reg.wire(self.numbering, slot)
        if reg.table == "coil":
            await self.hub.write_coil(self.unit, address, bool(value))
            return
        words = encode(value, reg, self.order)
        if len(words) == 1:
            await self.hub.write_register(self.unit, address, words[0])
        else:
            await self.hub.write_registers(self.unit, address, words)

    async def write_slots(self, reg: Reg, value: int, slots: range) -> None:
        """The same value to several slots (one request for consecutive coils)."""
        if reg.table == "coil" and reg.stride == 1 and slots.step == 1 and len(slots):
            start = reg.wire(self.numbering, slots[0])
            await self.hub.write_coils(self.unit, start, [bool(value)] * len(slots))
            return
        for slot in slots:
            await self.write(reg, value, slot)


def next_heartbeat(beat: Heartbeat, value: int) -> int:
    """The next heartbeat value: a counter in a holding register, a toggled coil."""
    if beat.at.table == "coil":
        return 1 - (value & 1)
    return (value + 1) % 65536


async def heartbeat_loop(regs: MappedRegisters, beat: Heartbeat, period_s: float) -> None:
    """Write a changing value every ``period_s`` (at most the map's period): the device
    drops its outputs without it."""
    value = 0
    while True:
        value = next_heartbeat(beat, value)
        await regs.write(beat.at, value)
        await asyncio.sleep(min(period_s, beat.period_s))
