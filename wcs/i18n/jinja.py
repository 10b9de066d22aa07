"""Jinja2 environments that speak a language.

Templates call ``_("text", name=value)`` (or ``gettext``, ``pgettext``,
``ngettext``; ``{% trans %}`` works too) and get ``t`` (the ``Translator``) for
terms: ``t.state(order.state)``. One environment per template set and language is
built on first use and kept; Jinja's i18n extension is installed with the
language's translations in "newstyle" (the call formats ``%(name)s`` itself and
escapes the values where autoescaping is on).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from jinja2 import Environment

from wcs.i18n.translator import Translator, translator

EXTENSIONS = ("jinja2.ext.i18n",)


def install(env: Environment, t: Translator) -> Environment:
    env.add_extension("jinja2.ext.i18n")
    # Whitespace inside {% trans %} is folded, as extraction does (babel.cfg).
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_translations(t.translations, newstyle=True)  # type: ignore[attr-defined]
    env.globals["t"] = t
    env.globals["lang"] = t.lang
    return env


def localized(factory: Callable[[], Environment]) -> Callable[[str], Environment]:
    """``envs = localized(make_env)``; ``envs("zh-CN")`` is that language's environment.

    ``factory`` builds a fresh environment (loader, filters, autoescaping); it is
    called once per language.
    """

    @functools.cache
    def for_lang(lang: str) -> Environment:
        return install(factory(), translator(lang))

    return for_lang
