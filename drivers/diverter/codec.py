"""Diverter register map and pure helpers (0-based wire addresses).

holding   0        requested lane number                  host
holding   1        request sequence id (PLC acts on change) host
input     0        arrival counter (+1 per tote)          PLC
input     1        sequence id of the last executed request PLC
input     2        lane actually taken by the last tote   PLC
input     3        status: 0 ok, 1 jam, 2 fault           PLC
input     10-29    tote barcode, 2 ASCII chars/register, high byte first, NUL-padded
discrete  0/1/2    photo-eye blocked / in position / fault
"""

from __future__ import annotations

from collections.abc import Sequence

from drivers.frame import BadFrame

HR_LANE = 0
HR_SEQ = 1
IR_ARRIVALS = 0
IR_SEQ_ECHO = 1
IR_LANE_TAKEN = 2
IR_STATUS = 3
IR_BARCODE = 10
BARCODE_REGISTERS = 20
NOREAD = "NOREAD"
PLC_STATUS = {0: None, 1: "conveyor jam", 2: "diverter fault"}


def decode_barcode(registers: Sequence[int]) -> str:
    """The tote barcode from its registers; an empty read is ``NOREAD``."""
    raw = b"".join(int(r & 0xFFFF).to_bytes(2, "big") for r in registers)
    text = raw.split(b"\x00", 1)[0]
    if not text.strip():
        return NOREAD
    if any(b < 0x20 or b > 0x7E for b in text):
        raise BadFrame("tote barcode registers hold non-printable bytes", raw)
    return text.decode("ascii").strip()


def encode_barcode(text: str, registers: int = BARCODE_REGISTERS) -> list[int]:
    raw = text.encode("ascii")
    if len(raw) > registers * 2:
        raise ValueError(f"barcode {text!r} is longer than {registers * 2} characters")
    raw = raw.ljust(registers * 2, b"\x00")
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


def next_seq(seq: int) -> int:
    """Sequence ids run 1..65535; 0 is skipped so a fresh PLC (0) always sees a change."""
    return seq % 65535 + 1


def plc_fault(status: int) -> str | None:
    if status in PLC_STATUS:
        return PLC_STATUS[status]
    return f"PLC status {status}"
