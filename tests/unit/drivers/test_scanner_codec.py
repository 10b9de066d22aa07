"""Scanner lines -> scans, with the real byte strings scanners send."""

from __future__ import annotations

import pytest

from drivers.frame import BadFrame
from drivers.scanner.codec import Scan, decode_scan

GS = b"\x1d"


@pytest.mark.parametrize(
    ("frame", "scan"),
    [
        (b"]C100106141411234567897", Scan("00106141411234567897", "]C1")),
        (b"]E04006381333931", Scan("4006381333931", "]E0")),
        (b"]E440063813", Scan("40063813", "]E4")),
        (b"]Q1https://example.com/t/42", Scan("https://example.com/t/42", "]Q1")),
        (
            b"]d20109501101530003" + GS + b"10ABC123" + GS + b"17250101",
            Scan("0109501101530003\x1d10ABC123\x1d17250101", "]d2"),
        ),
        (b"T000123", Scan("T000123", None)),  # a tote label without AIM identifier
        (b"A-01-02-1", Scan("A-01-02-1", None)),
        (b"]C0HELLO WORLD", Scan("HELLO WORLD", "]C0")),
        # FNC1 sent in first position although the identifier implies it
        (b"]C1" + GS + b"00106141411234567897", Scan("00106141411234567897", "]C1")),
        # no identifier: the leading FNC1 is the only sign of GS1 data, so it stays
        (GS + b"00106141411234567897", Scan("\x1d00106141411234567897", None)),
        # what a code means (and whether its check digits are right) is not the
        # codec's business: the kernel's GS1 module reads it where it is used
        (b"]C100106141411234567890", Scan("00106141411234567890", "]C1")),
        ("]Q1Grüße".encode(), Scan("Grüße", "]Q1")),
        # a ']' that is not an AIM identifier is data
        (b"]]ABC", Scan("]]ABC", None)),
    ],
)
def test_decodes(frame: bytes, scan: Scan) -> None:
    assert decode_scan(frame) == scan


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"]C1", "no data after the symbology identifier"),
        (b"]C1" + GS, "no data after the symbology identifier"),
        (b"", "empty"),
        (b"   ", "blank"),
        (GS, "blank"),
        (b"AB\x07CD", "control byte 0x07 at position 2"),
        (b"AB\x00", "control byte 0x00"),
        (b"\xff\xfeAB", "not UTF-8"),
        (b"]E0\x1b[2J", "control byte 0x1b"),
        (b"A" * 5000, "longer than"),
    ],
)
def test_refuses(frame: bytes, reason: str) -> None:
    with pytest.raises(BadFrame, match=reason) as info:
        decode_scan(frame)
    assert info.value.raw == frame
