"""Tables of customer communication, both ways.

Out: ``notify_requests`` is written in the transaction of the order state change it
announces (so the change and the promise to tell someone commit together), and the
notifier expands each request, and each unsent ``customer_notices`` row, into one
``notifications`` row per channel. That row is the unit of delivery: its ``key``
(order, event seq, channel) is the idempotency key, its ``state`` says how far it got.

In: ``backorder_choices`` (the customer's answer to a backorder notice) and
``feedback`` (suggestions and complaints, tagged with the process stage).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from wcs.persistence.models import Base, BigId, Timestamp


class NotifyRequest(Base):
    """An order event someone must hear about; ``expanded_at`` is set once the notifier
    has turned it into per-channel notifications."""

    __tablename__ = "notify_requests"
    __table_args__ = (
        UniqueConstraint("order_id", "seq"),
        Index("ix_notify_requests_pending", "expanded_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    expanded_at: Mapped[datetime | None] = mapped_column(Timestamp)


class Notification(Base):
    """One message on one channel to one recipient.

    state: pending (due at ``next_attempt_at``), sending (claimed by ``claimed_by``;
    ``phase`` 'handover' once the message was handed to the channel), sent, dead
    (undeliverable or out of attempts), unconfirmed (the sender stopped after handing
    it over: it may have arrived; a person checks and retries or marks it sent).
    """

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    seq: Mapped[int | None] = mapped_column(Integer)
    notice_id: Mapped[int | None] = mapped_column(BigId, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    audience: Mapped[str] = mapped_column(String(16))  # customer, staff
    channel: Mapped[str] = mapped_column(String(16))  # email, sms, none
    recipient: Mapped[str | None] = mapped_column(String(254))
    lang: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(250))
    state: Mapped[str] = mapped_column(String(16))
    phase: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(Timestamp)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(Timestamp)
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_ref: Mapped[str | None] = mapped_column(String(250))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp)


class NotificationPreference(Base):
    """A customer's language for notifications, by customer ref (the token subject)."""

    __tablename__ = "notification_preferences"

    customer_ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    lang: Mapped[str] = mapped_column(String(8))
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class BackorderChoice(Base):
    """Append-only: what the customer chose for a backordered order, and what it did."""

    __tablename__ = "backorder_choices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    choice: Mapped[str] = mapped_column(String(16))  # wait, cancel, substitute
    replaced_sku: Mapped[str | None] = mapped_column(String(64))
    substitute_sku: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(24))  # order state afterwards
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(Timestamp)


class Feedback(Base):
    """A suggestion or complaint about one stage of the process.

    status: open -> accepted | rejected -> done; ``history`` keeps every triage step.
    """

    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_status_stage", "status", "stage"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # suggestion, complaint
    stage: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"), index=True)
    author: Mapped[str] = mapped_column(String(64))
    author_role: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    triage_note: Mapped[str | None] = mapped_column(Text)
    triaged_by: Mapped[str | None] = mapped_column(String(64))
    triaged_at: Mapped[datetime | None] = mapped_column(Timestamp)
    history: Mapped[list[dict[str, object]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp, index=True)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
