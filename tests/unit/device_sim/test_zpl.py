"""ZPL as the simulated printer reads it."""

from __future__ import annotations

import pytest

from device_sim.zpl import Command, Immediate, Label, ZplInterpreter, ZplStream, decode_code128

SSCC = "106141411234567897"


def test_stream_survives_any_split_of_the_input() -> None:
    zpl = b"^XA^FO10,20^A0N,30,30^FDHi ~ there^FS~HS^XZ"
    whole = ZplStream().feed(zpl)
    stream = ZplStream()
    pieces: list[Command] = []
    for byte in zpl:
        pieces += stream.feed(bytes([byte]))
    assert pieces == whole
    assert [str(c) for c in whole] == [
        "^XA",
        "^FO10,20",
        "^A0N,30,30",
        "^FDHi ~ there",
        "^FS",
        "~HS",
        "^XZ",
    ]


@pytest.mark.parametrize(
    ("data", "mode", "decoded", "is_gs1"),
    [
        ("(00)" + SSCC, "D", "00" + SSCC, True),
        ("(01)09506000134352(10)AB1(21)S1", "D", "0109506000134352" + "10AB1\x1d21S1", True),
        (">;>800" + SSCC, "N", "00" + SSCC, True),
        (">;>810>6AB1>8>521", "N", "10AB1\x1d21", True),
        ("CODE128", "N", "CODE128", False),
        (">:A><B>0C", "N", "A>B~C", False),
        (">;12D34", "N", "1234", False),  # a non-digit in subset C is skipped
    ],
)
def test_code128_field_data(data: str, mode: str, decoded: str, is_gs1: bool) -> None:
    assert decode_code128(data, mode) == (decoded, is_gs1)


def test_interpreter_builds_labels_and_passes_tilde_commands_through() -> None:
    interp = ZplInterpreter()
    first = interp.feed(b"^XA^FO5,5^FDname^FS^FO5,50^BY2^BCN,80,Y,N,N,D^FD(00)" + SSCC.encode())
    assert first == []
    assert interp.in_format
    items = interp.feed(b"^FS~HS^FO1,1^FH^FDx_1Dy^FS^PQ3^XZ~PS")
    assert [type(i) for i in items] == [Immediate, Label, Immediate]
    status, label, resume = items
    assert isinstance(status, Immediate) and status.partial_format
    assert isinstance(resume, Immediate) and not resume.partial_format
    assert isinstance(label, Label)
    assert label.sscc == SSCC
    assert label.texts == ["name", "x\x1dy"]
    assert label.quantity == 3
    assert [(f.x, f.y) for f in label.fields] == [(5, 5), (5, 50), (1, 1)]
    assert not interp.in_format


def test_other_symbologies() -> None:
    (label,) = ZplInterpreter().feed(
        b"^XA^BEN,50^FD400638133393^FS^BQN,2,5^FDQA,https://t.example/1^FS^B3N,N,40^FDAB12^FS^XZ"
    )
    assert isinstance(label, Label)
    assert [(b.symbology, b.data) for b in label.barcodes] == [
        ("ean13", "4006381333931"),
        ("qr", "https://t.example/1"),
        ("code39", "AB12"),
    ]
    assert label.sscc is None
