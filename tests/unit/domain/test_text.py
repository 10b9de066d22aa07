"""Names show something and hold no control characters; free text may break lines."""

from __future__ import annotations

import re

import pytest

from wcs.domain.text import check_name, check_text


@pytest.mark.parametrize(
    "name",
    ["Li Wei", "李伟", "O'Brien-Smith", "  Ana  ", "Zoë", "محمد", "X Æ A-12", "🙂", "5"],
)
def test_names_that_show_something_pass(name: str) -> None:
    assert check_name(name) == name.strip()


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("a\x00b", "NUL"),
        ("\x00", "NUL"),
        ("Ann\nSmith", "U+000A"),
        ("tab\there", "U+0009"),
        ("\x1b[31mred", "U+001B"),
        ("x\u2028y", "U+2028"),
        ("\u200b", "no visible"),
        ("\u200b\u200c\u200d\u2060\ufeff", "no visible"),
        ("   ", "no visible"),
        ("\u3164\u3164", "no visible"),  # Hangul filler: a "letter" that draws nothing
        ("\u2800", "no visible"),
        ("\u0301\u0301", "no visible"),  # combining accents with nothing to sit on
        ("\u00a0\u2003", "no visible"),
    ],
)
def test_invisible_names_and_control_characters_are_refused(name: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        check_name(name)


def test_free_text_keeps_line_breaks_but_not_nul() -> None:
    assert check_text("left at\nthe door\tround the back\r\n").startswith("left at")
    with pytest.raises(ValueError, match="NUL"):
        check_text("left at\x00the door")
