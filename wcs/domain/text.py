"""What a name and a free text may hold, for every way in (API bodies, forms, CLI).

A name must show something: at least one letter, digit, punctuation mark or symbol.
Spaces, zero-width and other format characters, combining marks on their own and the
few letters that draw nothing (Hangul fillers, the blank Braille pattern) do not
count. No name or text may hold control characters (NUL above all: PostgreSQL cannot
store it, and a name that prints as nothing or as a different string on each screen
cannot be read back to a customer), except that free text may break lines and tab.
"""

from __future__ import annotations

import unicodedata

# Letters and symbols that render as blank space.
_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_TEXT_CONTROLS = frozenset("\t\n\r")


def _bad_character(value: str, allowed: frozenset[str]) -> str | None:
    for char in value:
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Zl", "Zp") and char not in allowed:
            name = "NUL" if char == "\0" else f"U+{ord(char):04X}"
            return f"contains a control character ({name})"
    return None


def visible(char: str) -> bool:
    return unicodedata.category(char)[0] in "LNPS" and char not in _BLANK


def check_name(value: str, *, what: str = "name") -> str:
    """``value`` without surrounding spaces, or ValueError saying what is wrong."""
    problem = _bad_character(value, frozenset())
    if problem:
        raise ValueError(f"{what} {problem}")
    if not any(visible(char) for char in value):
        raise ValueError(f"{what} has no visible character")
    return value.strip()


def check_text(value: str, *, what: str = "text") -> str:
    """Free text: line breaks and tabs allowed, other control characters not."""
    problem = _bad_character(value, _TEXT_CONTROLS)
    if problem:
        raise ValueError(f"{what} {problem}")
    return value
