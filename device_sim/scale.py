"""Simulated weighing scale: METTLER TOLEDO MT-SICS subset, or Toledo continuous output.

The platter model: :meth:`ScaleSim.place` puts a load on the scale that settles after
``settle_s`` seconds; until then readings swing around the final value (a damped
oscillation, deterministic in time) and the scale reports motion. The scale keeps a zero
offset (``Z``) and a tare (``T``); net = load - zero offset - tare.

MT-SICS (every command and reply ends with CR LF; only CR LF ends a command):

======== ===========================================================================
``S``    stable net weight ``S S     1234.5 g``; waits up to ``stable_timeout_s`` for
         the load to settle, then ``S I``
``SI``   immediate: ``S D`` with the moving value, ``S S`` once settled
``SIR``  ``SI`` repeated every ``continuous_interval_s`` until the next command
``Z``    zero (waits for stability): ``Z A``; ``Z I`` not settled in time or busy;
         ``Z +`` / ``Z -`` outside the zero-setting range
``ZI``   zero at once: ``ZI S`` (stable) or ``ZI D`` (moving); ``ZI +`` / ``ZI -``
``T``    tare (waits for stability): ``T S <tare> g``; ``T I``; ``T +`` over capacity;
         ``T -`` below zero
``TI``   tare at once: ``TI S <tare>`` or ``TI D <tare>``; ``TI +`` / ``TI -``
``TA``   tare memory: ``TA A <tare> g``; ``TA <value> <unit>`` presets it (``TA L``
         for a value out of range or a unit the scale does not show); ``TAC`` clears
         it: ``TAC A``
``@``    reset: cancels a waiting command (it gets no reply) and a running ``SIR``,
         clears the tare, answers ``I4 A "<serial>"``
other    ``ES``; a line with bytes outside printable ASCII answers ``ET``
======== ===========================================================================

Dialects (``ScaleOptions.dialect``), as scales in the field answer:

- ``standard``: the replies above, as the MT-SICS reference manual prints them.
- ``echo``: every reply starts with the command it answers (``SI S ...``,
  ``SIR D ...``, ``ZI A``, ``@ A "..."``), and ``S`` does not wait for the load to
  settle: a moving load answers ``S D <value>`` at once.

Units: ``g``, ``kg``, ``lb`` and ``oz`` (``unit``), converted from the grams on the
platter.

Over capacity every weight command answers ``S +``; below zero by more than
``underload_g`` it answers ``S -``. Weights are right-aligned in a 10-character field.

Toledo continuous output streams ``STX SWA SWB SWC wwwwww tttttt CR [CHK]`` every
``continuous_interval_s``; the host may send ``T``, ``Z``, ``C`` (clear tare), ``P``
(print request flag) each ended by CR.

Faults: ``fault = "busy" | "overload" | "underload"`` forces that answer to every weight
command; ``reply_delay_s``; :meth:`send_garbage`; link down/up.
"""

from __future__ import annotations

import asyncio
import math
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Literal

from device_sim.base import now, sleep_until
from device_sim.serial_link import PtyEndpoint, SerialEndpoint, SerialSim, TcpSerialEndpoint

STX = 0x02
CR = 0x0D
Fault = Literal["busy", "overload", "underload"]
Unit = Literal["g", "kg", "lb", "oz"]
# Grams per displayed unit (the avoirdupois pound and ounce are exact by definition).
UNIT_GRAMS: dict[str, float] = {"g": 1.0, "kg": 1000.0, "lb": 453.59237, "oz": 28.349523125}
# Decimals shown by default: about 0.1 g resolution in each unit.
UNIT_DECIMALS: dict[str, int] = {"g": 1, "kg": 4, "lb": 4, "oz": 3}


@dataclass(frozen=True)
class ScaleOptions:
    protocol: Literal["mt-sics", "toledo-continuous"] = "mt-sics"
    unit: Unit = "g"
    dialect: Literal["standard", "echo"] = "standard"
    capacity_g: float = 30_000.0
    # Displayed decimals; by default about 0.1 g resolution (1 in g, 4 in kg and lb).
    decimals: int | None = None
    # How long ``S``, ``Z`` and ``T`` wait for a settled load before answering ``I``.
    stable_timeout_s: float = 3.0
    # Settling time of a load when place()/remove() do not say.
    settle_s: float = 0.8
    # Zero-setting range around the power-on zero; by default 4 % of capacity (the
    # usual limit for zero-setting devices on trade scales).
    zero_range_g: float | None = None
    underload_g: float = 50.0
    serial_number: str | None = None
    reply_delay_s: float = 0.0
    continuous_interval_s: float = 0.1
    continuous_checksum: bool = True

    @property
    def shown_decimals(self) -> int:
        if self.decimals is not None:
            return self.decimals
        return UNIT_DECIMALS[self.unit]

    @property
    def zero_range(self) -> float:
        return self.zero_range_g if self.zero_range_g is not None else self.capacity_g * 0.04


def format_weight(grams: float, unit: str = "g", decimals: int = 1) -> str:
    """MT-SICS weight field: value right-aligned in 10 characters, a space, the unit."""
    value = grams / UNIT_GRAMS[unit]
    text = f"{value:.{decimals}f}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return f"{text:>10} {unit}"


def toledo_frame(
    displayed_g: float,
    tare_g: float,
    *,
    unit: str = "g",
    decimals: int = 1,
    moving: bool = False,
    out_of_range: bool = False,
    print_request: bool = False,
    checksum: bool = True,
) -> bytes:
    """One Toledo continuous-output frame.

    Status word A: bits 0-2 decimal point position (2 = no decimals, 3 = XXXXX.X ...),
    bits 3-4 increment size (01 = x1), bit 5 always 1. Status word B: bit 0 net, bit 1
    negative, bit 2 out of range, bit 3 motion, bit 4 kg, bit 5 always 1. Status word C:
    bit 0 grams, bit 3 print request, bit 5 always 1. The checksum is the two's
    complement of the 7-bit sum of every byte before it, STX and CR included.
    """
    if not 0 <= decimals <= 5:
        raise ValueError("Toledo continuous output carries 0-5 decimals")
    scale = 10**decimals
    factor = 1 / 1000.0 if unit == "kg" else 1.0
    # Half up, as an indicator display rounds (Python's round() would go to even).
    shown = math.floor(abs(displayed_g) * factor * scale + 0.5)
    tare = math.floor(abs(tare_g) * factor * scale + 0.5)
    if shown > 999_999:
        shown, out_of_range = 999_999, True
    tare = min(tare, 999_999)
    swa = 0x20 | 0x08 | (decimals + 2)
    swb = 0x20
    if tare_g:
        swb |= 0x01
    if displayed_g < 0 and shown:
        swb |= 0x02
    if out_of_range:
        swb |= 0x04
    if moving:
        swb |= 0x08
    if unit == "kg":
        swb |= 0x10
    swc = 0x20 | (0x01 if unit == "g" else 0) | (0x08 if print_request else 0)
    frame = bytes([STX, swa, swb, swc]) + f"{shown:06d}{tare:06d}".encode("ascii") + bytes([CR])
    if checksum:
        frame += bytes([-sum(frame) & 0x7F])
    return frame


class _Platter:
    """The load on the scale: settles from ``start`` to ``target`` over ``settle_s``."""

    def __init__(self) -> None:
        self.start = 0.0
        self.target = 0.0
        self.t0 = 0.0
        self.settle_s = 0.0

    @property
    def settles_at(self) -> float:
        return self.t0 + self.settle_s

    def reading(self, t: float) -> tuple[float, bool]:
        if self.settle_s <= 0 or t >= self.settles_at:
            return self.target, False
        x = (t - self.t0) / self.settle_s
        # Damped swing through and past the final value, as a parcel dropped on a
        # platter does; exactly the start value at x = 0 and the target at x = 1.
        return self.target + (self.start - self.target) * (1 - x) * math.cos(
            2.5 * math.pi * x
        ), True

    def move(self, target: float, settle_s: float, t: float) -> None:
        self.start = self.reading(t)[0]
        self.target = target
        self.t0 = t
        self.settle_s = settle_s


class ScaleSim(SerialSim):
    kind = "scale"

    def __init__(
        self, device_id: str, endpoint: SerialEndpoint, options: ScaleOptions | None = None
    ):
        self.options = options or ScaleOptions()
        super().__init__(device_id, endpoint, reply_delay_s=self.options.reply_delay_s)
        self.serial_number = (
            self.options.serial_number or f"{zlib.crc32(device_id.encode()) % 10**10:010d}"
        )
        self.zero_offset_g = 0.0
        self.tare_g = 0.0
        # Bounded: a driver polling SI ten times a second runs for hours.
        self.commands: deque[str] = deque(maxlen=1000)
        self.replies: deque[str] = deque(maxlen=1000)
        self._fault: Fault | None = None
        self._platter = _Platter()
        self._rx = bytearray()
        self._lines: asyncio.Queue[bytes] = asyncio.Queue()
        self._abort = asyncio.Event()
        self._wake = asyncio.Event()
        self._print_request = False
        self._settle_timer: asyncio.TimerHandle | None = None
        self._stream: asyncio.Task[None] | None = None
        if self.options.protocol != "mt-sics" and self.options.unit not in ("g", "kg"):
            raise ValueError("Toledo continuous output shows g or kg only")

    async def stop(self) -> None:
        if self._settle_timer is not None:
            self._settle_timer.cancel()
            self._settle_timer = None
        await super().stop()

    @classmethod
    def over_tcp(
        cls,
        device_id: str,
        host: str = "127.0.0.1",
        port: int = 0,
        options: ScaleOptions | None = None,
    ) -> ScaleSim:
        return cls(device_id, TcpSerialEndpoint(device_id, host, port), options)

    @classmethod
    def over_pty(
        cls, device_id: str, link_path: str | None = None, options: ScaleOptions | None = None
    ) -> ScaleSim:
        return cls(device_id, PtyEndpoint(device_id, link_path), options)

    # -- scripted behaviour --------------------------------------------------------

    def place(self, grams: float, settle_s: float | None = None) -> None:
        """The platter now carries ``grams`` in total; it settles after ``settle_s``."""
        settle = self.options.settle_s if settle_s is None else settle_s
        self._platter.move(grams, settle, now())
        self.log.debug("load placed", grams=grams, settle_s=settle)
        if self._settle_timer is not None:
            self._settle_timer.cancel()
        # Settling is a change too: wake whoever waits for a stable weight.
        self._settle_timer = asyncio.get_running_loop().call_at(
            self._platter.settles_at, self._changed
        )
        self._changed()

    def add(self, grams: float, settle_s: float | None = None) -> None:
        """Put ``grams`` more on the platter (an item dropped into the carton)."""
        self.place(self._platter.target + grams, settle_s)

    def remove(self, settle_s: float | None = None) -> None:
        """Take everything off the platter."""
        self.place(0.0, settle_s)

    @property
    def fault(self) -> Fault | None:
        return self._fault

    @fault.setter
    def fault(self, value: Fault | None) -> None:
        if value is not None:
            self.log.warning("fault injected", fault=value)
        self._fault = value
        self._changed()

    @property
    def load_g(self) -> float:
        """What is on the platter now (moving value while it settles)."""
        return self._platter.reading(now())[0]

    @property
    def stable(self) -> bool:
        return not self._platter.reading(now())[1]

    @property
    def net_g(self) -> float:
        return self.load_g - self.zero_offset_g - self.tare_g

    def _changed(self) -> None:
        self._wake.set()
        self.changes.notify()

    # -- protocol ------------------------------------------------------------------

    def _start_behaviour(self) -> None:
        if self.options.protocol == "mt-sics":
            self.tasks.spawn(self._command_loop(), "mt-sics")
        else:
            self.tasks.spawn(self._continuous_loop(), "toledo-continuous")

    def _received(self, data: bytes) -> None:
        self._rx.extend(data)
        terminator = b"\r\n" if self.options.protocol == "mt-sics" else b"\r"
        while (end := self._rx.find(terminator)) >= 0:
            line = bytes(self._rx[:end]).strip(b"\n")
            del self._rx[: end + len(terminator)]
            if self.options.protocol != "mt-sics":
                self._continuous_command(line)
                continue
            # MT-SICS: SIR repeats until the scale receives another command.
            self._stop_stream()
            if line == b"@":
                # MT-SICS: @ cancels every command still waiting for its answer.
                while not self._lines.empty():
                    self._lines.get_nowait()
                self._abort.set()
                self._wake.set()
            self._lines.put_nowait(line)
        if len(self._rx) > 1024:
            # A line this long is noise, not a command; a real balance discards it too.
            self._rx.clear()

    async def _command_loop(self) -> None:
        while True:
            line = await self._lines.get()
            text = line.decode("latin-1")
            self.commands.append(text)
            self.changes.notify()
            reply = await self._execute(line)
            if reply is None:
                continue
            self.replies.append(reply)
            await self.send(reply.encode("ascii") + b"\r\n")

    def _stop_stream(self) -> None:
        if self._stream is not None:
            self._stream.cancel()
            self._stream = None

    @property
    def streaming(self) -> bool:
        """An ``SIR`` stream is running."""
        return self._stream is not None and not self._stream.done()

    async def _execute(self, line: bytes) -> str | None:
        if any(b < 0x20 or b > 0x7E for b in line):
            return "ET"
        command, *args = line.decode("ascii").split(" ")
        if command == "@" and not args:
            self._abort.clear()
            self.tare_g = 0.0
            self._changed()
            head = "@" if self.options.dialect == "echo" else "I4"
            return f'{head} A "{self.serial_number}"'
        if command == "TA" and args:
            return self._preset_tare(args)
        if args:
            return "ES"
        handler = {
            "S": self._cmd_s,
            "SI": self._cmd_si,
            "SIR": self._cmd_sir,
            "Z": self._cmd_z,
            "ZI": self._cmd_zi,
            "T": self._cmd_t,
            "TI": self._cmd_ti,
            "TA": self._cmd_ta,
            "TAC": self._cmd_tac,
        }.get(command)
        if handler is None:
            return "ES"
        return await handler()

    def _echo(self, command: str, standard: str) -> str:
        """The reply's first token: the command itself in the echo dialect."""
        return command if self.options.dialect == "echo" else standard

    def _busy(self) -> bool:
        # A method, not an inline test: the fault may change while a command waits.
        return self._fault == "busy"

    def _weight(self, grams: float) -> str:
        return format_weight(grams, self.options.unit, self.options.shown_decimals)

    def _range_error(self, t: float) -> str | None:
        load = self._platter.reading(t)[0]
        if self._fault == "overload" or load > self.options.capacity_g:
            return "+"
        if self._fault == "underload" or load - self.zero_offset_g < -self.options.underload_g:
            return "-"
        return None

    async def _wait_stable(self) -> Literal["stable", "timeout", "abort"]:
        deadline = now() + self.options.stable_timeout_s
        while True:
            if self._abort.is_set():
                return "abort"
            t = now()
            if not self._platter.reading(t)[1]:
                return "stable"
            if t >= deadline:
                return "timeout"
            self._wake.clear()
            await sleep_until(min(deadline, self._platter.settles_at), self._wake)

    async def _cmd_s(self) -> str | None:
        if self._fault == "busy":
            return "S I"
        if error := self._range_error(now()):
            return f"S {error}"
        if self.options.dialect == "echo" and not self.stable:
            return f"S D {self._weight(self.net_g)}"
        outcome = await self._wait_stable()
        if outcome == "abort":
            return None
        if error := self._range_error(now()):
            return f"S {error}"
        if outcome == "timeout" or self._busy():
            return "S I"
        return f"S S {self._weight(self.net_g)}"

    async def _cmd_si(self, command: str = "SI") -> str:
        t = now()
        head = self._echo(command, "S")
        if self._fault == "busy":
            return f"{head} I"
        if error := self._range_error(t):
            return f"{head} {error}"
        load, moving = self._platter.reading(t)
        net = load - self.zero_offset_g - self.tare_g
        return f"{head} {'D' if moving else 'S'} {self._weight(net)}"

    async def _cmd_sir(self) -> None:
        self._stream = self.tasks.spawn(self._sir_stream(), "sir")

    async def _sir_stream(self) -> None:
        while True:
            reply = await self._cmd_si("SIR")
            self.replies.append(reply)
            await self.send(reply.encode("ascii") + b"\r\n")
            await asyncio.sleep(self.options.continuous_interval_s)

    async def _cmd_zi(self) -> str:
        head = self._echo("ZI", "ZI")
        if self._fault == "busy":
            return f"{head} I"
        load, moving = self._platter.reading(now())
        if self._fault == "overload" or load > self.options.zero_range:
            return f"{head} +"
        if self._fault == "underload" or load < -self.options.zero_range:
            return f"{head} -"
        self.zero_offset_g = load
        self.tare_g = 0.0
        self._changed()
        if self.options.dialect == "echo":
            return f"{head} A"
        return f"{head} {'D' if moving else 'S'}"

    async def _cmd_ti(self) -> str:
        if self._fault == "busy":
            return "TI I"
        load, moving = self._platter.reading(now())
        if self._fault == "overload" or load > self.options.capacity_g:
            return "TI +"
        gross = load - self.zero_offset_g
        if self._fault == "underload" or gross < 0:
            return "TI -"
        self.tare_g = self._rounded(gross)
        self._changed()
        return f"TI {'D' if moving else 'S'} {self._weight(self.tare_g)}"

    def _rounded(self, grams: float) -> float:
        """``grams`` at the scale's resolution (a tare is stored as shown)."""
        step = UNIT_GRAMS[self.options.unit] / 10**self.options.shown_decimals
        return float(round(round(grams / step) * step, 6))

    def _preset_tare(self, args: list[str]) -> str:
        """``TA <value> <unit>``: a known container weight becomes the tare."""
        if len(args) != 2 or args[1] != self.options.unit:
            return "TA L"  # MT-SICS: the preset must be in the displayed unit
        try:
            value = float(args[0])
        except ValueError:
            return "TA L"
        grams = value * UNIT_GRAMS[self.options.unit]
        if not 0 <= grams <= self.options.capacity_g or not math.isfinite(grams):
            return "TA L"
        self.tare_g = self._rounded(grams)
        self._changed()
        return f"TA A {self._weight(self.tare_g)}"

    async def _cmd_z(self) -> str | None:
        if self._fault == "busy":
            return "Z I"
        outcome = await self._wait_stable()
        if outcome == "abort":
            return None
        if outcome == "timeout":
            return "Z I"
        load = self._platter.reading(now())[0]
        if self._fault == "overload" or load > self.options.zero_range:
            return "Z +"
        if self._fault == "underload" or load < -self.options.zero_range:
            return "Z -"
        self.zero_offset_g = load
        self.tare_g = 0.0
        self._changed()
        return "Z A"

    async def _cmd_t(self) -> str | None:
        if self._fault == "busy":
            return "T I"
        if self._fault == "overload" or self._platter.reading(now())[0] > self.options.capacity_g:
            return "T +"
        outcome = await self._wait_stable()
        if outcome == "abort":
            return None
        if outcome == "timeout":
            return "T I"
        gross = self._platter.reading(now())[0] - self.zero_offset_g
        if self._fault == "underload" or gross < 0:
            return "T -"
        self.tare_g = self._rounded(gross)
        self._changed()
        return f"T S {self._weight(self.tare_g)}"

    async def _cmd_ta(self) -> str:
        return f"TA A {self._weight(self.tare_g)}"

    async def _cmd_tac(self) -> str:
        self.tare_g = 0.0
        self._changed()
        return "TAC A"

    # -- Toledo continuous ---------------------------------------------------------

    def continuous_frame(self) -> bytes:
        """The frame the scale would send now."""
        t = now()
        load, moving = self._platter.reading(t)
        gross = load - self.zero_offset_g
        frame = toledo_frame(
            gross - self.tare_g,
            self.tare_g,
            unit=self.options.unit,
            decimals=self.options.shown_decimals,
            moving=moving or self._fault == "busy",
            out_of_range=self._range_error(t) is not None,
            print_request=self._print_request,
            checksum=self.options.continuous_checksum,
        )
        self._print_request = False
        return frame

    async def _continuous_loop(self) -> None:
        while True:
            if self.reply_delay_s > 0:
                await asyncio.sleep(self.reply_delay_s)
            await self.endpoint.write(self.continuous_frame())
            await asyncio.sleep(self.options.continuous_interval_s)

    def _continuous_command(self, line: bytes) -> None:
        command = line.strip().decode("latin-1")
        self.commands.append(command)
        t = now()
        load, moving = self._platter.reading(t)
        if command == "T" and not moving and self._range_error(t) is None:
            self.tare_g = max(load - self.zero_offset_g, 0.0)
        elif command == "Z" and not moving and abs(load) <= self.options.zero_range:
            self.zero_offset_g = load
            self.tare_g = 0.0
        elif command == "C":
            self.tare_g = 0.0
        elif command == "P":
            self._print_request = True
        self._changed()
