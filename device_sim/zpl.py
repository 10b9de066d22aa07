"""ZPL II read the way a Zebra printer reads it, for the simulated label printer.

:class:`ZplStream` splits an incoming byte stream into commands (``^XX params`` and
``~XX``) even when a command straddles two TCP segments. :class:`ZplInterpreter` groups
the commands between ``^XA`` and ``^XZ`` into a :class:`Label` and hands tilde control
commands (``~HS``, ``~PS`` ...) back at once, as the printer executes them immediately.

A label keeps its fields (``^FO`` origin, ``^FD`` data, the bar code command in force)
so tests can read what was printed: :attr:`Label.texts`, :attr:`Label.barcodes` and
:attr:`Label.sscc` (the AI 00 of a GS1-128 bar code). Code 128 field data is decoded as
the printer encodes it: invocation codes (``>;`` start C, ``>8`` FNC1, ``><`` a literal
``>`` ...) in modes N and A, and ``(AI)data`` with parentheses stripped in mode D
(GS1/UCC: FNC1 first, separators inserted). ``^FH`` hex escapes (``_1D``) are decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from device_sim import gs1

# Commands that take no parameters: complete as soon as their name has arrived.
_NO_PARAMS = {"XA", "XZ", "FS", "HS", "HI", "PS", "PP", "JA", "HM", "HD"}
_BARCODES = {
    "BC": "code128",
    "BE": "ean13",
    "B8": "ean8",
    "BU": "upca",
    "B3": "code39",
    "B2": "itf",
    "BQ": "qr",
    "BX": "datamatrix",
    "B7": "pdf417",
}


@dataclass(frozen=True)
class Command:
    prefix: str
    name: str
    params: str = ""

    def args(self) -> list[str]:
        return self.params.split(",") if self.params else []

    def __str__(self) -> str:
        return f"{self.prefix}{self.name}{self.params}"


@dataclass(frozen=True)
class Barcode:
    symbology: str
    data: str
    gs1: bool
    raw: str
    params: tuple[str, ...] = ()

    @property
    def elements(self) -> list[tuple[str, str]]:
        """``(ai, data)`` pairs of a GS1 bar code; empty when it is not one."""
        if not self.gs1:
            return []
        try:
            return gs1.parse_element_string(self.data)
        except ValueError:
            return []

    def ai(self, ai: str) -> str | None:
        for key, value in self.elements:
            if key == ai:
                return value
        return None


@dataclass(frozen=True)
class Field:
    x: int
    y: int
    data: str
    barcode: Barcode | None = None


@dataclass(frozen=True)
class Label:
    raw: str
    fields: tuple[Field, ...]
    quantity: int = 1

    @property
    def texts(self) -> list[str]:
        return [f.data for f in self.fields if f.barcode is None]

    @property
    def barcodes(self) -> list[Barcode]:
        return [f.barcode for f in self.fields if f.barcode is not None]

    @property
    def sscc(self) -> str | None:
        """The SSCC-18 printed in a GS1 bar code (AI 00), if any."""
        for barcode in self.barcodes:
            if (value := barcode.ai("00")) is not None:
                return value
        return None


class ZplStream:
    """Incremental command splitter: feed bytes, receive complete commands."""

    def __init__(self) -> None:
        self._buf = ""

    def feed(self, data: bytes) -> list[Command]:
        # Latin-1 maps every byte to one character, so no input can fail to decode.
        self._buf += data.decode("latin-1")
        commands: list[Command] = []
        while True:
            command = self._next()
            if command is None:
                return commands
            commands.append(command)

    def _next(self) -> Command | None:
        buf = self._buf
        start = min((i for i in (buf.find("^"), buf.find("~")) if i >= 0), default=-1)
        if start < 0:
            self._buf = ""
            return None
        buf = self._buf = buf[start:]
        if len(buf) < 2:
            return None
        prefix = buf[0]
        if prefix == "^" and buf[1].upper() == "A":
            # ^A is the font command: the next character is its font name, a parameter.
            name, body = "A", 2
        else:
            if len(buf) < 3:
                return None
            name, body = buf[1:3].upper(), 3
        if name in _NO_PARAMS:
            self._buf = buf[body:]
            return Command(prefix, name)
        # Field data runs to the next caret (normally ^FS); a tilde inside it is data.
        stops = ("^",) if name == "FD" else ("^", "~")
        end = min((i for i in (buf.find(s, body) for s in stops) if i >= 0), default=-1)
        if end < 0:
            return None
        self._buf = buf[end:]
        return Command(prefix, name, buf[body:end])


def decode_code128(data: str, mode: str = "N") -> tuple[str, bool]:
    """Decode ^BC field data to what the bar code carries; returns ``(data, is_gs1)``."""
    if mode == "D":
        pairs = re.findall(r"\((\d{2,4})\)([^(]*)", data)
        if not pairs:
            return data, True
        try:
            return gs1.element_string(*pairs), True
        except ValueError:
            return "".join(ai + value for ai, value in pairs), True
    if mode == "U":
        return data, True
    out: list[str] = []
    is_gs1 = False
    subset = "B"
    i = 0
    while i < len(data):
        char = data[i]
        if char == ">" and i + 1 < len(data):
            code = data[i + 1]
            i += 2
            if code == "<":
                out.append(">")
            elif code == "0":
                out.append("~")
            elif code == "8":
                if not out and not is_gs1:
                    is_gs1 = True
                else:
                    out.append(gs1.GS)
            elif code in "5;":
                subset = "C"
            elif code in "6:":
                subset = "B"
            elif code in "79":
                subset = "A"
            continue
        if subset == "C":
            pair = data[i : i + 2]
            if len(pair) == 2 and pair.isdigit():
                out.append(pair)
                i += 2
            else:
                # Zebra ignores a non-digit in subset C (and an unpaired last digit).
                i += 1
            continue
        out.append(char)
        i += 1
    return "".join(out), is_gs1


def _unhex(data: str, indicator: str) -> str:
    pattern = re.escape(indicator) + r"([0-9A-Fa-f]{2})"
    return re.sub(pattern, lambda m: chr(int(m.group(1), 16)), data)


def _barcode(command: Command, raw: str) -> Barcode:
    args = tuple(command.args())
    symbology = _BARCODES.get(command.name, command.name.lower())
    if symbology == "code128":
        mode = args[5].strip().upper() if len(args) > 5 and args[5].strip() else "N"
        data, is_gs1 = decode_code128(raw, mode)
        return Barcode(symbology, data, is_gs1, raw, args)
    if symbology == "ean13":
        digits = raw.strip()
        data = gs1.ean13(digits) if len(digits) == 12 and digits.isdigit() else digits
        return Barcode(symbology, data, False, raw, args)
    if symbology == "qr":
        # QR field data starts with error correction and input mode, then a comma.
        data = raw.split(",", 1)[1] if re.match(r"^[HQML][AM]?,", raw) else raw
        return Barcode(symbology, data, False, raw, args)
    return Barcode(symbology, raw, False, raw, args)


def build_label(commands: list[Command]) -> Label:
    """Interpret the commands of one format (``^XA`` ... ``^XZ`` inclusive)."""
    x = y = 0
    barcode_cmd: Command | None = None
    hex_indicator: str | None = None
    data: str | None = None
    quantity = 1
    fields: list[Field] = []
    for command in commands:
        name = command.name
        if name in ("FO", "FT"):
            coords = [int(a) if a.strip().lstrip("-").isdigit() else 0 for a in command.args()[:2]]
            x, y = [*coords, 0, 0][:2]
        elif name == "FH":
            hex_indicator = command.params[:1] or "_"
        elif name in _BARCODES or (name.startswith("B") and name not in ("BY",) and len(name) == 2):
            barcode_cmd = command
        elif name == "FD":
            data = command.params
            if hex_indicator is not None:
                data = _unhex(data, hex_indicator)
        elif name == "FS":
            if data is not None:
                barcode = _barcode(barcode_cmd, data) if barcode_cmd is not None else None
                fields.append(Field(x, y, data, barcode))
            barcode_cmd, hex_indicator, data = None, None, None
        elif name == "PQ":
            first = command.args()[0].strip() if command.args() else ""
            quantity = int(first) if first.isdigit() and int(first) > 0 else 1
    return Label("".join(str(c) for c in commands), tuple(fields), quantity)


@dataclass(frozen=True)
class Immediate:
    """A tilde command, with whether a format was half received when it arrived."""

    command: Command
    partial_format: bool

    @property
    def name(self) -> str:
        return self.command.name


@dataclass(frozen=True)
class PdfDocument:
    """A PDF job (a printer with PDF Direct prints it as it came)."""

    data: bytes


class ZplInterpreter:
    """Feed raw bytes; get back finished labels, PDF documents and immediate (tilde)
    commands. A PDF starts with ``%PDF-`` between formats and ends at ``%%EOF``."""

    def __init__(self) -> None:
        self._stream = ZplStream()
        self._format: list[Command] | None = None
        self._pdf: bytearray | None = None

    @property
    def in_format(self) -> bool:
        """A format has started (``^XA``) but not ended: Zebra's partial-format flag."""
        return self._format is not None

    def feed(self, data: bytes) -> list[Label | Immediate | PdfDocument]:
        out: list[Label | Immediate | PdfDocument] = []
        while data:
            if self._pdf is not None:
                self._pdf += data
                end = self._pdf.find(b"%%EOF")
                if end < 0:
                    return out
                document, data = bytes(self._pdf[: end + 5]), bytes(self._pdf[end + 5 :])
                out.append(PdfDocument(document))
                self._pdf = None
                data = data.lstrip(b"\r\n")
                continue
            start = data.find(b"%PDF-") if self._format is None else -1
            if start >= 0:
                out.extend(self._zpl(data[:start]))
                self._pdf, data = bytearray(), data[start:]
                continue
            out.extend(self._zpl(data))
            break
        return out

    def _zpl(self, data: bytes) -> list[Label | Immediate | PdfDocument]:
        out: list[Label | Immediate | PdfDocument] = []
        for command in self._stream.feed(data):
            if command.prefix == "~":
                out.append(Immediate(command, self._format is not None))
            elif command.name == "XA":
                self._format = [command]
            elif self._format is not None:
                self._format.append(command)
                if command.name == "XZ":
                    out.append(build_label(self._format))
                    self._format = None
        return out
