"""Tables of the own fleet: couriers, their absences, day plans with routes and stops.

A plan is one solve for one day (``version`` counts them per day; the unique
``(day, version)`` lets two planners racing for the same day fail instead of both
writing). Its routes stay ``active`` until a later plan of the day replaces them;
locked routes are carried over unchanged. Stops record what happened at the door
(``outcome``), so a re-plan during the day leaves done stops alone and a failed
attempt goes to the next day's plan.

Capacities are the van's: kilograms and cubic metres as people say them. Parcels
are planned in grams and cubic centimetres (integers, exact for the solver).
Shift times are minutes after local midnight in the site's time zone.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from wcs.persistence.models import Base, BigId, Timestamp


class Courier(Base):
    """A driver of our own vans; ``id`` is the subject of the courier's API token."""

    __tablename__ = "couriers"
    __table_args__ = (
        CheckConstraint("capacity_kg > 0", name="capacity_kg_positive"),
        CheckConstraint("capacity_m3 > 0", name="capacity_m3_positive"),
        CheckConstraint(
            "shift_start_min >= 0 AND shift_start_min < shift_end_min AND shift_end_min <= 2880",
            name="shift_order",
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    capacity_kg: Mapped[float] = mapped_column(Float)
    capacity_m3: Mapped[float] = mapped_column(Float)
    shift_start_min: Mapped[int] = mapped_column(Integer)
    shift_end_min: Mapped[int] = mapped_column(Integer)
    depot_lat: Mapped[float] = mapped_column(Float)
    depot_lon: Mapped[float] = mapped_column(Float)
    # Where the shift ends when not back at the start depot (a second hub, home).
    end_lat: Mapped[float | None] = mapped_column(Float)
    end_lon: Mapped[float | None] = mapped_column(Float)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class CourierAbsence(Base):
    """A courier not driving on a day (sick, van broken): plans of that day skip them."""

    __tablename__ = "courier_absences"

    courier_id: Mapped[str] = mapped_column(ForeignKey("couriers.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class FleetParcel(Base):
    """What the dispatcher knows about delivering one own-fleet shipment: the time
    window promised to the customer and a note for the courier."""

    __tablename__ = "fleet_parcels"

    shipment_id: Mapped[str] = mapped_column(ForeignKey("shipments.id"), primary_key=True)
    window_start: Mapped[datetime | None] = mapped_column(Timestamp)
    window_end: Mapped[datetime | None] = mapped_column(Timestamp)
    note: Mapped[str | None] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class FleetPlan(Base):
    __tablename__ = "fleet_plans"
    __table_args__ = (UniqueConstraint("day", "version"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    version: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(32))  # plan, new_parcels, courier_unavailable
    note: Mapped[str | None] = mapped_column(Text)
    solver: Mapped[str] = mapped_column(String(32))
    solve_ms: Mapped[int] = mapped_column(Integer)
    parts: Mapped[int] = mapped_column(Integer)
    stops: Mapped[int] = mapped_column(Integer)
    distance_m: Mapped[int] = mapped_column(Integer)
    # [{"shipment_id", "order_id", "reason"}]: parcels this plan could not route.
    unassigned: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class FleetRoute(Base):
    """One courier's day: status active (current) or replaced (by a later plan)."""

    __tablename__ = "fleet_routes"
    __table_args__ = (Index("ix_fleet_routes_day_status", "day", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("fleet_plans.id"), index=True)
    day: Mapped[date] = mapped_column(Date)
    courier_id: Mapped[str] = mapped_column(ForeignKey("couriers.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    locked_at: Mapped[datetime | None] = mapped_column(Timestamp)
    locked_by: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    depart_at: Mapped[datetime] = mapped_column(Timestamp)
    return_at: Mapped[datetime] = mapped_column(Timestamp)
    distance_m: Mapped[int] = mapped_column(Integer)
    load_g: Mapped[int] = mapped_column(Integer)
    load_cm3: Mapped[int] = mapped_column(Integer)
    replaced_at: Mapped[datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class FleetStop(Base):
    """One parcel on a route, in driving order; ``eta`` is when service starts."""

    __tablename__ = "fleet_stops"
    __table_args__ = (UniqueConstraint("route_id", "seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    route_id: Mapped[str] = mapped_column(ForeignKey("fleet_routes.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    shipment_id: Mapped[str] = mapped_column(ForeignKey("shipments.id"), index=True)
    order_id: Mapped[str] = mapped_column(String(40))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    geo_source: Mapped[str] = mapped_column(String(16))  # order, postal_code
    window_start: Mapped[datetime | None] = mapped_column(Timestamp)
    window_end: Mapped[datetime | None] = mapped_column(Timestamp)
    eta: Mapped[datetime] = mapped_column(Timestamp)
    weight_g: Mapped[int] = mapped_column(Integer)
    volume_cm3: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str | None] = mapped_column(String(16))  # delivered, failed
    outcome_at: Mapped[datetime | None] = mapped_column(Timestamp)
    outcome_note: Mapped[str | None] = mapped_column(Text)
    # Delivery attempts today: a failed stop tried again the same day counts up.
    attempt: Mapped[int] = mapped_column(Integer, server_default=text("1"))
