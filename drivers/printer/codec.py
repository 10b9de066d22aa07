"""ZPL II host status (``~HS``) parsing and print-job checks. Pure, no I/O.

``~HS`` is answered with three strings, each framed ``STX ... ETX CR LF``:

1. ``aaa,b,c,dddd,eee,f,g,h,iii,j,k,l`` - comms settings, **paper out**, **pause**,
   label length, formats in buffer, buffer full, diagnostic mode, partial format,
   unused, corrupt RAM, under temperature, over temperature.
2. ``mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www`` - function settings, unused, **head up**,
   **ribbon out**, thermal transfer, print mode, width mode, label waiting, labels
   remaining, format while printing, graphics stored.
3. ``xxxx,y`` - password, static RAM installed.

Only the flags an operator can act on are surfaced as faults.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from drivers.frame import BadFrame

HOST_STATUS = b"~HS"
STX = 0x02
ETX = 0x03
MAX_STRING = 128


@dataclass(frozen=True, slots=True)
class HostStatus:
    paper_out: bool
    paused: bool
    head_up: bool
    ribbon_out: bool
    buffer_full: bool = False
    under_temperature: bool = False
    over_temperature: bool = False
    corrupt_ram: bool = False
    formats_in_buffer: int = 0
    labels_remaining: int = 0

    def faults(self) -> list[str]:
        """What stops printing, worded for the person at the pack station."""
        found = [
            ("paper out", self.paper_out),
            ("head open", self.head_up),
            ("ribbon out", self.ribbon_out),
            ("paused", self.paused),
            ("receive buffer full", self.buffer_full),
            ("print head too cold", self.under_temperature),
            ("print head too hot", self.over_temperature),
            ("corrupt RAM", self.corrupt_ram),
        ]
        return [text for text, on in found if on]

    @property
    def detail(self) -> str | None:
        faults = self.faults()
        return ", ".join(faults) if faults else None


def _flag(fields: list[str], index: int, what: str, raw: bytes) -> bool:
    if index >= len(fields):
        return False  # older firmware sends fewer fields: absent means not set
    value = fields[index].strip()
    if value not in ("0", "1"):
        raise BadFrame(f"~HS {what} flag is {value!r}, expected 0 or 1", raw)
    return value == "1"


def _number(fields: list[str], index: int) -> int:
    if index >= len(fields):
        return 0
    value = fields[index].strip()
    return int(value) if value.isdigit() else 0


def decode_host_status(strings: tuple[bytes, bytes, bytes]) -> HostStatus:
    """Decode the three ``~HS`` strings (contents between STX and ETX)."""
    raw = b"\x02" + b"\x03\r\n\x02".join(strings) + b"\x03\r\n"
    try:
        one, two, _three = (s.decode("ascii").split(",") for s in strings)
    except UnicodeDecodeError:
        raise BadFrame("~HS reply is not ASCII", raw) from None
    if len(one) < 3 or len(two) < 4:
        raise BadFrame(
            f"~HS strings have {len(one)} and {len(two)} fields, need at least 3 and 4", raw
        )
    return HostStatus(
        paper_out=_flag(one, 1, "paper out", raw),
        paused=_flag(one, 2, "pause", raw),
        formats_in_buffer=_number(one, 4),
        buffer_full=_flag(one, 5, "buffer full", raw),
        corrupt_ram=_flag(one, 9, "corrupt RAM", raw),
        under_temperature=_flag(one, 10, "under temperature", raw),
        over_temperature=_flag(one, 11, "over temperature", raw),
        head_up=_flag(two, 2, "head up", raw),
        ribbon_out=_flag(two, 3, "ribbon out", raw),
        labels_remaining=_number(two, 8),
    )


def encode_host_status(status: HostStatus) -> bytes:
    """The printer's side of ``~HS`` (for tests and tools)."""

    def b(flag: bool) -> str:
        return "1" if flag else "0"

    one = (
        f"030,{b(status.paper_out)},{b(status.paused)},1245,{status.formats_in_buffer:03d},"
        f"{b(status.buffer_full)},0,0,000,{b(status.corrupt_ram)},"
        f"{b(status.under_temperature)},{b(status.over_temperature)}"
    )
    two = (
        f"001,0,{b(status.head_up)},{b(status.ribbon_out)},1,2,6,0,"
        f"{status.labels_remaining:08d},1,000"
    )
    three = "1234,0"
    return b"".join(b"\x02" + s.encode() + b"\x03\r\n" for s in (one, two, three))


class HostStatusReader:
    """Collect ``STX ... ETX`` strings from the printer and group them by three.

    CR, LF and spaces between strings are ignored; anything else outside a string, a
    string without ETX, or a string that cannot be the one expected next is reported
    as a bad frame and the reader re-synchronises on the next string 1.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._strings: list[bytes] = []

    def reset(self) -> None:
        self._buf.clear()
        self._strings.clear()

    def feed(self, data: bytes) -> list[HostStatus | BadFrame]:
        self._buf += data
        out: list[HostStatus | BadFrame] = []
        while self._buf:
            start = self._buf.find(STX)
            junk = bytes(self._buf if start < 0 else self._buf[:start])
            if junk.strip(b"\r\n \x00"):
                out.append(BadFrame("bytes outside a ~HS status string", junk[:MAX_STRING]))
            if start < 0:
                self._buf.clear()
                break
            del self._buf[:start]
            end = self._buf.find(ETX)
            restart = self._buf.find(STX, 1)
            if restart > 0 and (end < 0 or restart < end):
                out.append(BadFrame("~HS string without ETX", bytes(self._buf[:restart])))
                del self._buf[:restart]
                self._strings.clear()
                continue
            if end < 0:
                if len(self._buf) > MAX_STRING:
                    out.append(BadFrame("~HS string too long", bytes(self._buf[:MAX_STRING])))
                    del self._buf[:1]
                    self._strings.clear()
                    continue
                break
            body = bytes(self._buf[1:end])
            del self._buf[: end + 1]
            self._take(body, out)
        return out

    def _take(self, body: bytes, out: list[HostStatus | BadFrame]) -> None:
        fields = body.count(b",") + 1
        position = len(self._strings)
        # String 3 has two fields, strings 1 and 2 about a dozen: a short string where a
        # long one is due (or the reverse) means one got lost on the way.
        if (position < 2 and fields <= 2) or (position == 2 and fields > 2):
            out.append(BadFrame(f"~HS string {position + 1} out of order", body))
            self._strings.clear()
            if fields > 2:
                self._strings.append(body)
            return
        self._strings.append(body)
        if len(self._strings) == 3:
            one, two, three = self._strings
            self._strings.clear()
            try:
                out.append(decode_host_status((one, two, three)))
            except BadFrame as exc:
                out.append(exc)


def check_zpl(zpl: str) -> str | None:
    """Why ``zpl`` is not a sequence of complete formats, or None when it is."""
    upper = zpl.upper()
    starts, ends = upper.count("^XA"), upper.count("^XZ")
    if starts == 0:
        return "ZPL has no ^XA (start of format)"
    if starts != ends:
        return f"ZPL has {starts} ^XA but {ends} ^XZ: a format is not closed"
    if upper.find("^XA") > upper.find("^XZ"):
        return "ZPL has ^XZ before ^XA"
    return None


def pdf_document(b64: str) -> tuple[bytes | None, str | None]:
    """The PDF bytes of a base64 print job, or why they are not a PDF document."""
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return None, "PDF job is not valid base64"
    if not data.startswith(b"%PDF-"):
        return None, "PDF job does not start with %PDF-"
    if b"%%EOF" not in data[-1024:]:
        return None, "PDF job has no %%EOF: it was cut short"
    return data, None
