"""Scanner frames -> scans. Pure: bytes in, :class:`Scan` or :class:`BadFrame` out.

A frame is one line without its terminator (see :class:`drivers.frame.LineFramer`):
an optional AIM symbology identifier ``]cm`` followed by the data. GS1 data carries
FNC1 separators as ASCII GS (0x1D). A leading FNC1 is implied by a GS1 identifier and
dropped when a scanner sends it anyway; without an identifier it is kept, since it is
then the only sign that the code is GS1 data.

A frame is refused only when it cannot be a code: invalid UTF-8, control bytes other
than GS, nothing after the identifier. What a code means - GS1 or not, and whether its
check digits and dates are right - is read once, by the kernel's GS1 module
(:mod:`wcs.domain.gs1`), where the code is used: a wrong GS1 code is refused there with
its reason and the picker sees it on the panel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from drivers.frame import MAX_LINE, BadFrame
from wcs.domain.gs1 import GS, GS1_SYMBOLOGIES

_AIM = re.compile(r"\][A-Za-z][0-9A-Za-z]")
_FORBIDDEN = re.compile(r"[\x00-\x1c\x1e\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Scan:
    code: str
    symbology: str | None


def decode_scan(frame: bytes) -> Scan:
    """Decode one scanner line (terminator already removed)."""
    if not frame:
        raise BadFrame("empty line", frame)
    if len(frame) > MAX_LINE:
        raise BadFrame(f"line longer than {MAX_LINE} bytes", frame)
    try:
        text = frame.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = f"byte 0x{frame[exc.start]:02x} at {exc.start}"
        raise BadFrame(f"not UTF-8 text ({where})", frame) from None
    symbology: str | None = None
    if _AIM.match(text):
        symbology, text = text[:3], text[3:]
    bad = _FORBIDDEN.search(text)
    if bad:
        raise BadFrame(
            f"control byte 0x{ord(bad.group()):02x} at position {bad.start()} in the code", frame
        )
    if symbology in GS1_SYMBOLOGIES:
        # FNC1 in first position is implied by the identifier; some scanners still send it.
        text = text.strip(GS)
    if not text.strip(GS + " "):
        raise BadFrame("no data after the symbology identifier" if symbology else "blank", frame)
    return Scan(code=text, symbology=symbology)
