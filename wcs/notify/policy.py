"""Pure decisions of the notifier: no I/O, table-tested.

- Who hears about what: ``order_exception`` goes to customer service, everything else
  to the customer.
- Channels: e-mail whenever the customer has an address; a text message (the SMS
  webhook) as well for the few time-critical kinds, or instead of e-mail when there is
  no address. A channel that is not configured is not chosen when another one
  reaches the person; when none does, the notification waits for configuration.
- Language: the first that is served of the customer's stored preference, the
  order's own language (given at intake, else the language of its country) and
  the language of the delivery country, else the default (``wcs.i18n``).
- Keys: ``order:<order>:<seq>:<channel>`` for state changes and
  ``notice:<id>:<channel>`` for customer notices; the SMTP Message-ID is derived from
  the key, so a duplicate (a retry after an unknown outcome) is recognisable as one.
- Backoff: the system's capped exponential window (:mod:`wcs.retry`) with half of it
  fixed ("equal jitter") rather than all of it random: a message has a budget of
  attempts, and the fixed half makes that budget a time budget (eight attempts span
  at least half an hour by default), so a short outage of the mail server cannot use
  it up; the random half still spreads the retries of many messages.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from wcs.i18n.negotiation import best_of, country_language
from wcs.retry import Backoff

Channel = Literal["email", "sms", "none"]

STAFF_KINDS = frozenset({"order_exception"})
# Worth a text message even when the customer also gets an e-mail: they change what
# the customer does today (be home, rearrange, wait longer).
SMS_KINDS = frozenset({"out_for_delivery", "delivery_failed", "delivery_delayed"})

_KEY_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class Contact:
    email: str | None
    phone: str | None


@dataclass(frozen=True, slots=True)
class Planned:
    channel: Channel
    recipient: str | None
    # Why nothing can be sent (channel "none"): the dead letter says so.
    problem: str | None = None


def audience_of(kind: str) -> Literal["customer", "staff"]:
    return "staff" if kind in STAFF_KINDS else "customer"


def plan_channels(
    kind: str,
    contact: Contact,
    *,
    email_on: bool,
    sms_on: bool,
    staff_email: str | None,
) -> list[Planned]:
    """The channels one notification goes out on; never empty.

    An unconfigured channel is still planned when it is the only way to reach the
    person: the row then waits (pending) instead of being dropped.
    """
    if audience_of(kind) == "staff":
        if staff_email:
            return [Planned("email", staff_email)]
        return [
            Planned(
                "none", None, "no customer service address (WCS_NOTIFY__CUSTOMER_SERVICE_EMAIL)"
            )
        ]
    planned: list[Planned] = []
    if contact.email:
        planned.append(Planned("email", contact.email))
    # Without an address a text message is the only way, configured or not.
    sms_wanted = not contact.email or (sms_on and (kind in SMS_KINDS or not email_on))
    if contact.phone and sms_wanted:
        planned.append(Planned("sms", contact.phone))
    if not planned:
        return [Planned("none", None, "the order has neither an e-mail address nor a phone")]
    return planned


def choose_lang(
    preference: str | None, order_lang: str | None, country: str | None, default: str = "en"
) -> str:
    """The served language (an offered tag) a customer's message is written in."""
    return best_of([preference, order_lang, country_language(country), default])


def order_key(order_id: str, seq: int, channel: str) -> str:
    return f"order:{order_id}:{seq}:{channel}"


def notice_key(notice_id: int, channel: str) -> str:
    return f"notice:{notice_id}:{channel}"


def message_id(key: str, site: str, domain: str) -> str:
    """A Message-ID that is the same for every attempt of one notification."""
    local = _KEY_SAFE.sub("-", f"wcs.{site}.{key.replace(':', '.')}")
    return f"<{local}@{domain}>"


def domain_of(address: str) -> str:
    """The domain part of ``Name <user@domain>`` or ``user@domain`` (for Message-IDs)."""
    match = re.search(r"@([A-Za-z0-9.-]+)", address)
    return match.group(1) if match else "localhost"


def backoff_s(
    attempts: int,
    base_s: float,
    cap_s: float,
    rand: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds before the next try after ``attempts`` failed tries (1 = first failure):
    the window of the system's backoff (:class:`wcs.retry.Backoff`), half of it fixed."""
    if attempts < 1:
        raise ValueError("backoff after at least one attempt")
    ceiling = Backoff(base_s, max(base_s, cap_s)).window(attempts)
    return float(ceiling / 2 + rand(0.0, ceiling / 2))
