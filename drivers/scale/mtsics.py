"""METTLER TOLEDO MT-SICS: command encoding and reply decoding. Pure, no I/O.

Commands and replies are ASCII lines ending CR LF. Replies are split on whitespace,
never sliced by column: the weight is right-aligned with a varying number of spaces.

    S S     100.00 g    stable weight          S D  99.87 g   dynamic (SI, SIR)
    S I                 cannot execute now     S + / S -      overload / underload
    Z A / Z I / Z + / Z -                      zero done / not now / out of range
    ZI S / ZI D         zero set at a stable / dynamic weight
    T S  12.30 g        tare done              T I / T + / T -
    TI S / TI D  12.30 g                       tare taken at once, stable / dynamic
    TA A  12.30 g       tare memory (reply to TA, and to the preset TA 12.30 g)
    TAC A               tare memory cleared
    I4 A "B123456789"   identification (reply to @, the reset)
    ES / ET / EL        syntax / transmission / logical error

Scales in the field vary within this grammar: some echo the command they answer as
the reply's first token (``SI S 12.3 g``, ``SIR D 12.1 g``, ``ZI A``, ``TI S ...``,
``@ A "..."``), some report in kg, lb or oz. Every reply that fits the grammar - a
command token, a one-character status, data - is decoded; one that fits it but is not
a known reply becomes :class:`Other` so that the driver can refuse a command with a
plain reason while the scale stays online. Only bytes that cannot be an MT-SICS reply
at all are a :class:`~drivers.frame.BadFrame` (and a dead letter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from drivers.frame import BadFrame
from drivers.scale.units import GRAMS_PER_UNIT, to_grams

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_TOKEN = re.compile(r"@|[A-Z][A-Z0-9]{0,7}")
_STATUS = re.compile(r"[A-Z+-]")
_ERRORS = ("ES", "ET", "EL")

# Commands the driver sends and, for each, the first tokens of the replies that can
# answer it: the manual's and the echoed variants seen in the field.
ANSWERED_BY: dict[str, frozenset[str]] = {
    "S": frozenset({"S"}),
    "SI": frozenset({"S", "SI"}),
    "SIR": frozenset({"S", "SI", "SIR"}),
    "Z": frozenset({"Z"}),
    "ZI": frozenset({"ZI", "Z"}),
    "T": frozenset({"T"}),
    "TI": frozenset({"TI", "T"}),
    "TA": frozenset({"TA"}),
    "TAC": frozenset({"TAC"}),
    "@": frozenset({"I4", "@"}),
    "I4": frozenset({"I4"}),
}
COMMANDS = frozenset(ANSWERED_BY)
_KNOWN_TOKENS = frozenset().union(*ANSWERED_BY.values())
# First tokens of weight replies (the reply to S, SI and SIR).
WEIGHT_TOKENS = frozenset({"S", "SI", "SIR"})

_STATUS_MEANING = {
    "I": "cannot execute now (busy or no stable weight)",
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
    """A weight reply: ``S S``/``S D`` and the echoed ``SI S``/``SIR D`` forms."""

    command: str
    stable: bool
    value: float
    unit: str
    grams: float | None  # None when the unit cannot be converted

    def describe(self) -> str:
        return f"{self.value:g} {self.unit}{'' if self.stable else ' (moving)'}"


@dataclass(frozen=True, slots=True)
class Tare:
    """A tare value: ``T S``, ``TI S``/``TI D``, ``TA A``."""

    command: str
    stable: bool
    value: float
    unit: str
    grams: float | None


@dataclass(frozen=True, slots=True)
class Status:
    """A reply without a value: ``S I``, ``Z A``, ``ZI D``, ``T +`` ..."""

    command: str
    status: str

    @property
    def done(self) -> bool:
        # Z A; ZI S / ZI D (zero set at a stable / moving weight) and ZI A in the field.
        return self.status == "A" or (self.command == "ZI" and self.status in ("S", "D"))

    @property
    def meaning(self) -> str:
        if self.done:
            return "done"
        if self.command in ("Z", "ZI") and self.status in ("+", "-"):
            side = "above" if self.status == "+" else "below"
            return f"the load is {side} the zero-setting range"
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


@dataclass(frozen=True, slots=True)
class Other:
    """A well-formed reply this driver has no meaning for (kept as text)."""

    command: str
    status: str
    text: str


Reply = Weight | Tare | Status | Identification | Error | Other


def encode_command(command: str, *args: str) -> bytes:
    if command not in COMMANDS:
        raise ValueError(f"MT-SICS command {command!r} is not supported")
    for arg in args:
        if not arg or any(not 0x21 <= ord(c) <= 0x7E for c in arg):
            raise ValueError(f"MT-SICS parameter {arg!r} is not one printable ASCII word")
    return " ".join((command, *args)).encode("ascii") + b"\r\n"


def preset_tare_args(grams: float, unit: str) -> tuple[str, str]:
    """The parameters of ``TA`` for a preset tare of ``grams``, in the scale's unit."""
    factor = GRAMS_PER_UNIT.get(unit)
    if factor is None:
        raise ValueError(f"cannot express a preset tare in unit {unit!r}")
    value = grams / factor
    # Six significant decimals at most; a scale rounds to its own readability.
    text = f"{value:.6f}".rstrip("0").rstrip(".") or "0"
    return text, unit


def reply_token(reply: Reply) -> str | None:
    """The first token of a reply (None for the generic errors, which answer anything)."""
    if isinstance(reply, Error):
        return None
    return reply.command


def answers(command: str, reply: Reply) -> bool:
    """Whether ``reply`` can be the answer to ``command``.

    The generic errors answer any command. A reply starting with the token of another
    known command is not this one's answer (a late reply to an earlier request, a line
    of a stream); a token no command here uses is taken as this scale's own name for
    the answer, since MT-SICS answers every command with exactly one line."""
    token = reply_token(reply)
    if token is None or token in ANSWERED_BY[command]:
        return True
    return token not in _KNOWN_TOKENS


def decode_reply(line: bytes) -> Reply:
    """Decode one reply line (terminator removed or not)."""
    try:
        text = line.decode("ascii").strip()
    except UnicodeDecodeError:
        raise BadFrame("MT-SICS reply is not ASCII", line) from None
    if any(not (0x20 <= ord(c) <= 0x7E or c == "\t") for c in text):
        raise BadFrame("MT-SICS reply holds control characters", line)
    tokens = text.split()
    if not tokens:
        raise BadFrame("empty MT-SICS reply", line)
    head = tokens[0]
    if head in _ERRORS and len(tokens) == 1:
        return Error(head)  # type: ignore[arg-type]
    if len(tokens) < 2 or not _TOKEN.fullmatch(head) or not _STATUS.fullmatch(tokens[1]):
        raise BadFrame(f"not an MT-SICS reply: {text[:40]!r}", line)
    status = tokens[1]
    if head in WEIGHT_TOKENS and status in ("S", "D") and tokens[2:3] != ["Error"]:
        value, unit = _value_unit(tokens, line)
        return Weight(head, status == "S", value, unit, _grams(value, unit))
    tare = (head in ("T", "TI") and status in ("S", "D")) or (head == "TA" and status == "A")
    if tare and len(tokens) == 4:
        value, unit = _value_unit(tokens, line)
        return Tare(head, status != "D", value, unit, _grams(value, unit))
    if head in ("I4", "@") and status == "A":
        rest = text.split(None, 2)[2] if len(tokens) > 2 else ""
        return Identification(head, rest.strip().strip('"'))
    if len(tokens) == 2:
        return Status(head, status)
    return Other(head, status, text)


def _value_unit(tokens: list[str], line: bytes) -> tuple[float, str]:
    if len(tokens) != 4:
        raise BadFrame(f"weight reply needs a value and a unit: {' '.join(tokens)!r}", line)
    if not _NUMBER.fullmatch(tokens[2]):
        raise BadFrame(f"weight {tokens[2]!r} is not a number", line)
    return float(tokens[2]), tokens[3]


def _grams(value: float, unit: str) -> float | None:
    try:
        return to_grams(value, unit)
    except ValueError:
        return None
