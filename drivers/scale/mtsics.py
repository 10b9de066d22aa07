"""METTLER TOLEDO MT-SICS subset: command encoding and reply decoding. Pure, no I/O.

Commands and replies are ASCII lines ending CR LF. Replies are split on whitespace,
never sliced by column: the weight is right-aligned with a varying number of spaces.

    S S     100.00 g    stable weight          S D  99.87 g   dynamic (SI only)
    S I                 cannot execute now     S + / S -      overload / underload
    Z A / Z I / Z + / Z -                      zero done / not now / out of range
    T S  12.30 g        tare done              T I / T + / T -
    I4 A "B123456789"   identification (reply to @, the reset)
    ES / ET / EL        syntax / transmission / logical error
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from drivers.frame import BadFrame
from drivers.scale.units import to_grams

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
COMMANDS = frozenset({"S", "SI", "SIR", "Z", "ZI", "T", "TA", "TAC", "TI", "@", "I4"})
# The first token of the reply to each command (MT-SICS echoes the command, except
# that the immediate variants answer like their plain form and @ answers like I4).
REPLY_TO: dict[str, str] = {
    "S": "S",
    "SI": "S",
    "SIR": "S",
    "Z": "Z",
    "ZI": "ZI",
    "T": "T",
    "TA": "TA",
    "TAC": "TAC",
    "TI": "TI",
    "@": "I4",
    "I4": "I4",
}
_STATUS_MEANING = {
    "I": "cannot execute now (busy or not stable)",
    "+": "upper limit exceeded (overload)",
    "-": "lower limit exceeded (underload)",
    "L": "logical error (parameter not allowed)",
}
ERROR_MEANING = {
    "ES": "syntax error (command not understood)",
    "ET": "transmission error (parity or framing)",
    "EL": "logical error (command cannot be executed)",
}


@dataclass(frozen=True, slots=True)
class Weight:
    command: str  # "S" (also the reply to SI and SIR)
    stable: bool
    value: float
    unit: str
    grams: float


@dataclass(frozen=True, slots=True)
class Tare:
    value: float
    unit: str
    grams: float


@dataclass(frozen=True, slots=True)
class Status:
    """A reply without a value: ``S I``, ``Z A``, ``T +`` ..."""

    command: str
    status: str

    @property
    def meaning(self) -> str:
        if self.status == "A":
            return "done"
        return _STATUS_MEANING.get(self.status, f"status {self.status}")


@dataclass(frozen=True, slots=True)
class Identification:
    command: str
    text: str


@dataclass(frozen=True, slots=True)
class Error:
    code: Literal["ES", "ET", "EL"]

    @property
    def meaning(self) -> str:
        return ERROR_MEANING[self.code]


Reply = Weight | Tare | Status | Identification | Error


def encode_command(command: str) -> bytes:
    if command not in COMMANDS:
        raise ValueError(f"MT-SICS command {command!r} is not supported")
    return command.encode("ascii") + b"\r\n"


def reply_token(reply: Reply) -> str | None:
    """The command a reply answers (None for the generic errors)."""
    match reply:
        case Weight(command=command) | Status(command=command) | Identification(command=command):
            return command
        case Tare():
            return "T"
        case Error():
            return None
    return None  # pragma: no cover - exhaustive above


def decode_reply(line: bytes) -> Reply:
    """Decode one reply line (terminator removed or not)."""
    try:
        text = line.decode("ascii").strip()
    except UnicodeDecodeError:
        raise BadFrame("MT-SICS reply is not ASCII", line) from None
    tokens = text.split()
    if not tokens:
        raise BadFrame("empty MT-SICS reply", line)
    head = tokens[0]
    if head in ("ES", "ET", "EL") and len(tokens) == 1:
        return Error(head)  # type: ignore[arg-type]
    if len(tokens) < 2:
        raise BadFrame(f"unknown MT-SICS reply {text!r}", line)
    status = tokens[1]
    if head == "S" and status in ("S", "D"):
        value, unit = _value_unit(tokens, line)
        return Weight("S", status == "S", value, unit, _grams(value, unit, line))
    if head in ("T", "TI") and status == "S":
        value, unit = _value_unit(tokens, line)
        return Tare(value, unit, _grams(value, unit, line))
    if head in ("I4", "I2", "I3") and status == "A":
        rest = text.split(None, 2)[2] if len(tokens) > 2 else ""
        return Identification(head, rest.strip('"'))
    if len(tokens) == 2:
        if head in ("S", "Z", "T", "TI", "TA", "TAC", "@") and status in ("A", "I", "+", "-", "L"):
            return Status(head, status)
        if head == "ZI" and status in ("D", "S", "I", "+", "-"):
            return Status(head, status)
    raise BadFrame(f"unknown MT-SICS reply {text!r}", line)


def _value_unit(tokens: list[str], line: bytes) -> tuple[float, str]:
    if len(tokens) != 4:
        raise BadFrame(f"weight reply needs a value and a unit: {' '.join(tokens)!r}", line)
    if not _NUMBER.fullmatch(tokens[2]):
        raise BadFrame(f"weight {tokens[2]!r} is not a number", line)
    return float(tokens[2]), tokens[3]


def _grams(value: float, unit: str, line: bytes) -> float:
    try:
        return to_grams(value, unit)
    except ValueError as exc:
        raise BadFrame(str(exc), line) from None
