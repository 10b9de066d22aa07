"""The notification rows: expansion, claiming, outcomes, crash recovery, dead letters.

Life of one row (``notifications``)::

    pending --claim--> sending --channel accepted--> sent
       ^                  |  \\--temporary failure--> pending (later) or dead (out of tries)
       |                  |   \\--permanent failure--> dead
       |                  \\--sender died after handover--> unconfirmed (e-mail)
       +----- retry (a person, after fixing the cause) <-- dead | unconfirmed

Exactly once per key: a row is claimed in its own committed transaction before
anything is sent (``attempts`` counts claims), and ``phase`` becomes 'handover' in
another commit right before the point of no return. A row found in ``sending`` whose
claim expired therefore tells what may have happened: without handover nothing left
us and it is simply due again; after handover an e-mail may have arrived, so it is
not repeated blindly but parked as ``unconfirmed`` with its Message-ID for a person
to look up. Webhook messages carry their key as Idempotency-Key and are repeated.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, insert, literal, not_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.domain.delivery import from_minor_units
from wcs.errors import Conflict, NotFound, ValidationFailed
from wcs.i18n.catalogues import offered
from wcs.i18n.negotiation import match
from wcs.links import Links
from wcs.notify import policy
from wcs.notify.templates import render
from wcs.persistence.db import transaction
from wcs.persistence.tables import (
    customer_notices,
    notification_preferences,
    notifications,
    notify_requests,
    orders,
    replenishment_requests,
    returns,
    shipments,
)
from wcs.settings import Settings
from wcs.timeutil import as_utc, utcnow

STATES = ("pending", "sending", "sent", "dead", "unconfirmed")
RETRYABLE = frozenset({"dead", "unconfirmed"})
ERROR_MAX = 1000


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    key: str
    kind: str
    channel: str
    recipient: str
    order_id: str
    lang: str
    subject: str
    body: str
    body_html: str | None
    sms: str
    message_id: str
    attempts: int


# -- expansion --------------------------------------------------------------------------


async def _preferences(conn: AsyncConnection, refs: Collection[str]) -> dict[str, str]:
    if not refs:
        return {}
    rows = await conn.execute(
        select(notification_preferences.c.customer_ref, notification_preferences.c.lang).where(
            notification_preferences.c.customer_ref.in_(sorted(refs))
        )
    )
    return {r.customer_ref: r.lang for r in rows}


def _rows_for(
    *,
    key_of: Any,
    order: Any,
    kind: str,
    seq: int | None,
    notice_id: int | None,
    lang_pref: str | None,
    settings: Settings,
    channels_on: Collection[str],
    now: datetime,
) -> list[dict[str, Any]]:
    n = settings.notify
    audience = policy.audience_of(kind)
    lang = (
        n.staff_lang
        if audience == "staff"
        else policy.choose_lang(lang_pref, order.lang, order.country, n.default_lang)
    )
    planned = policy.plan_channels(
        kind,
        policy.Contact(order.email, order.phone),
        email_on="email" in channels_on,
        sms_on="sms" in channels_on,
        staff_email=n.customer_service_email,
    )
    return [
        {
            "key": key_of(p.channel),
            "order_id": order.id,
            "seq": seq,
            "notice_id": notice_id,
            "kind": kind,
            "audience": audience,
            "channel": p.channel,
            "recipient": p.recipient,
            "lang": lang,
            "state": "dead" if p.channel == "none" else "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": p.problem,
            "created_at": now,
            "updated_at": now,
        }
        for p in planned
    ]


async def _insert_new(conn: AsyncConnection, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    have = set(
        await conn.scalars(
            select(notifications.c.key).where(notifications.c.key.in_([r["key"] for r in rows]))
        )
    )
    fresh = [r for r in rows if r["key"] not in have]
    if fresh:
        await conn.execute(insert(notifications), fresh)
    return len(fresh)


_ORDER_COLUMNS = (
    orders.c.id,
    orders.c.email,
    orders.c.phone,
    orders.c.country,
    orders.c.lang,
    orders.c.customer_ref,
)


async def expand(
    engine: AsyncEngine, settings: Settings, channels_on: Collection[str], *, limit: int = 200
) -> int:
    """Turn pending requests and unsent customer notices into notifications."""
    now = utcnow()
    created = 0
    async with transaction(engine) as conn:
        requests = (
            await conn.execute(
                select(
                    notify_requests.c.id.label("request_id"),
                    notify_requests.c.seq,
                    notify_requests.c.kind,
                    notify_requests.c.created_at.label("happened"),
                    *_ORDER_COLUMNS,
                )
                .join(orders, orders.c.id == notify_requests.c.order_id)
                .where(notify_requests.c.expanded_at.is_(None))
                .order_by(notify_requests.c.id)
                .limit(limit)
            )
        ).all()
        notices = (
            await conn.execute(
                select(
                    customer_notices.c.id.label("notice_id"),
                    customer_notices.c.kind,
                    customer_notices.c.created_at.label("happened"),
                    *_ORDER_COLUMNS,
                )
                .join(orders, orders.c.id == customer_notices.c.order_id)
                .where(
                    and_(
                        customer_notices.c.sent_at.is_(None),
                        not_(exists().where(notifications.c.notice_id == customer_notices.c.id)),
                    )
                )
                .order_by(customer_notices.c.id)
                .limit(limit)
            )
        ).all()
        prefs = await _preferences(
            conn, {r.customer_ref for r in [*requests, *notices] if r.customer_ref}
        )
        common: dict[str, Any] = {"settings": settings, "channels_on": channels_on, "now": now}
        timed: list[tuple[datetime, int, list[dict[str, Any]]]] = []
        for r in requests:
            planned = _rows_for(
                key_of=lambda ch, r=r: policy.order_key(r.id, r.seq, ch),
                order=r,
                kind=r.kind,
                seq=r.seq,
                notice_id=None,
                lang_pref=prefs.get(r.customer_ref or ""),
                **common,
            )
            timed.append((as_utc(r.happened), r.seq, planned))
        for n in notices:
            planned = _rows_for(
                key_of=lambda ch, n=n: policy.notice_key(n.notice_id, ch),
                order=n,
                kind=n.kind,
                seq=None,
                notice_id=n.notice_id,
                lang_pref=prefs.get(n.customer_ref or ""),
                **common,
            )
            timed.append((as_utc(n.happened), 0, planned))
        # Ids in the order things happened: the customer reads them in that order.
        timed.sort(key=lambda t: (t[0], t[1]))
        rows = [row for _, _, planned in timed for row in planned]
        created = await _insert_new(conn, rows)
        if requests:
            await conn.execute(
                update(notify_requests)
                .where(notify_requests.c.id.in_([r.request_id for r in requests]))
                .values(expanded_at=now)
            )
    return created


# -- rendering --------------------------------------------------------------------------


def _when(moment: datetime | None) -> str | None:
    return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC") if moment else None


async def message_context(
    conn: AsyncConnection, row: Row[Any], settings: Settings
) -> dict[str, Any]:
    """What a template may use; every key is always present (templates are strict)."""
    order = (await conn.execute(select(orders).where(orders.c.id == row.order_id))).one()
    base = settings.notify.public_url.rstrip("/")
    signer = Links(settings.link_secret)
    ship = (
        await conn.execute(
            select(shipments)
            .where(
                and_(
                    shipments.c.order_id == row.order_id,
                    shipments.c.status.not_in(("pending", "cancelled")),
                )
            )
            .order_by(shipments.c.created_at.desc())
            .limit(1)
        )
    ).first()
    ret = (
        await conn.execute(
            select(returns)
            .where(returns.c.order_id == row.order_id)
            .order_by(returns.c.created_at.desc())
            .limit(1)
        )
    ).first()
    short = (
        await conn.execute(
            select(replenishment_requests.c.sku, replenishment_requests.c.qty).where(
                and_(
                    replenishment_requests.c.order_id == row.order_id,
                    replenishment_requests.c.state == "open",
                )
            )
        )
    ).all()
    reason = None
    if row.seq is not None:
        reason = await conn.scalar(
            select(notify_requests.c.reason).where(
                and_(notify_requests.c.order_id == row.order_id, notify_requests.c.seq == row.seq)
            )
        )
    message = None
    if row.notice_id is not None:
        message = await conn.scalar(
            select(customer_notices.c.message).where(customer_notices.c.id == row.notice_id)
        )
    return {
        "order": {
            "id": order.id,
            "external_id": order.external_id,
            "customer_name": order.customer_name,
            "city": order.city,
            "service": order.service,
            "state": order.state,
        },
        "reason": reason,
        "message": message,
        "short": [f"{s.sku} x{s.qty}" for s in short],
        # Self-service pages by signed link (None where the step does not apply).
        "choice_url": f"{base}/my/backorder/{signer.make('backorder', order.id)}",
        "links": {
            "receipt": (
                f"{base}/my/receipt/{signer.make('receipt', order.id)}"
                if row.kind == "delivered"
                else None
            ),
            "return": (
                f"{base}/my/return/{signer.make('return', order.id)}"
                if row.kind == "delivered"
                else None
            ),
            "label": (
                f"{base}/my/label/{signer.make('label', order.id, ret.id)}"
                if row.kind == "return_label" and ret is not None
                else None
            ),
            "resolution": (
                f"{base}/my/resolution/{signer.make('resolution', order.id, ret.id)}"
                if row.kind == "return_label" and ret is not None
                else None
            ),
        },
        "shipment": (
            None
            if ship is None or not ship.tracking_no
            else {
                "tracking_no": ship.tracking_no,
                "carrier_name": ship.carrier_name,
                "tracking_url": f"{base}/api/v1/track/{ship.tracking_no}",
                "delivery_due": _when(ship.delivery_due),
            }
        ),
        "ret": (
            None
            if ret is None
            else {
                "id": ret.id,
                "refund": (
                    f"{from_minor_units(ret.refund_minor)} {ret.currency or ''}".strip()
                    if ret.refund_minor is not None
                    else None
                ),
                "replacement_order_id": ret.replacement_order_id,
                "note": ret.note,
            }
        ),
    }


# -- claiming and outcomes ----------------------------------------------------------------


async def claim_due(
    engine: AsyncEngine,
    settings: Settings,
    holder: str,
    channels_on: Collection[str],
    *,
    limit: int,
) -> list[Claimed]:
    """Take due rows (committed as ``sending`` before anything is sent), rendering each
    the first time so every attempt sends the same words under the same Message-ID."""
    now = utcnow()
    ttl = timedelta(seconds=settings.notify.claim_ttl_s)
    domain = policy.domain_of(settings.notify.smtp_from)
    claimed: list[Claimed] = []
    if not channels_on:
        return claimed
    async with transaction(engine) as conn:
        query = (
            select(notifications)
            .where(
                and_(
                    notifications.c.state == "pending",
                    notifications.c.next_attempt_at <= now,
                    notifications.c.channel.in_(sorted(channels_on)),
                )
            )
            .order_by(notifications.c.next_attempt_at, notifications.c.id)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        for row in (await conn.execute(query)).all():
            values: dict[str, Any] = {
                "state": "sending",
                "phase": None,
                "attempts": row.attempts + 1,
                "claimed_by": holder,
                "claimed_until": now + ttl,
                "updated_at": now,
            }
            subject, body, html = row.subject, row.body, row.body_html
            message_id = row.message_id
            if subject is None or body is None:
                rendered = render(row.kind, row.lang, await message_context(conn, row, settings))
                subject = rendered.subject
                body = rendered.text if row.channel == "email" else rendered.sms
                html = rendered.html if row.channel == "email" else None
                message_id = policy.message_id(row.key, settings.site, domain)
                values |= {
                    "subject": subject,
                    "body": body,
                    "body_html": html,
                    "message_id": message_id,
                }
            await conn.execute(
                update(notifications).where(notifications.c.id == row.id).values(**values)
            )
            claimed.append(
                Claimed(
                    id=row.id,
                    key=row.key,
                    kind=row.kind,
                    channel=row.channel,
                    recipient=row.recipient or "",
                    order_id=row.order_id,
                    lang=row.lang,
                    subject=subject,
                    body=body,
                    body_html=html,
                    sms=body,
                    message_id=message_id or "",
                    attempts=row.attempts + 1,
                )
            )
    return claimed


def _mine(row_id: int, holder: str) -> Any:
    return and_(
        notifications.c.id == row_id,
        notifications.c.state == "sending",
        notifications.c.claimed_by == holder,
    )


async def mark_handover(engine: AsyncEngine, row_id: int, holder: str) -> None:
    async with transaction(engine) as conn:
        result = await conn.execute(
            update(notifications)
            .where(_mine(row_id, holder))
            .values(phase="handover", updated_at=utcnow())
        )
        if result.rowcount != 1:
            raise Conflict(f"notification {row_id} is no longer claimed by this notifier")


async def mark_sent(engine: AsyncEngine, row_id: int, holder: str, provider_ref: str) -> None:
    now = utcnow()
    async with transaction(engine) as conn:
        notice_id = await conn.scalar(
            update(notifications)
            .where(_mine(row_id, holder))
            .values(
                state="sent",
                sent_at=now,
                updated_at=now,
                claimed_until=None,
                provider_ref=provider_ref[:250],
                last_error=None,
            )
            .returning(notifications.c.notice_id)
        )
        if notice_id is not None:
            await _close_notice(conn, int(notice_id), now)


async def _close_notice(conn: AsyncConnection, notice_id: int, now: datetime) -> None:
    """A customer notice is sent when every channel it went out on delivered it."""
    await conn.execute(
        update(customer_notices)
        .where(
            and_(
                customer_notices.c.id == notice_id,
                customer_notices.c.sent_at.is_(None),
                not_(
                    exists().where(
                        and_(
                            notifications.c.notice_id == notice_id,
                            notifications.c.state != "sent",
                        )
                    )
                ),
            )
        )
        .values(sent_at=now)
    )


async def mark_failed(
    engine: AsyncEngine,
    row_id: int,
    holder: str,
    error: str,
    *,
    state: str,
    next_attempt_at: datetime | None = None,
) -> None:
    """Back to ``pending`` (at ``next_attempt_at``), or ``dead`` / ``unconfirmed``."""
    now = utcnow()
    values: dict[str, Any] = {
        "state": state,
        "last_error": error[:ERROR_MAX],
        "updated_at": now,
        "claimed_until": None,
    }
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    async with transaction(engine) as conn:
        await conn.execute(update(notifications).where(_mine(row_id, holder)).values(**values))


async def release_claims(engine: AsyncEngine, holder: str) -> int:
    """A notifier that stops expires its own claims, so its successor need not wait for
    them to time out; the phase still tells whether anything was handed over."""
    async with transaction(engine) as conn:
        result = await conn.execute(
            update(notifications)
            .where(and_(notifications.c.state == "sending", notifications.c.claimed_by == holder))
            .values(claimed_until=utcnow())
        )
    return int(result.rowcount or 0)


async def recover(engine: AsyncEngine, resend_safe: Collection[str]) -> tuple[int, int]:
    """Rows left in ``sending`` by a notifier that died: (due again, unconfirmed)."""
    now = utcnow()
    stale = and_(notifications.c.state == "sending", notifications.c.claimed_until <= now)
    async with transaction(engine) as conn:
        again = await conn.execute(
            update(notifications)
            .where(
                and_(
                    stale,
                    (notifications.c.phase.is_(None))
                    | notifications.c.channel.in_(sorted(resend_safe)),
                )
            )
            .values(state="pending", next_attempt_at=now, claimed_until=None, updated_at=now)
        )
        unknown = await conn.execute(
            update(notifications)
            .where(stale)
            .values(
                state="unconfirmed",
                claimed_until=None,
                updated_at=now,
                last_error=(
                    literal("the notifier stopped after handing this message over; look for ")
                    + literal("Message-ID ")
                    + func.coalesce(notifications.c.message_id, "?")
                    + literal(" in the mail server's log, then mark it sent or retry it")
                ),
            )
        )
    return int(again.rowcount or 0), int(unknown.rowcount or 0)


UNDELIVERED = tuple(state for state in STATES if state != "sent")


async def undelivered_counts(conn: AsyncConnection) -> dict[str, int]:
    """Rows in each state short of ``sent`` (zeros included); sent rows, the bulk of
    the table, are not counted."""
    rows = await conn.execute(
        select(notifications.c.state, func.count())
        .where(notifications.c.state.in_(UNDELIVERED))
        .group_by(notifications.c.state)
    )
    counts = dict.fromkeys(UNDELIVERED, 0)
    counts.update({state: int(n) for state, n in rows})
    return counts


# -- API ---------------------------------------------------------------------------------


def notification_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "key": row.key,
        "order_id": row.order_id,
        "seq": row.seq,
        "notice_id": row.notice_id,
        "kind": row.kind,
        "audience": row.audience,
        "channel": row.channel,
        "recipient": row.recipient,
        "lang": row.lang,
        "subject": row.subject,
        "message_id": row.message_id,
        "state": row.state,
        "attempts": row.attempts,
        "next_attempt_at": as_utc(row.next_attempt_at),
        "last_error": row.last_error,
        "created_at": as_utc(row.created_at),
        "updated_at": as_utc(row.updated_at),
        "sent_at": as_utc(row.sent_at) if row.sent_at else None,
    }


async def list_notifications(
    engine: AsyncEngine,
    *,
    states: Sequence[str] = (),
    order_id: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    unknown = sorted(set(states) - set(STATES))
    if unknown:
        raise ValidationFailed(f"unknown state(s) {', '.join(unknown)}; use {', '.join(STATES)}")
    query = select(notifications)
    if states:
        query = query.where(notifications.c.state.in_(list(states)))
    if order_id:
        query = query.where(notifications.c.order_id == order_id)
    query = query.order_by(notifications.c.id.desc()).limit(limit)
    async with engine.connect() as conn:
        return [notification_view(r) for r in await conn.execute(query)]


async def get_notification(engine: AsyncEngine, row_id: int) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(notifications).where(notifications.c.id == row_id))
        ).first()
    if row is None:
        raise NotFound(f"notification {row_id} does not exist", notification_id=row_id)
    return notification_view(row)


async def _resolve(
    engine: AsyncEngine, row_id: int, allowed: frozenset[str], values: Mapping[str, Any]
) -> dict[str, Any]:
    async with transaction(engine) as conn:
        row = (
            await conn.execute(
                select(notifications).where(notifications.c.id == row_id).with_for_update()
            )
        ).first()
        if row is None:
            raise NotFound(f"notification {row_id} does not exist", notification_id=row_id)
        if row.state not in allowed:
            raise Conflict(
                f"notification {row_id} is {row.state}; this applies to "
                f"{' or '.join(sorted(allowed))} notifications only",
                notification_id=row_id,
            )
        if row.channel == "none":
            raise Conflict(
                f"notification {row_id} has no channel ({row.last_error}); reach the "
                "customer another way",
                notification_id=row_id,
            )
        await conn.execute(
            update(notifications).where(notifications.c.id == row_id).values(**values)
        )
        if values.get("state") == "sent" and row.notice_id is not None:
            await _close_notice(conn, int(row.notice_id), values["sent_at"])
        row = (await conn.execute(select(notifications).where(notifications.c.id == row_id))).one()
    return notification_view(row)


async def retry(engine: AsyncEngine, row_id: int, actor: str) -> dict[str, Any]:
    """Give a dead or unconfirmed notification a fresh set of attempts, now."""
    now = utcnow()
    return await _resolve(
        engine,
        row_id,
        RETRYABLE,
        {
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "phase": None,
            "updated_at": now,
            "last_error": f"retry requested by {actor}",
        },
    )


async def confirm_sent(engine: AsyncEngine, row_id: int, actor: str) -> dict[str, Any]:
    """An unconfirmed e-mail was found in the mail log: record it as sent."""
    now = utcnow()
    return await _resolve(
        engine,
        row_id,
        frozenset({"unconfirmed"}),
        {
            "state": "sent",
            "sent_at": now,
            "updated_at": now,
            "last_error": f"confirmed as sent by {actor}",
        },
    )


async def set_preference(
    engine: AsyncEngine, customer_ref: str, lang: str, actor: str
) -> dict[str, Any]:
    served = match(lang)
    if served is None:
        raise ValidationFailed(f"language {lang!r} is not offered; use {', '.join(offered())}")
    lang = served
    now = utcnow()
    async with transaction(engine) as conn:
        result = await conn.execute(
            update(notification_preferences)
            .where(notification_preferences.c.customer_ref == customer_ref)
            .values(lang=lang, updated_by=actor[:64], updated_at=now)
        )
        if result.rowcount == 0:
            await conn.execute(
                insert(notification_preferences).values(
                    customer_ref=customer_ref, lang=lang, updated_by=actor[:64], updated_at=now
                )
            )
    return {"customer_ref": customer_ref, "lang": lang, "updated_at": now}
