"""Modbus register maps of pick-to-light panels and diverter PLCs, as named profiles.

A real panel or PLC comes with its vendor's map; the floor file names the profile
each device speaks (``register_map: ...``) and may define its own under
``register_maps:``. Two profiles of each kind are shipped:

- ``wcs-ptl`` / ``wcs-diverter``: the project's own maps (the default);
- ``block-ptl`` / ``sorter-plc``: vendor-style maps - numbered from 1 as their manuals
  print them, a block of holding registers per slot, the light as a register, 32-bit
  counters low word first, a display with one decimal, status codes of its own, a
  coil toggled as heartbeat.

``mqtt_topics.md`` documents every shipped profile, and a test keeps the two the
same. A profile is checked when the floor file is read: a field in a table it cannot
be in (a light in an input register), two fields on the same registers, a 32-bit
value in a coil, an address past 65535 or below the map's numbering - each refused
with the profile and field named, before anything starts.

Addresses are written as the profile's ``numbering`` says (0: wire addresses, what
goes into the PDU; 1: the vendor's 1-based numbers, one higher); :meth:`Reg.wire`
gives the wire address. A per-slot field of a panel is at ``address + stride * (n-1)``
for slot ``n``. A value is ``value * scale`` on the wire (a display with one decimal
shows 3 units as 30).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Table = Literal["coil", "discrete", "holding", "input"]
BIT_TABLES = ("coil", "discrete")
WRITABLE = ("coil", "holding")
WordOrder = Literal["high_first", "low_first"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reg(_Strict):
    """Where one value lives: its table, first address, per-slot stride, size, scale."""

    table: Table
    address: int = Field(ge=0, le=65535)
    stride: int = Field(default=1, ge=1, le=1000)
    words: Literal[1, 2] = 1  # 2: a 32-bit value in two registers (see word_order)
    scale: int = Field(default=1, ge=1, le=1000)

    @model_validator(mode="after")
    def _fits(self) -> Reg:
        if self.table in BIT_TABLES and (self.words != 1 or self.scale != 1):
            raise ValueError(f"a {self.table} holds one bit: no words or scale")
        return self

    def wire(self, numbering: int, slot: int = 1) -> int:
        """The 0-based wire address for ``slot`` (1-based)."""
        return self.address - numbering + self.stride * (slot - 1)

    def span(self, numbering: int, slots: int) -> set[tuple[str, int]]:
        """Every (table, wire address) the value takes over ``slots`` slots."""
        return {
            (self.table, self.wire(numbering, n) + w)
            for n in range(1, slots + 1)
            for w in range(self.words)
        }


class Heartbeat(_Strict):
    """The host's sign of life: a register counted up, or a coil toggled."""

    at: Reg
    period_s: float = Field(default=1.0, gt=0, le=60)
    # How long the device waits for a change before it drops its outputs (documented
    # by the vendor; the simulator honours it).
    timeout_s: float = Field(default=10.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _writable(self) -> Heartbeat:
        if self.at.table not in WRITABLE:
            raise ValueError("heartbeat.at: the host writes it: coil or holding")
        return self


class _Map(_Strict):
    numbering: Literal[0, 1] = 0
    word_order: WordOrder = "high_first"
    heartbeat: Heartbeat | None = None

    def _fields(self) -> dict[str, tuple[Reg, bool]]:
        """Every register field: (where, per slot?)."""
        raise NotImplementedError

    def _check(self, slots: int, writable: set[str]) -> None:
        seen: dict[tuple[str, int], str] = {}
        fields = self._fields()
        if self.heartbeat is not None:
            fields["heartbeat.at"] = (self.heartbeat.at, False)
        for name, (reg, per_slot) in fields.items():
            if reg.address < self.numbering:
                raise ValueError(f"{name}.address: {reg.address} is below numbering from 1")
            if name in writable and reg.table not in WRITABLE:
                raise ValueError(f"{name}.table: the host writes it: coil or holding")
            places = reg.span(self.numbering, slots if per_slot else 1)
            if max(a for _, a in places) > 65535:
                raise ValueError(f"{name}.address: its registers run past 65535")
            for place in sorted(places):
                other = seen.get(place)
                if other is not None:
                    raise ValueError(
                        f"{name} and {other} share {place[0]} {place[1]} (wire address)"
                    )
                seen[place] = name


Color = Literal["green", "red", "blue", "yellow", "white"]


def _default_colors() -> dict[Color, int]:
    return {"green": 1, "red": 2, "blue": 3, "yellow": 4, "white": 5}


Message = Literal["none", "controller_offline"]


def _default_messages() -> dict[Message, int]:
    return {"none": 0, "controller_offline": 1}


class PtlMap(_Map):
    """A pick-to-light panel: per slot a light, a quantity, a colour, a confirm counter."""

    kind: Literal["ptl"] = "ptl"
    max_slots: int = Field(default=100, ge=1, le=1000)
    light: Reg
    # A light in a holding register: the values for off, on and blinking. A light in
    # a coil blinks through the colour register's blink flag instead.
    light_values: dict[Literal["off", "on", "blink"], int] | None = None
    qty: Reg
    max_qty: int = Field(default=9999, ge=1, le=65535)
    color: Reg | None = None
    colors: dict[Color, int] = Field(default_factory=_default_colors)
    blink_flag: int | None = 256  # added to the colour value to blink (coil lights)
    slot_count: Reg | None = None
    confirm_counter: Reg
    confirm_qty: Reg
    button: Reg | None = None  # held down now (for display only)
    # A message the display shows instead of quantities (a panel without one only
    # puts its lights out).
    message: Reg | None = None
    messages: dict[Message, int] = Field(default_factory=_default_messages)

    def _fields(self) -> dict[str, tuple[Reg, bool]]:
        found = {
            "light": (self.light, True),
            "qty": (self.qty, True),
            "confirm_counter": (self.confirm_counter, True),
            "confirm_qty": (self.confirm_qty, True),
        }
        if self.color is not None:
            found["color"] = (self.color, True)
        if self.slot_count is not None:
            found["slot_count"] = (self.slot_count, False)
        if self.button is not None:
            found["button"] = (self.button, True)
        if self.message is not None:
            found["message"] = (self.message, False)
        return found

    @model_validator(mode="after")
    def _valid(self) -> PtlMap:
        if self.light.table == "holding" and self.light_values is None:
            raise ValueError("light_values: a light in a holding register needs off/on/blink")
        if self.light_values is not None and set(self.light_values) != {"off", "on", "blink"}:
            raise ValueError("light_values: give off, on and blink")
        if self.light.table == "coil" and self.color is None:
            raise ValueError("color: a coil light blinks through its colour register")
        if self.max_qty * self.qty.scale > (65535 if self.qty.words == 1 else 2**32 - 1):
            raise ValueError("max_qty: times the scale, it does not fit the register")
        self._check(self.max_slots, {"light", "qty", "color", "message"})
        return self

    def color_value(self, color: str, blink: bool) -> int:
        value = self.colors[color]  # type: ignore[index]
        if blink and self.light.table == "coil" and self.blink_flag is not None:
            value += self.blink_flag
        return value


class DiverterMap(_Map):
    """A diverter PLC at one decision point: the lane handshake and the tote's barcode."""

    kind: Literal["diverter"] = "diverter"
    lane: Reg
    request_seq: Reg
    arrivals: Reg
    seq_echo: Reg
    lane_taken: Reg
    status: Reg
    # Status value -> what is wrong (None: running).
    status_codes: dict[int, str | None] = Field(
        default_factory=lambda: {0: None, 1: "conveyor jam", 2: "diverter fault"}
    )
    barcode: Reg
    barcode_registers: int = Field(default=20, ge=1, le=125)
    byte_order: WordOrder = "high_first"  # the first character in the high byte
    # Signals the PLC shows besides (the driver does not need them; a panel shows them).
    eye: Reg | None = None  # photo-eye blocked: a tote is at the point
    in_position: Reg | None = None  # the diverter has moved for the last request
    fault_flag: Reg | None = None

    def _fields(self) -> dict[str, tuple[Reg, bool]]:
        found = {
            name: (getattr(self, name), False)
            for name in ("lane", "request_seq", "arrivals", "seq_echo", "lane_taken", "status")
        }
        for name in ("eye", "in_position", "fault_flag"):
            if getattr(self, name) is not None:
                found[name] = (getattr(self, name), False)
        barcode = self.barcode.model_copy(update={"words": 1})
        for n in range(self.barcode_registers):
            found[f"barcode[{n}]"] = (
                barcode.model_copy(update={"address": barcode.address + n}),
                False,
            )
        return found

    @model_validator(mode="after")
    def _valid(self) -> DiverterMap:
        for name in ("arrivals", "seq_echo", "lane_taken", "status", "barcode"):
            if getattr(self, name).table in BIT_TABLES:
                raise ValueError(f"{name}.table: a number: input or holding register")
        if None not in self.status_codes.values():
            raise ValueError("status_codes: one code must mean running (null)")
        self._check(1, {"lane", "request_seq"})
        return self

    def seq_limit(self) -> int:
        """The largest sequence id the request register holds."""
        return 65535 if self.request_seq.words == 1 else 2**32 - 1


RegisterMap = Annotated[PtlMap | DiverterMap, Field(discriminator="kind")]


def _r(table: Table, address: int, **more: int) -> Reg:
    return Reg(table=table, address=address, **more)


SHIPPED: dict[str, PtlMap | DiverterMap] = {
    "wcs-ptl": PtlMap(
        light=_r("coil", 0),
        qty=_r("holding", 100),
        color=_r("holding", 200),
        slot_count=_r("input", 0),
        confirm_counter=_r("input", 100),
        confirm_qty=_r("input", 200),
        button=_r("discrete", 0),
        message=_r("holding", 1),
        heartbeat=Heartbeat(at=_r("holding", 0), timeout_s=10.0),
    ),
    "wcs-diverter": DiverterMap(
        lane=_r("holding", 0),
        request_seq=_r("holding", 1),
        arrivals=_r("input", 0),
        seq_echo=_r("input", 1),
        lane_taken=_r("input", 2),
        status=_r("input", 3),
        barcode=_r("input", 10),
        eye=_r("discrete", 0),
        in_position=_r("discrete", 1),
        fault_flag=_r("discrete", 2),
    ),
    "block-ptl": PtlMap(
        numbering=1,
        word_order="low_first",
        max_slots=64,
        max_qty=999,
        slot_count=_r("holding", 2),
        qty=_r("holding", 1001, stride=10, scale=10),
        light=_r("holding", 1002, stride=10),
        light_values={"off": 0, "on": 1, "blink": 2},
        color=_r("holding", 1003, stride=10),
        colors={"red": 1, "green": 2, "yellow": 3, "blue": 4, "white": 7},
        blink_flag=None,
        confirm_counter=_r("holding", 1005, stride=10, words=2),
        confirm_qty=_r("holding", 1007, stride=10, scale=10),
        message=_r("holding", 12),
        messages={"none": 0, "controller_offline": 9},
        heartbeat=Heartbeat(at=_r("holding", 10), timeout_s=5.0),
    ),
    "sorter-plc": DiverterMap(
        numbering=1,
        word_order="low_first",
        lane=_r("holding", 101),
        request_seq=_r("holding", 102, words=2),
        arrivals=_r("input", 1, words=2),
        seq_echo=_r("input", 3, words=2),
        lane_taken=_r("input", 5),
        status=_r("input", 6),
        status_codes={0: None, 3: "conveyor jam", 4: "diverter fault", 5: "emergency stop"},
        barcode=_r("input", 21),
        barcode_registers=16,
        byte_order="low_first",
        heartbeat=Heartbeat(at=_r("coil", 1), timeout_s=5.0),
    ),
}
DEFAULT_MAP = {"ptl": "wcs-ptl", "diverter": "wcs-diverter"}


def split_words(value: int, words: int, order: WordOrder) -> list[int]:
    """A value as the registers hold it (two 16-bit words in ``order`` for 32 bits)."""
    if words == 1:
        return [value & 0xFFFF]
    high, low = (value >> 16) & 0xFFFF, value & 0xFFFF
    return [high, low] if order == "high_first" else [low, high]


def join_words(registers: list[int], order: WordOrder) -> int:
    if len(registers) == 1:
        return registers[0] & 0xFFFF
    first, second = registers[0] & 0xFFFF, registers[1] & 0xFFFF
    return (first << 16 | second) if order == "high_first" else (second << 16 | first)
