"""Names show something and hold no control characters; free text may break lines."""

from __future__ import annotations

import re
from collections.abc import Callable

import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wcs.domain.text import check_name, check_text, name_pattern, text_pattern


@pytest.mark.parametrize(
    "name",
    [
        "Li Wei",
        "李伟",
        "O'Brien-Smith",
        "  Ana  ",
        "Zoë",
        "محمد",
        "X Æ A-12",
        "🙂",
        "5",
        "\u0301\u0301",  # accents with nothing to sit on draw on a dotted circle
        "\ue000",  # private use: the font's own glyph, or a box
    ],
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
        ("\u00a0\u2003", "no visible"),
        ("\ufe0f\U000e0100\u034f", "no visible"),  # variation selectors, grapheme joiner
    ],
)
def test_invisible_names_and_control_characters_are_refused(name: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        check_name(name)


def test_free_text_keeps_line_breaks_but_not_nul() -> None:
    assert check_text("left at\nthe door\tround the back\r\n").startswith("left at")
    with pytest.raises(ValueError, match="NUL"):
        check_text("left at\x00the door")


def _accepts(check: Callable[[str], str], value: str) -> bool:
    try:
        check(value)
    except ValueError:
        return False
    return True


# Text from every plane, with the characters the rules are about drawn often.
TEXT = st.text(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from("\x00\t\n\r \u00a0\u0301\u200b\u2028\u2800\u3164\ufe0f\U000e0001"),
    ),
    max_size=12,
)


NAME, FREE_TEXT = re.compile(name_pattern()), re.compile(text_pattern())


@given(TEXT)
def test_the_patterns_accept_exactly_what_the_checks_accept(value: str) -> None:
    """The OpenAPI document publishes these patterns: a client checking a name or a
    text with them gets the API's own answer."""
    assert bool(NAME.fullmatch(value)) == _accepts(check_name, value)
    assert bool(FREE_TEXT.fullmatch(value)) == _accepts(check_text, value)


def test_the_patterns_are_read_alike_by_a_unicode_regex_engine() -> None:
    # Rust's regex (what schemathesis and other JSON Schema validators use) refuses to
    # name lone surrogates; the patterns leave them out.
    validator = jsonschema_rs.validator_for({"type": "string", "pattern": name_pattern()})
    assert validator.is_valid("Li Wei") and validator.is_valid("\u0301")
    assert not validator.is_valid("\u200b \u3164") and not validator.is_valid("a\x00b")
    text = jsonschema_rs.validator_for({"type": "string", "pattern": text_pattern()})
    assert text.is_valid("left at\nthe door") and not text.is_valid("a\x1bb")
