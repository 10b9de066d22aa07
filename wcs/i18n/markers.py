"""Markers for texts translated later, where they are shown.

Extraction (``babel.cfg``, keywords ``N_`` and ``NP_:1c,2``) collects the marked
texts; at run time the markers return their argument unchanged, so a table of
English texts (alert titles, state names) stays a table of plain values and the
pure domain needs nothing but this module.
"""

from __future__ import annotations


def N_(message: str) -> str:
    """Mark ``message`` for extraction; translated with ``Translator.gettext``."""
    return message


def NP_(context: str, message: str) -> tuple[str, str]:
    """Mark ``message`` in ``context``; translated with ``Translator.pgettext``."""
    return (context, message)
