"""PTL panel register map and the pure helpers around it (0-based wire addresses).

coil      0+(n-1)    slot n light on/off                    host
holding   0          heartbeat (panel blanks after 10 s)    host
holding   1          panel message: 0 none, 1 controller    host
                     offline (shown on the display)
holding   100+(n-1)  slot n quantity shown, 0-9999          host
holding   200+(n-1)  slot n colour (1..5), +256 = blink     host
input     0          number of slots                        panel
input     100+(n-1)  slot n confirm counter (wraps)         panel
input     200+(n-1)  slot n quantity confirmed last         panel
discrete  0+(n-1)    slot n button held now                 panel
"""

from __future__ import annotations

from dataclasses import dataclass

COIL_LIGHT = 0
HR_HEARTBEAT = 0
HR_MESSAGE = 1
MESSAGE_NONE = 0
MESSAGE_CONTROLLER_OFFLINE = 1
HR_QTY = 100
HR_COLOR = 200
IR_SLOT_COUNT = 0
IR_CONFIRM_COUNTER = 100
IR_CONFIRM_QTY = 200
DI_BUTTON = 0
MAX_SLOTS = 100
MAX_QTY = 9999
BLINK = 256
COLORS: dict[str, int] = {"green": 1, "red": 2, "blue": 3, "yellow": 4, "white": 5}
COLOR_NAMES = {v: k for k, v in COLORS.items()}


def slot_offset(slot: int) -> int:
    if not 1 <= slot <= MAX_SLOTS:
        raise ValueError(f"slot {slot} is outside 1-{MAX_SLOTS}")
    return slot - 1


def color_value(color: str, blink: bool) -> int:
    if color not in COLORS:
        raise ValueError(f"colour {color!r} is not one of {', '.join(COLORS)}")
    return COLORS[color] + (BLINK if blink else 0)


def decode_color(value: int) -> tuple[str | None, bool]:
    return COLOR_NAMES.get(value & 0xFF), bool(value & BLINK)


@dataclass(frozen=True, slots=True)
class LightPlan:
    """The writes that light one slot, in the order they must happen."""

    qty_address: int
    qty: int
    color_address: int
    color: int
    coil: int


def plan_light(slot: int, qty: int, color: str, blink: bool) -> LightPlan:
    offset = slot_offset(slot)
    if not 0 <= qty <= MAX_QTY:
        raise ValueError(f"quantity {qty} is outside 0-{MAX_QTY}")
    # Quantity and colour go first, the light last: a picker never sees the light
    # with the previous pick's number on it.
    return LightPlan(
        qty_address=HR_QTY + offset,
        qty=qty,
        color_address=HR_COLOR + offset,
        color=color_value(color, blink),
        coil=COIL_LIGHT + offset,
    )


def next_heartbeat(value: int) -> int:
    return (value + 1) % 65536
