"""What a name and a free text may hold, for every way in (API bodies, forms, CLI).

A name must show something: at least one character that draws on a screen. Spaces,
zero-width, format and other default-ignorable characters (variation selectors,
Hangul fillers) and the blank Braille pattern do not count; a letter, a digit, an
accent (drawn on a dotted circle when it has nothing to sit on), a symbol or a
character a font lacks (drawn as a box) does. No name or text may hold control
characters (NUL above all: PostgreSQL cannot store it, and a name that prints as
nothing or as a different string on each screen cannot be read back to a customer),
except that free text may break lines and tab.

The rule is kept to what a short regular expression can state (``name_pattern``), so
that the API's document says exactly what it accepts.
"""

from __future__ import annotations

import functools
import sys
import unicodedata
from collections.abc import Callable

# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt): zero-width and
# joining characters, variation selectors, Hangul fillers, tags - drawn as nothing
# where they are not understood; and the blank Braille pattern.
_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)  # fmt: skip
_BLANK = frozenset(
    chr(code) for first, last in _IGNORABLE for code in range(first, last + 1)
) | frozenset("\u2800")
_TEXT_CONTROLS = frozenset("\t\n\r")


def _bad_character(value: str, allowed: frozenset[str]) -> str | None:
    for char in value:
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Zl", "Zp") and char not in allowed:
            name = "NUL" if char == "\0" else f"U+{ord(char):04X}"
            return f"contains a control character ({name})"
    return None


_UNSEEN = ("Cc", "Cf", "Cs", "Zs", "Zl", "Zp")


def visible(char: str) -> bool:
    return unicodedata.category(char) not in _UNSEEN and char not in _BLANK


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


# The same rules as regular expressions, for documents that describe the inputs
# (OpenAPI): a string of Unicode characters matches exactly when the check above
# accepts it. Character classes are written out from this Python's Unicode database,
# code point ranges as \uXXXX escapes inside the Basic Multilingual Plane and as the
# characters themselves beyond it (read alike by Python, ECMAScript with ``u`` and
# Rust). Lone surrogates are left out of the classes: they are not characters, a
# regular expression engine that works on Unicode text refuses to name them, and the
# checks refuse them anyway.
_SURROGATES = range(0xD800, 0xE000)


def _escape(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)


def _char_class(member: Callable[[str], bool], *, negate: bool = False) -> str:
    parts: list[str] = []
    start: int | None = None
    for code in range(sys.maxunicode + 2):
        inside = code <= sys.maxunicode and code not in _SURROGATES and member(chr(code))
        if inside and start is None:
            start = code
        elif not inside and start is not None:
            last = code - 1
            parts.append(_escape(start) if start == last else f"{_escape(start)}-{_escape(last)}")
            start = None
    return f"[{'^' if negate else ''}{''.join(parts)}]"


def _control(char: str, allowed: frozenset[str]) -> bool:
    return unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") and char not in allowed


@functools.cache
def text_pattern() -> str:
    """What ``check_text`` accepts: no control characters but line breaks and tab."""
    return f"^{_char_class(lambda c: _control(c, _TEXT_CONTROLS), negate=True)}*$"


@functools.cache
def name_pattern() -> str:
    """What ``check_name`` accepts: no control characters, something visible."""
    other = _char_class(lambda c: _control(c, frozenset()), negate=True)
    seen = _char_class(lambda c: not visible(c), negate=True)
    return f"^{other}*{seen}{other}*$"
