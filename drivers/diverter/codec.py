"""Diverter PLCs through their register map: pure helpers, no I/O.

The map (:class:`wcs.register_maps.DiverterMap`) says where the lane request, the
sequence ids, the arrival counter, the status and the tote's barcode live, and in
which byte order the barcode's characters are packed.
"""

from __future__ import annotations

from collections.abc import Sequence

from drivers.frame import BadFrame
from wcs.register_maps import DiverterMap, WordOrder

NOREAD = "NOREAD"


def decode_barcode(registers: Sequence[int], byte_order: WordOrder = "high_first") -> str:
    """The tote barcode from its registers (2 ASCII characters each, NUL-padded); an
    empty read is ``NOREAD``."""
    raw = b"".join(
        int(r & 0xFFFF).to_bytes(2, "big" if byte_order == "high_first" else "little")
        for r in registers
    )
    text = raw.split(b"\x00", 1)[0]
    if not text.strip():
        return NOREAD
    if any(b < 0x20 or b > 0x7E for b in text):
        raise BadFrame("tote barcode registers hold non-printable bytes", raw)
    return text.decode("ascii").strip()


def next_seq(seq: int, limit: int = 65535) -> int:
    """Sequence ids run 1..limit; 0 is skipped so a fresh PLC (0) always sees a change."""
    return seq % limit + 1


def plc_fault(m: DiverterMap, status: int) -> str | None:
    if status in m.status_codes:
        return m.status_codes[status]
    return f"PLC status {status}"
