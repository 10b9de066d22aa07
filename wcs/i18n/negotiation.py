"""Which offered language a reader gets.

Tags are BCP 47 (``zh-Hans-CN``, ``de-CH``, ``en``), parsed by Babel. A tag matches
an offered language with the same language subtag; among several, the one with the
same script, then the same region, wins. Every Chinese tag therefore reads
Simplified Chinese while it is the only Chinese offered - ``zh``, ``zh-CN``,
``zh-Hans``, ``zh-SG`` and also ``zh-TW``/``zh-Hant``, whose readers read Simplified
far better than English. A tag that matches nothing offered is passed over; the
source language (English) is the last resort.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from babel import Locale, UnknownLocaleError
from babel.languages import get_official_languages

from wcs.i18n.catalogues import SOURCE, locale_of, offered

# RFC 5646 shape: letters and digits in subtags of 1-8, hyphen separated. Babel is
# stricter about what it knows; this only refuses what cannot be a tag at all.
_TAG = re.compile(r"^[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8})*$")


class BadLanguageTag(ValueError):
    pass


def parse_tag(tag: str) -> Locale:
    """A BCP 47 tag as a Babel locale; ``BadLanguageTag`` says why it is not one.

    Babel knows every language of the CLDR; a well-formed tag of a language it does
    not know (``tlh``) is refused too, since nothing could ever be offered in it.
    """
    text = tag.strip()
    if not _TAG.match(text):
        raise BadLanguageTag(f"{tag!r} is not a BCP 47 language tag (like 'en', 'zh-CN')")
    try:
        return Locale.parse(text.replace("_", "-"), sep="-")
    except (ValueError, UnknownLocaleError) as exc:
        # Babel knows ``de`` and ``de-CH`` but not every region: fall back to the language.
        primary = text.replace("_", "-").split("-", 1)[0]
        try:
            return Locale.parse(primary)
        except (ValueError, UnknownLocaleError):
            raise BadLanguageTag(f"{tag!r} names no language known to the CLDR") from exc


def normalise(tag: str) -> str:
    """The canonical spelling of a valid tag: ``ZH-hans-cn`` -> ``zh-Hans-CN``."""
    parse_tag(tag)
    parts = tag.strip().replace("_", "-").split("-")
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())
        elif len(part) == 2 and part.isalpha():
            out.append(part.upper())
        else:
            out.append(part.lower())
    return "-".join(out)


def match(tag: str | None, langs: Iterable[str] | None = None) -> str | None:
    """The offered tag that serves a reader of ``tag``, or None."""
    if not tag:
        return None
    try:
        wanted = parse_tag(tag)
    except BadLanguageTag:
        return None
    candidates = list(offered() if langs is None else langs)
    best: tuple[int, str] | None = None
    for candidate in candidates:
        have = locale_of(candidate)
        if have.language != wanted.language:
            continue
        score = 0
        if wanted.script and have.script == wanted.script:
            score += 2
        if wanted.territory and have.territory == wanted.territory:
            score += 1
        if best is None or score > best[0]:
            best = (score, candidate)
    return best[1] if best else None


def best_of(tags: Iterable[str | None], langs: Iterable[str] | None = None) -> str:
    """The first of ``tags`` (most preferred first) that is served; else English."""
    choices = list(offered() if langs is None else langs)
    for tag in tags:
        found = match(tag, choices)
        if found:
            return found
    return SOURCE


def accept_language(header: str | None) -> list[str]:
    """The tags of an ``Accept-Language`` header, best first (RFC 9110 quality values).

    ``*`` stands for the source language; ``q=0`` means "not this one".
    """
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")[:32]):
        tag, *params = item.strip().split(";")
        quality = 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        tag = tag.strip()
        if tag and quality > 0:
            ranked.append((-quality, position, SOURCE if tag == "*" else tag))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate(header: str | None) -> str:
    """The offered language for an ``Accept-Language`` header."""
    return best_of(accept_language(header))


@functools.lru_cache(maxsize=512)  # pure: intake asks for every order
def country_language(country: str | None) -> str | None:
    """The language a customer in ``country`` most likely reads, as a tag (``de-DE``).

    The CLDR's official (and de facto) languages of the territory, the first named;
    a language written in a named script keeps it (``zh-Hant-TW``). None for an
    unknown country.
    """
    if not country or len(country) != 2 or not country.isalpha():
        return None
    languages = get_official_languages(country.upper(), de_facto=True)
    if not languages:
        return None
    first = Locale.parse(languages[0])
    parts = [first.language, *([first.script] if first.script else []), country.upper()]
    return "-".join(parts)
