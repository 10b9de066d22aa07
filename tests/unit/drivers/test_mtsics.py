"""MT-SICS replies as scales send them: split on whitespace, never sliced; the manual's
forms and the variants found in the field (echoed command tokens, other units)."""

from __future__ import annotations

import pytest

from drivers.frame import BadFrame
from drivers.scale import mtsics
from drivers.scale.mtsics import Error, Identification, Other, Status, Tare, Weight


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"S S     100.00 g\r\n", Weight("S", True, 100.0, "g", 100.0)),
        (b"S S      1234.5 g", Weight("S", True, 1234.5, "g", 1234.5)),
        (b"S D   99.87 g\r\n", Weight("S", False, 99.87, "g", 99.87)),
        (b"S S    1.2345 kg\r\n", Weight("S", True, 1.2345, "kg", 1234.5)),
        (b"S S     -0.35 kg\r\n", Weight("S", True, -0.35, "kg", -350.0)),
        (b"S S  2.50 lb", Weight("S", True, 2.5, "lb", 1133.9809)),
        (b"S S    12.000 oz", Weight("S", True, 12.0, "oz", 340.1943)),
        (b"S S   500.0 ct", Weight("S", True, 500.0, "ct", 100.0)),
        (b"S S  250000 mg", Weight("S", True, 250000.0, "mg", 250.0)),
        (b"S S\t12 g", Weight("S", True, 12.0, "g", 12.0)),  # any whitespace
        # Field variants: the reply starts with the command it answers.
        (b"SI S     100.0 g\r\n", Weight("SI", True, 100.0, "g", 100.0)),
        (b"SI D      87.3 g", Weight("SI", False, 87.3, "g", 87.3)),
        (b"SIR D     12.1 g", Weight("SIR", False, 12.1, "g", 12.1)),
        # A unit without a conversion is still a reply: the driver says so plainly.
        (b"S S 12 stone", Weight("S", True, 12.0, "stone", None)),
        (b"S I\r\n", Status("S", "I")),
        (b"SI I\r\n", Status("SI", "I")),
        (b"S +\r\n", Status("S", "+")),
        (b"S -\r\n", Status("S", "-")),
        (b"Z A\r\n", Status("Z", "A")),
        (b"Z I\r\n", Status("Z", "I")),
        (b"Z +\r\n", Status("Z", "+")),
        (b"Z -\r\n", Status("Z", "-")),
        (b"ZI S\r\n", Status("ZI", "S")),
        (b"ZI D\r\n", Status("ZI", "D")),
        (b"ZI A\r\n", Status("ZI", "A")),
        (b"T S     250.0 g\r\n", Tare("T", True, 250.0, "g", 250.0)),
        (b"T S 0.250 kg", Tare("T", True, 0.25, "kg", 250.0)),
        (b"TI S     250.0 g", Tare("TI", True, 250.0, "g", 250.0)),
        (b"TI D     249.1 g", Tare("TI", False, 249.1, "g", 249.1)),
        (b"TA A     120.0 g", Tare("TA", True, 120.0, "g", 120.0)),
        (b"TA L\r\n", Status("TA", "L")),
        (b"TAC A\r\n", Status("TAC", "A")),
        (b"T I\r\n", Status("T", "I")),
        (b"T +\r\n", Status("T", "+")),
        (b'I4 A "B021002593"\r\n', Identification("I4", "B021002593")),
        (b'@ A "B021002593"\r\n', Identification("@", "B021002593")),
        (b"ES\r\n", Error("ES")),
        (b"ET\r\n", Error("ET")),
        (b"EL\r\n", Error("EL")),
        # Well-formed, unknown: kept, so the scale stays online and a command is
        # refused with the text.
        (b"X Y\r\n", Status("X", "Y")),
        (b"S Q\r\n", Status("S", "Q")),
        (b'I2 A "WXS205SDU 220.00900 g"', Other("I2", "A", 'I2 A "WXS205SDU 220.00900 g"')),
        (b"S S Error 10b", Other("S", "S", "S S Error 10b")),
    ],
)
def test_decodes(line: bytes, reply: mtsics.Reply) -> None:
    assert mtsics.decode_reply(line) == reply


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "empty"),
        (b"S S\r\n", "needs a value and a unit"),
        (b"S S 12.0\r\n", "needs a value and a unit"),
        (b"S S 1.2.3 g", "not a number"),
        (b"S S nan g", "not a number"),
        (b"HELLO\r\n", "not an MT-SICS reply"),
        (b"s s 12 g\r\n", "not an MT-SICS reply"),
        (b"S SS 12 g\r\n", "not an MT-SICS reply"),
        (b"S S 1\xff g", "not ASCII"),
        (b"S S \x0712 g", "control characters"),
    ],
)
def test_refuses(line: bytes, reason: str) -> None:
    with pytest.raises(BadFrame, match=reason):
        mtsics.decode_reply(line)


def test_encode_command() -> None:
    assert mtsics.encode_command("S") == b"S\r\n"
    assert mtsics.encode_command("SIR") == b"SIR\r\n"
    assert mtsics.encode_command("@") == b"@\r\n"
    assert mtsics.encode_command("TA", "120.5", "g") == b"TA 120.5 g\r\n"
    with pytest.raises(ValueError, match="not supported"):
        mtsics.encode_command("S\r\nZ")
    with pytest.raises(ValueError, match="printable ASCII word"):
        mtsics.encode_command("TA", "1 2", "g")


@pytest.mark.parametrize(
    ("grams", "unit", "args"),
    [
        (120.0, "g", ("120", "g")),
        (120.5, "g", ("120.5", "g")),
        (1250.0, "kg", ("1.25", "kg")),
        (453.59237, "lb", ("1", "lb")),
        (0.0, "g", ("0", "g")),
    ],
)
def test_preset_tare_in_the_scale_unit(grams: float, unit: str, args: tuple[str, str]) -> None:
    assert mtsics.preset_tare_args(grams, unit) == args


@pytest.mark.parametrize(
    ("command", "line", "answers"),
    [
        ("SI", b"S D 1 g", True),
        ("SI", b"SI S 1 g", True),
        ("SIR", b"SIR D 1 g", True),
        ("S", b"SI S 1 g", False),  # an echoed SI is not the answer to S
        ("T", b"T S 1 g", True),
        ("TI", b"TI D 1 g", True),
        ("TI", b"T S 1 g", True),
        ("TA", b"TA A 1 g", True),
        ("ZI", b"ZI A", True),
        ("ZI", b"ZI D", True),
        ("Z", b"ZI D", False),
        ("@", b'I4 A "x"', True),
        ("@", b'@ A "x"', True),
        ("T", b"EL", True),  # the generic errors answer any command
        ("T", b"S S 1 g", False),  # a streamed weight is not the tare's answer
        ("SI", b"SIX A 7", True),  # a token nobody else uses: this scale's own answer
        ("T", b"ZI A", False),
    ],
)
def test_which_replies_answer_which_command(command: str, line: bytes, answers: bool) -> None:
    assert mtsics.answers(command, mtsics.decode_reply(line)) is answers


def test_meanings() -> None:
    assert Status("S", "+").meaning.startswith("upper limit")
    assert Status("ZI", "D").done and Status("ZI", "A").done and Status("Z", "A").done
    assert not Status("Z", "I").done
    assert Error("ES").meaning.startswith("syntax")
