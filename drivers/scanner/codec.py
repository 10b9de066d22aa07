"""Scanner frames -> scans. Pure: bytes in, :class:`Scan` or :class:`BadFrame` out.

A frame is one line without its terminator (see :class:`drivers.frame.LineFramer`):
an optional AIM symbology identifier ``]cm`` followed by the data. GS1 data carries
FNC1 separators as ASCII GS (0x1D); a leading FNC1 is implied by the identifier. We
accept what a scanner may plausibly send and refuse only what cannot be a code:
invalid UTF-8, control bytes other than GS, an empty code, or an SSCC (AI 00) whose
check digit is wrong - a misread that must never reach the order flow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from biip import ParseConfig, ParseError
from biip.gs1_messages import GS1Message

from drivers.frame import MAX_LINE, BadFrame
from drivers.gs1 import GS, sscc_error

_AIM = re.compile(r"\][A-Za-z][0-9A-Za-z]")
# AIM identifiers whose data is a GS1 element string (GS1-128, GS1 DataBar, GS1
# DataMatrix, GS1 QR, GS1 DotCode).
GS1_SYMBOLOGIES = frozenset({"]C1", "]e0", "]e1", "]e2", "]d2", "]Q3", "]J1"})
# Dates in element strings are not ours to police: a pack station scans what it gets.
_GS1_CONFIG = ParseConfig(gs1_element_strings_verify_date=False, separator_chars=(GS,))
_FORBIDDEN = re.compile(r"[\x00-\x1c\x1e\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Scan:
    code: str
    symbology: str | None
    gs1: bool = False
    sscc: str | None = None


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
    gs1 = symbology in GS1_SYMBOLOGIES or (symbology is None and text.startswith(GS))
    if gs1:
        # FNC1 in first position is implied by the identifier; some scanners still send it.
        text = text.strip(GS)
    if not text.strip():
        raise BadFrame("no data after the symbology identifier" if symbology else "blank", frame)
    sscc = _check_gs1(text, frame) if gs1 else None
    return Scan(code=text, symbology=symbology, gs1=gs1, sscc=sscc)


def _check_gs1(text: str, frame: bytes) -> str | None:
    """Validate the SSCC of a GS1 element string, if it has one; return it."""
    candidates: list[str] = []
    try:
        message = GS1Message.parse(text, config=_GS1_CONFIG)
        candidates = [e.value for e in message.element_strings if e.ai.ai == "00"]
    except (ParseError, ValueError):
        # Unknown or malformed element strings are let through (the controller decides
        # what a code means); only an SSCC in first position is still checked.
        if text.startswith("00"):
            candidates = [text[2:20]]
    for sscc in candidates:
        error = sscc_error(sscc)
        if error:
            raise BadFrame(error, frame)
    return candidates[0] if candidates else None
