"""``Translator``: the texts of one language, for code and templates alike."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from babel import Locale

from wcs.i18n.catalogues import locale_of, offered, translations
from wcs.i18n.negotiation import best_of
from wcs.i18n.terms import TERMS, Term


class Translator:
    """``t.gettext("Stop %(seq)s", seq=3)``; placeholders are ``%(name)s``.

    The same texts, lookups and formatting serve Python code (``gettext``,
    ``pgettext``, ``ngettext``: the names extraction looks for) and Jinja templates
    (``_()``, installed by ``wcs.i18n.jinja``).
    """

    def __init__(self, lang: str) -> None:
        if lang not in offered():
            raise LookupError(f"{lang!r} is not offered; offered: {', '.join(offered())}")
        self.lang = lang
        self.locale: Locale = locale_of(lang)
        self.translations = translations(lang)

    def gettext(self, message: str, **params: object) -> str:
        text = self.translations.gettext(message)
        return text % params if params else text

    def pgettext(self, context: str, message: str, **params: object) -> str:
        text = self.translations.pgettext(context, message)
        return text % params if params else text

    def ngettext(self, singular: str, plural: str, n: int, **params: object) -> str:
        text = self.translations.ngettext(singular, plural, n)
        return text % {"num": n, **params}

    __call__ = gettext

    def term(self, kind: Term, value: str) -> str:
        """A value's name (``device_kind``, ``ptl``); the value itself when it has none."""
        marked = TERMS[kind].get(value)
        return self.pgettext(*marked) if marked else value

    def state(self, value: str) -> str:
        """An order state's name, or a return line state's (the two never share a value)."""
        kind: Term = "return_state" if value in TERMS["return_state"] else "state"
        return self.term(kind, value)

    def shipment(self, value: str) -> str:
        return self.term("shipment", value)

    def terms(self, kind: Term) -> dict[str, str]:
        """Every value of a kind with its name, for the pages' scripts."""
        return {value: self.pgettext(*marked) for value, marked in TERMS[kind].items()}

    def language_name(self, tag: str) -> str:
        """An offered language named in itself (``中文``, ``English``), for switches."""
        locale = locale_of(tag)
        return str(locale.get_language_name(locale) or tag)


@functools.cache
def translator(lang: str) -> Translator:
    """The translator for an offered tag; ``translator_for`` negotiates any tag."""
    return Translator(lang)


def translator_for(*tags: str | None) -> Translator:
    """The translator of the first of ``tags`` that is served, else English."""
    return translator(best_of(tags))


def all_translators() -> Mapping[str, Translator]:
    return {tag: translator(tag) for tag in offered()}
