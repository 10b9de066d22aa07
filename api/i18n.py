"""The language of a page: the HTTP side of ``wcs.i18n`` (one mechanism, gettext
catalogues with Babel, for pages, notifications, alerts, reports and labels).

Which language a request gets, first match wins:

1. ``?lang=zh-CN`` (any tag that is served: ``zh``, ``zh-Hans``, ``en-GB``) on the
   page - the switch: answered with a cookie ``wcs_lang`` that remembers the choice
   for a year, and a redirect without it;
2. that cookie;
3. what the page itself knows about its reader (a customer's page: the order's
   language), passed as ``prefer``;
4. the browser's ``Accept-Language``, by quality;
5. English.
"""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from wcs.i18n.catalogues import SOURCE, offered
from wcs.i18n.negotiation import accept_language, best_of, match
from wcs.i18n.translator import Translator, translator

COOKIE = "wcs_lang"
COOKIE_MAX_AGE_S = 365 * 24 * 3600
DEFAULT = SOURCE


def langs() -> tuple[str, ...]:
    """The languages a page offers in its switch."""
    return offered()


def parse_lang(value: str | None) -> str | None:
    """An explicit choice (query, cookie): the served language it names, or None."""
    if not value or len(value) > 35:
        return None
    return match(value.strip())


def request_lang(request: Request, *prefer: str | None) -> str:
    chosen = parse_lang(request.query_params.get("lang")) or parse_lang(request.cookies.get(COOKIE))
    if chosen:
        return chosen
    return best_of([*prefer, *accept_language(request.headers.get("accept-language"))])


def request_translator(request: Request, *prefer: str | None) -> Translator:
    return translator(request_lang(request, *prefer))


def remember(response: Response, lang: str, *, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        lang,
        max_age=COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )
