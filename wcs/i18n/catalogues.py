"""The message catalogues: ``locales/<ll_CC>/LC_MESSAGES/messages.po``.

English is the source language: its texts are the message ids, so it has no
catalogue. A ``.po`` file is compiled in memory the first time its language is
used (Babel reads it and writes the ``.mo`` form into a buffer, a few milliseconds
once per process), so there is no build step and no compiled file to go stale: a
fresh install, an edited catalogue and a wheel all translate the same way. Untranslated
and fuzzy entries are left out, so they show the English text, never an empty one;
the catalogue test makes sure a shipped catalogue has none.
"""

from __future__ import annotations

import functools
import gettext
import io
from importlib import resources
from importlib.resources.abc import Traversable

from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

DOMAIN = "messages"
SOURCE = "en"


def locales_dir() -> Traversable:
    return resources.files("wcs.i18n").joinpath("locales")


def po_file(directory: str) -> Traversable:
    return locales_dir().joinpath(directory, "LC_MESSAGES", f"{DOMAIN}.po")


def tag_of(directory: str) -> str:
    """``zh_CN`` -> ``zh-CN``: the BCP 47 tag pages and messages are labelled with."""
    return directory.replace("_", "-")


@functools.cache
def catalogue_dirs() -> tuple[str, ...]:
    """The directories under ``locales/`` that hold a catalogue, sorted."""
    return tuple(
        sorted(
            entry.name
            for entry in locales_dir().iterdir()
            if entry.is_dir() and po_file(entry.name).is_file()
        )
    )


@functools.cache
def offered() -> tuple[str, ...]:
    """Every language the system speaks, as BCP 47 tags; the source language first."""
    return (SOURCE, *(tag_of(d) for d in catalogue_dirs()))


@functools.cache
def locale_of(tag: str) -> Locale:
    """The Babel locale of an offered tag (``zh-CN`` -> ``zh_Hans_CN``)."""
    return Locale.parse(tag, sep="-")


def read_catalogue(directory: str) -> Catalog:
    with po_file(directory).open("rb") as fp:
        return read_po(fp, locale=directory, domain=DOMAIN)


@functools.cache
def translations(tag: str) -> gettext.NullTranslations:
    """The translations of an offered tag; the source language translates nothing."""
    if tag == SOURCE:
        return gettext.NullTranslations()
    directory = tag.replace("-", "_")
    if directory not in catalogue_dirs():
        raise LookupError(f"no catalogue for {tag!r}; offered: {', '.join(offered())}")
    buffer = io.BytesIO()
    write_mo(buffer, read_catalogue(directory), use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)
