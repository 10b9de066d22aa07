"""The stability filter of a streaming scale. Pure: readings in, weights to publish out.

A scale streaming its readings (MT-SICS ``SIR``) flags each one stable or moving. Its
flag alone flickers on a busy bench - one stable reading between two moving ones as a
parcel swings - so a weight counts as settled only once the scale has reported the
same value stable ``readings`` times in a row. A settled weight is published when it
differs from the last one published, or when the pan moved in between (the same
parcel lifted and put back is a new weighing).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SettleFilter:
    readings: int = 3
    _value: float | None = field(default=None, init=False)
    _count: int = field(default=0, init=False)
    _published: float | None = field(default=None, init=False)
    _moved: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        if self.readings < 1:
            raise ValueError("a weight settles after at least one reading")

    def feed(self, grams: float, stable: bool) -> float | None:
        """One reading; the weight to publish when the scale has settled on a new one."""
        if not stable:
            self._value, self._count, self._moved = None, 0, True
            return None
        if grams != self._value:
            if self._value is not None:
                self._moved = True  # stable at another value: the load changed
            self._value, self._count = grams, 1
        else:
            self._count += 1
        if self._count == self.readings and (self._moved or grams != self._published):
            self.published(grams)
            return grams
        return None

    @property
    def settled(self) -> float | None:
        """The weight the scale has settled on now, if it has."""
        return self._value if self._count >= self.readings else None

    def restart(self) -> None:
        """Count the stable readings afresh (a weigh wants readings from after it asked)."""
        self._count = 0

    def published(self, grams: float) -> None:
        self._published, self._moved = grams, False
