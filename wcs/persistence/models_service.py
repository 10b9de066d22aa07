"""Customer service and customer self-service: order corrections and used links."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from wcs.persistence.models import Base, BigId, Timestamp


class OrderCorrection(Base):
    """Append-only: customer service corrected an order (who, why, what changed)."""

    __tablename__ = "order_corrections"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    # {"field": [before, after], ...}; lines as lists of [sku, qty].
    changes: Mapped[dict[str, object]] = mapped_column(JSON)
    from_state: Mapped[str] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime] = mapped_column(Timestamp)


class LinkUse(Base):
    """A single-use customer link that has been used (its id is in the signed link)."""

    __tablename__ = "link_uses"

    link_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(24))
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    used_at: Mapped[datetime] = mapped_column(Timestamp)
