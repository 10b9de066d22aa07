"""Pick-to-light panels through their register map: pure helpers, no I/O.

The map (a named profile, :class:`wcs.register_maps.PtlMap`) says where each slot's
light, quantity, colour and confirm counter live. Lighting a slot is a sequence of
writes - quantity and colour first, the light last, so a picker never sees the light
with the previous pick's number on it; clearing is one write of the light.
"""

from __future__ import annotations

from dataclasses import dataclass

from wcs.register_maps import PtlMap, Reg


@dataclass(frozen=True, slots=True)
class Write:
    reg: Reg
    value: int


def check_slot(m: PtlMap, slot: int) -> None:
    if not 1 <= slot <= m.max_slots:
        raise ValueError(f"slot {slot} is outside 1-{m.max_slots}")


def plan_light(m: PtlMap, slot: int, qty: int, color: str, blink: bool) -> list[Write]:
    """The writes that light ``slot``, in the order they must happen."""
    check_slot(m, slot)
    if not 0 <= qty <= m.max_qty:
        raise ValueError(f"quantity {qty} is outside 0-{m.max_qty}")
    if color not in m.colors:
        raise ValueError(f"colour {color!r} is not one of {', '.join(m.colors)}")
    writes = [Write(m.qty, qty)]
    if m.color is not None:
        writes.append(Write(m.color, m.color_value(color, blink)))
    if m.light_values is not None:
        writes.append(Write(m.light, m.light_values["blink" if blink else "on"]))
    else:
        writes.append(Write(m.light, 1))
    return writes


def light_off(m: PtlMap) -> int:
    return m.light_values["off"] if m.light_values is not None else 0


def decode_color(m: PtlMap, value: int) -> tuple[str | None, bool]:
    """The colour name and blink flag a colour register value means."""
    blink = False
    if m.blink_flag is not None and value >= m.blink_flag:
        value, blink = value - m.blink_flag, True
    names = {v: k for k, v in m.colors.items()}
    return names.get(value), blink
