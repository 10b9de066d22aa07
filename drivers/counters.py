"""Edge detection on latched event counters (PTL confirm presses, tote arrivals).

A device counts events in a register that wraps 65535 -> 0 (or in two, 32 bits), so
a press or an arrival is never lost between two polls: the driver emits one event per
increment.
A counter that jumps back by a lot (the device was power-cycled and restarted at 0)
is taken as a new baseline, not as 65,000 events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MODULO = 1 << 16
MAX_STEP = 1000  # more increments than this between two polls means a reset, not events


def counter_delta(old: int, new: int, modulo: int = MODULO) -> int:
    return (new - old) % modulo


@dataclass(frozen=True, slots=True)
class Change:
    index: int
    increments: int


class CounterTracker:
    """Remembers the last value of each counter; reports increments since."""

    def __init__(
        self, baseline: Sequence[int], max_step: int = MAX_STEP, modulo: int = MODULO
    ) -> None:
        self.modulo = modulo  # 2**16, or 2**32 for a counter in two registers
        self._last = [v % modulo for v in baseline]
        self.max_step = max_step
        self.resets = 0

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(self._last)

    def update(self, values: Sequence[int]) -> list[Change]:
        if len(values) != len(self._last):
            raise ValueError(f"expected {len(self._last)} counters, got {len(values)}")
        changes: list[Change] = []
        for index, (old, new) in enumerate(zip(self._last, values, strict=True)):
            delta = counter_delta(old, new, self.modulo)
            if delta == 0:
                continue
            if delta > self.max_step:
                self.resets += 1
            else:
                changes.append(Change(index, delta))
            self._last[index] = new % self.modulo
        return changes
