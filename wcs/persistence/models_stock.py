"""Inventory accuracy and pick faces: faces with their minimum and maximum, cycle
counts, replenishment moves and the audit of every booked difference."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from wcs.persistence.models import Base, BigId, Timestamp


class PickFace(Base):
    """A pick location assigned to one SKU, replenished from reserve between its
    minimum and its maximum."""

    __tablename__ = "pick_faces"
    __table_args__ = (
        CheckConstraint("min_qty >= 0", name="min_nonneg"),
        CheckConstraint("max_qty > 0 AND max_qty >= min_qty", name="max_over_min"),
    )

    location: Mapped[str] = mapped_column(ForeignKey("locations.code"), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("skus.sku"), index=True)
    min_qty: Mapped[int] = mapped_column(Integer)
    max_qty: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class CountTask(Base):
    """A count of one SKU at one location, carried out by the station that owns the
    location (its pick station, else ``floor``: counted over the API). The book is
    not kept here before the count is keyed: counts are blind."""

    __tablename__ = "count_tasks"
    __table_args__ = (
        Index("ix_count_tasks_station_state", "station", "state"),
        Index("ix_count_tasks_pile", "location", "sku", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(String(32))
    station: Mapped[str] = mapped_column(String(80))
    # short_pick, mispick, zero, abc, supervisor, move_short
    reason: Mapped[str] = mapped_column(String(16))
    # open, counting, recount, review, done, cancelled
    state: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    first_delta: Mapped[int | None] = mapped_column(Integer)
    first_by: Mapped[str | None] = mapped_column(String(64))
    last_delta: Mapped[int | None] = mapped_column(Integer)
    last_by: Mapped[str | None] = mapped_column(String(64))
    counted: Mapped[int | None] = mapped_column(Integer)  # units the latest count found
    result: Mapped[str | None] = mapped_column(String(16))  # matched, adjusted
    note: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
    closed_at: Mapped[datetime | None] = mapped_column(Timestamp)


class MoveTask(Base):
    """Units to bring from a reserve location to a pick face, by the face's station."""

    __tablename__ = "move_tasks"
    __table_args__ = (Index("ix_move_tasks_station_state", "station", "state"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(String(64))
    src: Mapped[str] = mapped_column(String(32))
    dst: Mapped[str] = mapped_column(String(32))
    qty: Mapped[int] = mapped_column(Integer)
    moved: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(16))  # min, demand
    state: Mapped[str] = mapped_column(String(16))  # open, active, done, short, cancelled
    station: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
    done_at: Mapped[datetime | None] = mapped_column(Timestamp)


class StockAdjustment(Base):
    """Audit of a booked count difference: the pile, the book and the count, who
    counted and who accepted, when, and the orders planned again because of it."""

    __tablename__ = "stock_adjustments"
    __table_args__ = (Index("ix_stock_adjustments_pile_at", "location", "sku", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    count_id: Mapped[int | None] = mapped_column(Integer, index=True)
    sku: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(String(32))
    book: Mapped[int] = mapped_column(Integer)
    counted: Mapped[int] = mapped_column(Integer)
    delta: Mapped[int] = mapped_column(Integer)
    value_minor: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(16))
    counted_by: Mapped[str] = mapped_column(String(64))
    accepted_by: Mapped[str] = mapped_column(String(64))
    replanned: Mapped[list[str]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(Timestamp, index=True)
