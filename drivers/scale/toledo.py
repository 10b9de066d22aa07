"""Toledo continuous output: the other common scale protocol. Pure, no I/O.

The scale streams frames without being asked::

    STX SWA SWB SWC wwwwww [tttttt] CR [checksum]

Status word A, bits 0-2: decimal point position (000 = x100, 001 = x10, 010 = x1,
011 = 0.1 ... 111 = 0.00001); status word B: bit 0 net, bit 1 negative, bit 2 out of
range, bit 3 in motion, bit 4 kg (else lb); status word C, bits 0-2: unit override
(001 g, 010 t, 011 oz; 000 = lb/kg from word B), bit 3 print request. Bit 7 of every
byte may carry parity and is ignored. The checksum, when sent, makes the 7-bit sum
of all bytes from STX to CR, plus the checksum, zero.

Whether a checksum follows the CR is a scale setting; ``checksum=None`` detects it:
the byte after CR is a checksum unless it is the next frame's STX (when a checksum
itself happens to be 0x02 and the scale sends none, one frame is lost, then the
stream re-synchronises on the next STX).
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.frame import BadFrame
from drivers.scale.units import to_grams

STX = 0x02
CR = 0x0D
_DECIMALS = {0: -2, 1: -1, 2: 0, 3: 1, 4: 2, 5: 3, 6: 4, 7: 5}
_UNIT_C = {1: "g", 2: "t", 3: "oz"}
MAX_FRAME = 32


@dataclass(frozen=True, slots=True)
class Reading:
    grams: float
    tare_grams: float | None
    stable: bool
    net: bool
    out_of_range: bool
    unit: str
    print_request: bool = False


def checksum(body: bytes) -> int:
    """The checksum byte for ``body`` (STX up to and including CR)."""
    return (-sum(b & 0x7F for b in body)) & 0x7F


def _digits(field: bytes, frame: bytes, what: str) -> int:
    text = field.decode("ascii", errors="replace").strip()
    if text == "":
        return 0  # some indicators blank leading digits instead of sending zeros
    if not text.isdigit() or not text.isascii():
        raise BadFrame(f"Toledo {what} field {field!r} is not digits", frame)
    return int(text)


def decode_frame(frame: bytes) -> Reading:
    """Decode one frame from STX up to and including CR (checksum already removed)."""
    if len(frame) not in (11, 17) or frame[0] != STX or frame[-1] != CR:
        raise BadFrame(f"Toledo frame must be STX + 9 or 15 bytes + CR, got {len(frame)}", frame)
    swa, swb, swc = (b & 0x7F for b in frame[1:4])
    if not (swa & 0x20 and swb & 0x20 and swc & 0x20):
        raise BadFrame("Toledo status words lack their fixed bit 5", frame)
    shift = _DECIMALS[swa & 0x07]
    weight = _digits(frame[4:10], frame, "weight")
    tare = _digits(frame[10:16], frame, "tare") if len(frame) == 17 else None
    unit = _UNIT_C.get(swc & 0x07) or ("kg" if swb & 0x10 else "lb")
    if swc & 0x07 and (swc & 0x07) not in _UNIT_C:
        raise BadFrame(f"Toledo unit code {swc & 0x07} is not supported", frame)
    sign = -1 if swb & 0x02 else 1
    value = sign * weight / (10**shift)
    tare_grams = None if tare is None else to_grams(tare / (10**shift), unit)
    return Reading(
        grams=to_grams(value, unit),
        tare_grams=tare_grams,
        stable=not swb & 0x08,
        net=bool(swb & 0x01),
        out_of_range=bool(swb & 0x04),
        unit=unit,
        print_request=bool(swc & 0x08),
    )


def encode_frame(
    value: float,
    *,
    unit: str = "kg",
    decimals: int = 3,
    tare: float | None = 0.0,
    stable: bool = True,
    net: bool = False,
    out_of_range: bool = False,
    with_checksum: bool = True,
) -> bytes:
    """Build a frame (used by tests and tools; a real scale sends these on its own)."""
    codes = {v: k for k, v in _DECIMALS.items()}
    swa = 0x20 | codes[decimals]
    swb = 0x20 | (0x01 if net else 0) | (0x02 if value < 0 else 0)
    swb |= (0x04 if out_of_range else 0) | (0 if stable else 0x08)
    swc = 0x20
    if unit in ("kg", "lb"):
        swb |= 0x10 if unit == "kg" else 0
    else:
        swc |= {v: k for k, v in _UNIT_C.items()}[unit]
    scale = 10**decimals
    body = bytes([STX, swa, swb, swc]) + f"{round(abs(value) * scale):06d}".encode()
    if tare is not None:
        body += f"{round(abs(tare) * scale):06d}".encode()
    body += b"\r"
    return body + (bytes([checksum(body)]) if with_checksum else b"")


class ToledoFramer:
    """Cut the continuous stream into frames; bytes before an STX are skipped."""

    def __init__(self, checksum: bool | None = None) -> None:
        self.checksum = checksum
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Reading | BadFrame]:
        self._buf += data
        out: list[Reading | BadFrame] = []
        while True:
            start = self._buf.find(STX)
            if start < 0:
                if self._buf:
                    out.append(BadFrame("bytes outside a Toledo frame", bytes(self._buf[:64])))
                self._buf.clear()
                return out
            if start > 0:
                out.append(BadFrame("bytes outside a Toledo frame", bytes(self._buf[:start])))
                del self._buf[:start]
            end = self._buf.find(CR, 1)
            if end < 0:
                if len(self._buf) > MAX_FRAME:
                    out.append(BadFrame("Toledo frame without CR", bytes(self._buf[:MAX_FRAME])))
                    del self._buf[:1]
                    continue
                return out
            stray = self._buf.find(STX, 1, end)
            if stray > 0:  # a frame cut short: restart at the later STX
                out.append(BadFrame("Toledo frame cut short", bytes(self._buf[:stray])))
                del self._buf[:stray]
                continue
            body = bytes(self._buf[: end + 1])
            has_sum = self.checksum
            if has_sum is None:
                if end + 1 >= len(self._buf):
                    return out  # wait for the byte after CR to decide
                has_sum = self._buf[end + 1] != STX or checksum(body) == STX
            if has_sum:
                if end + 1 >= len(self._buf):
                    return out
                received = self._buf[end + 1]
                del self._buf[: end + 2]
                expected = checksum(body)
                if received & 0x7F != expected:
                    out.append(
                        BadFrame(
                            f"Toledo checksum 0x{received:02x}, expected 0x{expected:02x}",
                            body + bytes([received]),
                        )
                    )
                    continue
            else:
                del self._buf[: end + 1]
            try:
                out.append(decode_frame(body))
            except BadFrame as exc:
                out.append(exc)
