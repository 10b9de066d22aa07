"""MT-SICS replies as the scale sends them: split on whitespace, never sliced."""

from __future__ import annotations

import pytest

from drivers.frame import BadFrame
from drivers.scale import mtsics
from drivers.scale.mtsics import Error, Identification, Status, Tare, Weight


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"S S     100.00 g\r\n", Weight("S", True, 100.0, "g", 100.0)),
        (b"S S      1234.5 g", Weight("S", True, 1234.5, "g", 1234.5)),
        (b"S D   99.87 g\r\n", Weight("S", False, 99.87, "g", 99.87)),
        (b"S S    1.2345 kg\r\n", Weight("S", True, 1.2345, "kg", 1234.5)),
        (b"S S     -0.35 kg\r\n", Weight("S", True, -0.35, "kg", -350.0)),
        (b"S S  2.50 lb", Weight("S", True, 2.5, "lb", 1133.9809)),
        (b"S S\t12 g", Weight("S", True, 12.0, "g", 12.0)),  # any whitespace
        (b"S I\r\n", Status("S", "I")),
        (b"S +\r\n", Status("S", "+")),
        (b"S -\r\n", Status("S", "-")),
        (b"Z A\r\n", Status("Z", "A")),
        (b"Z I\r\n", Status("Z", "I")),
        (b"Z +\r\n", Status("Z", "+")),
        (b"Z -\r\n", Status("Z", "-")),
        (b"T S     250.0 g\r\n", Tare(250.0, "g", 250.0)),
        (b"T S 0.250 kg", Tare(0.25, "kg", 250.0)),
        (b"T I\r\n", Status("T", "I")),
        (b"T +\r\n", Status("T", "+")),
        (b'I4 A "B021002593"\r\n', Identification("I4", "B021002593")),
        (b"ES\r\n", Error("ES")),
        (b"ET\r\n", Error("ET")),
        (b"EL\r\n", Error("EL")),
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
        (b"S S 12 stone", "unknown weight unit 'stone'"),
        (b"X Y\r\n", "unknown MT-SICS reply"),
        (b"S Q\r\n", "unknown MT-SICS reply"),
        (b"HELLO\r\n", "unknown MT-SICS reply"),
        (b"S S 1\xff g", "not ASCII"),
    ],
)
def test_refuses(line: bytes, reason: str) -> None:
    with pytest.raises(BadFrame, match=reason):
        mtsics.decode_reply(line)


def test_encode_command() -> None:
    assert mtsics.encode_command("S") == b"S\r\n"
    assert mtsics.encode_command("SI") == b"SI\r\n"
    assert mtsics.encode_command("@") == b"@\r\n"
    with pytest.raises(ValueError, match="not supported"):
        mtsics.encode_command("S\r\nZ")


def test_reply_tokens_match_commands() -> None:
    assert mtsics.reply_token(mtsics.decode_reply(b"S D 1 g")) == mtsics.REPLY_TO["SI"]
    assert mtsics.reply_token(mtsics.decode_reply(b"T S 1 g")) == mtsics.REPLY_TO["T"]
    assert mtsics.reply_token(mtsics.decode_reply(b'I4 A "x"')) == mtsics.REPLY_TO["@"]
    assert mtsics.reply_token(mtsics.decode_reply(b"EL")) is None
    assert Status("S", "+").meaning.startswith("upper limit")
    assert Error("ES").meaning.startswith("syntax")
