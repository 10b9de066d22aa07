"""Framing shared by the line-based serial devices, and the frame error type.

A codec never raises anything but :class:`BadFrame` for bad input: the driver turns
it into a ``dlq`` message with the raw bytes and keeps running.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from wcs.errors import ProtocolError

Terminator = Literal["CR", "CRLF", "auto"]

CR = 0x0D
LF = 0x0A
MAX_LINE = 4096


class BadFrame(ProtocolError):
    """A frame the codec cannot accept; carries the raw bytes for the dead-letter queue."""

    code = "bad_frame"

    def __init__(self, reason: str, raw: bytes = b"") -> None:
        super().__init__(reason, raw=raw)
        self.reason = reason
        self.raw = raw


@dataclass(frozen=True, slots=True)
class Overlong:
    """A run of bytes without terminator longer than the line limit (kept truncated)."""

    raw: bytes
    reason: str


class LineFramer:
    """Split a byte stream into lines, whatever the read boundaries were.

    ``CR``: a line ends at CR; an LF right after it is tolerated (a scanner set to CRLF
    on a port configured for CR still works). ``CRLF``: a line ends at CR LF, and a CR
    LF split across two reads is joined. ``auto``: CR, LF and CR LF all end a line; the
    LF of a CR LF that arrives in the next read is not taken for an empty line.
    Empty lines are dropped. A line longer than ``max_line`` is reported once as
    :class:`Overlong` and the rest of it discarded up to the next terminator, so a
    device spewing bytes without terminators cannot grow memory without bound.
    """

    def __init__(self, terminator: Terminator = "auto", max_line: int = MAX_LINE) -> None:
        if terminator not in ("CR", "CRLF", "auto"):
            raise ValueError(f"terminator must be CR, CRLF or auto, not {terminator!r}")
        self.terminator = terminator
        self.max_line = max_line
        self._buf = bytearray()
        self._swallow_lf = False  # the previous read ended on a CR
        self._discarding = False  # inside an overlong line

    def feed(self, data: bytes) -> list[bytes | Overlong]:
        out: list[bytes | Overlong] = []
        if not data:
            return out
        if self._swallow_lf and self.terminator != "CRLF":
            if data[0] == LF:
                data = data[1:]
            self._swallow_lf = False
        self._buf += data
        buf = self._buf
        start = 0
        n = len(buf)
        i = 0
        while i < n:
            byte = buf[i]
            end: int | None = None
            if self.terminator == "CRLF":
                if byte == CR and i + 1 < n and buf[i + 1] == LF:
                    end, nxt = i, i + 2
            elif byte == CR:
                end, nxt = i, i + 1
                if nxt < n and buf[nxt] == LF:
                    nxt += 1
                elif nxt == n:
                    self._swallow_lf = True
            elif byte == LF and self.terminator == "auto":
                end, nxt = i, i + 1
            if end is None:
                i += 1
                continue
            self._emit(bytes(buf[start:end]), out)
            start = i = nxt
        rest = buf[start:]
        if self._discarding:
            rest = bytearray()
        elif len(rest) > self.max_line:
            out.append(
                Overlong(bytes(rest[: self.max_line]), f"no line end within {self.max_line} bytes")
            )
            rest = bytearray()
            self._discarding = True
        self._buf = bytearray(rest)
        return out

    def _emit(self, line: bytes, out: list[bytes | Overlong]) -> None:
        if self._discarding:
            self._discarding = False  # the terminator ends the overlong line; drop its tail
            return
        if self.terminator == "CR" and line[:1] == b"\n":
            line = line[1:]
        if not line:
            return
        if len(line) > self.max_line:
            out.append(Overlong(line[: self.max_line], f"line longer than {self.max_line} bytes"))
            return
        out.append(line)

    @property
    def pending(self) -> int:
        """Bytes held waiting for a terminator."""
        return len(self._buf)
