"""Tables of delivery and after-sales: shipments, tracking, proof of delivery,
sign-off, claims, customer notices and returns (design §1 steps 6-8).

Money is stored in integer minor units (cents) with its currency: exact on both
databases, where a float or SQLite's Numeric would round.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from wcs.persistence.models import Base, BigId, Timestamp


class Shipment(Base):
    """One parcel of an order with one carrier.

    status: pending (being booked), booked, then the tracking statuses (shipped,
    in_transit, out_for_delivery, delivered, delivery_failed, delayed, damaged), or
    cancelled (a booking replaced by another). An order has at most one shipment that
    is neither pending nor cancelled; the id is the carrier's idempotency key.
    """

    __tablename__ = "shipments"
    __table_args__ = (
        Index("ix_shipments_order_status", "order_id", "status"),
        Index("ix_shipments_status_due", "status", "delivery_due"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    status: Mapped[str] = mapped_column(String(24))
    carrier: Mapped[str] = mapped_column(String(32))
    carrier_name: Mapped[str] = mapped_column(String(100))
    service: Mapped[str] = mapped_column(String(16))
    own_fleet: Mapped[bool] = mapped_column(Boolean, default=False)
    weight_g: Mapped[float] = mapped_column(Float)
    length_mm: Mapped[int] = mapped_column(Integer)
    width_mm: Mapped[int] = mapped_column(Integer)
    height_mm: Mapped[int] = mapped_column(Integer)
    cost_minor: Mapped[int | None] = mapped_column(Integer)
    currency: Mapped[str | None] = mapped_column(String(3))
    tracking_no: Mapped[str | None] = mapped_column(String(64), unique=True)
    label_format: Mapped[str | None] = mapped_column(String(8))
    label_data: Mapped[str | None] = mapped_column(Text)
    courier_id: Mapped[str | None] = mapped_column(String(64), index=True)
    choice: Mapped[list[str] | None] = mapped_column(JSON)  # why this carrier and service
    last_error: Mapped[str | None] = mapped_column(Text)
    delivery_due: Mapped[datetime | None] = mapped_column(Timestamp)
    delay_alerted_at: Mapped[datetime | None] = mapped_column(Timestamp)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    booked_at: Mapped[datetime | None] = mapped_column(Timestamp)
    shipped_at: Mapped[datetime | None] = mapped_column(Timestamp)
    delivered_at: Mapped[datetime | None] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class ShipmentEvent(Base):
    """Append-only log of a shipment: bookings, handover, courier changes and every
    tracking event received, including refused ones (outcome says what it did).

    outcome: applied (moved the order), unchanged (order already there), refused
    (illegal for the order's state), recorded (no order effect: bookings, notes).
    ``event_key`` is ``<source>:<sender's event id>``; a repeat has no second effect.
    """

    __tablename__ = "shipment_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    shipment_id: Mapped[str] = mapped_column(ForeignKey("shipments.id"), index=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    event_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    source: Mapped[str] = mapped_column(String(16))  # carrier, courier, dispatcher, system
    kind: Mapped[str] = mapped_column(String(24))  # tracking, booked, handover, courier, ...
    status: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    order_seq: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)  # as the sender wrote it
    location: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)  # ours: why refused, what it did
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(Timestamp)
    received_at: Mapped[datetime] = mapped_column(Timestamp)


class ProofOfDelivery(Base):
    """The courier's evidence; files live under ``pod_dir`` named by their SHA-256."""

    __tablename__ = "proofs_of_delivery"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    shipment_id: Mapped[str] = mapped_column(ForeignKey("shipments.id"), unique=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    courier_id: Mapped[str] = mapped_column(String(64))
    receiver_name: Mapped[str] = mapped_column(String(200))
    delivered_at: Mapped[datetime] = mapped_column(Timestamp)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    # Over the files' hashes: the same files again are the same proof.
    content_sha256: Mapped[str] = mapped_column(String(64))
    photo_sha256: Mapped[str | None] = mapped_column(String(64))
    photo_type: Mapped[str | None] = mapped_column(String(16))
    photo_bytes: Mapped[int | None] = mapped_column(Integer)
    photo_path: Mapped[str | None] = mapped_column(String(200))
    signature_sha256: Mapped[str | None] = mapped_column(String(64))
    signature_type: Mapped[str | None] = mapped_column(String(16))
    signature_bytes: Mapped[int | None] = mapped_column(Integer)
    signature_path: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class SignOff(Base):
    """How a delivered order was closed: by the customer (with a rating) or by timeout."""

    __tablename__ = "sign_offs"
    __table_args__ = (
        CheckConstraint("rating IS NULL OR (rating >= 1 AND rating <= 5)", name="rating_range"),
    )

    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # customer, auto
    rating: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(Timestamp)


class Claim(Base):
    """A claim against the carrier for a parcel damaged in transit, and its reshipment."""

    __tablename__ = "claims"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    shipment_id: Mapped[str] = mapped_column(ForeignKey("shipments.id"))
    kind: Mapped[str] = mapped_column(String(16))  # damaged
    carrier: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))  # open, reshipped
    detail: Mapped[str | None] = mapped_column(Text)
    replacement_order_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class CustomerNotice(Base):
    """A message owed to the customer (delay, failed attempt, reshipment, refund...).

    Written in the transaction of the event that causes it; a notifier sends it and
    sets ``sent_at``.
    """

    __tablename__ = "customer_notices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(8))  # email, sms, none
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp)


class Return(Base):
    """A return (RMA) of some lines of one order; ``id`` is the RMA number on the label."""

    __tablename__ = "returns"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    requested_by: Mapped[str] = mapped_column(String(64))
    label_format: Mapped[str] = mapped_column(String(8))
    label_data: Mapped[str] = mapped_column(Text)
    resolution: Mapped[str | None] = mapped_column(String(16))  # refund, exchange, rejected
    refund_minor: Mapped[int | None] = mapped_column(Integer)
    currency: Mapped[str | None] = mapped_column(String(3))
    replacement_order_id: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)
    # What the customer asked for (refund or exchange) and, for an exchange, the variant
    # per line: {"<line_no>": "<sku>"}; the after-sales desk resolves accordingly.
    customer_choice: Mapped[str | None] = mapped_column(String(16))
    exchange_skus: Mapped[dict[str, str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class ReturnLine(Base):
    """One order line in a return; its state follows ``RETURN_TRANSITIONS``."""

    __tablename__ = "return_lines"
    __table_args__ = (
        UniqueConstraint("return_id", "line_no"),
        CheckConstraint("qty > 0", name="qty_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    return_id: Mapped[str] = mapped_column(ForeignKey("returns.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"))
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(64))
    qty: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(24))
    grade: Mapped[str | None] = mapped_column(String(16))  # resellable, refurbish, scrap
    restocked_location: Mapped[str | None] = mapped_column(String(32))


class ReturnEvent(Base):
    """Append-only: one row per return line state change."""

    __tablename__ = "return_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    return_id: Mapped[str] = mapped_column(ForeignKey("returns.id"), index=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    from_state: Mapped[str | None] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(Timestamp)
