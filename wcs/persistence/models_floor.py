"""Floor state the controller owns: waves, pick batches and tasks, totes, packages,
QC checks and the command log."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from wcs.persistence.models import Base, BigId, Timestamp


class Wave(Base):
    __tablename__ = "waves"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    released_at: Mapped[datetime] = mapped_column(Timestamp)
    released_by: Mapped[str] = mapped_column(String(64))
    orders: Mapped[int] = mapped_column(Integer)
    distance_m: Mapped[float] = mapped_column(Float)
    baseline_m: Mapped[float] = mapped_column(Float)  # order-by-order S-shape, same orders


class PickBatch(Base):
    """One cart round: several orders, one route through the aisles."""

    __tablename__ = "pick_batches"
    __table_args__ = (Index("ix_pick_batches_station_state", "station", "state"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    wave_id: Mapped[str] = mapped_column(ForeignKey("waves.id"))
    station: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="open")  # open, active, done
    zone: Mapped[str] = mapped_column(String(16))
    distance_m: Mapped[float] = mapped_column(Float)
    stops: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class PickTask(Base):
    """Units of one order line to take from one location (one reservation)."""

    __tablename__ = "pick_tasks"
    __table_args__ = (
        Index("ix_pick_tasks_batch_seq", "batch_id", "seq"),
        Index("ix_pick_tasks_order", "order_id"),
        Index("ix_pick_tasks_slot_state", "ptl_device", "ptl_slot", "state"),
        # Partial: every scan looks for the lit tasks of a batch and every finished
        # task for what is still open; done tasks pile up in a long wave and must not
        # be walked over each time.
        Index(
            "ix_pick_tasks_open",
            "batch_id",
            "seq",
            postgresql_where=text("state IN ('open', 'lit')"),
            sqlite_where=text("state IN ('open', 'lit')"),
        ),
        Index(
            "ix_pick_tasks_lit",
            "batch_id",
            "sku",
            postgresql_where=text("state = 'lit'"),
            sqlite_where=text("state = 'lit'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("pick_batches.id"))
    seq: Mapped[int] = mapped_column(Integer)  # walking order within the batch
    order_id: Mapped[str] = mapped_column(String(40))
    line_id: Mapped[int] = mapped_column(Integer)
    reservation_id: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(String(32))
    qty: Mapped[int] = mapped_column(Integer)
    qty_picked: Mapped[int] = mapped_column(Integer, default=0)
    # open -> lit -> done | short (re-planned) | cancelled
    state: Mapped[str] = mapped_column(String(16), default="open")
    ptl_device: Mapped[str | None] = mapped_column(String(64))
    ptl_slot: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class Tote(Base):
    __tablename__ = "totes"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str | None] = mapped_column(String(40), index=True)
    # free, picking, to_qc, qc, to_pack, packing, to_outbound, outbound, exception
    state: Mapped[str] = mapped_column(String(16), default="free")
    station: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class QcCheck(Base):
    __tablename__ = "qc_checks"

    order_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    station: Mapped[str | None] = mapped_column(String(64))
    scanned: Mapped[dict[str, int]] = mapped_column(JSON)
    packaging_ok: Mapped[bool | None] = mapped_column(Boolean)
    appearance_ok: Mapped[bool | None] = mapped_column(Boolean)
    result: Mapped[str | None] = mapped_column(String(16))  # passed, failed
    note: Mapped[str | None] = mapped_column(Text)
    # The operator's photo with the verdict: path under the data directory, and its hash.
    photo: Mapped[str | None] = mapped_column(String(300))
    photo_sha256: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class Package(Base):
    """A parcel being packed and labelled; the SSCC identifies it from then on."""

    __tablename__ = "packages"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    station: Mapped[str] = mapped_column(String(64))
    carton: Mapped[str] = mapped_column(String(16))
    expected_g: Mapped[float] = mapped_column(Float)
    measured_g: Mapped[float | None] = mapped_column(Float)
    sscc: Mapped[str | None] = mapped_column(String(18), unique=True)
    printer: Mapped[str | None] = mapped_column(String(64))
    # weighing, labelling, awaiting_scan, packed, rejected
    state: Mapped[str] = mapped_column(String(16))
    document: Mapped[dict[str, object] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class DeviceCommand(Base):
    """Every command sent to a device and its acknowledgement."""

    __tablename__ = "device_commands"
    __table_args__ = (Index("ix_device_commands_pending", "acked_at", "created_at"),)

    cmd_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(String(64))  # order, tote or package
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    acked_at: Mapped[datetime | None] = mapped_column(Timestamp)
    ok: Mapped[bool | None] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)


class SequenceCounter(Base):
    """Monotonic counters (SSCC serials) that survive restarts and several processes."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigId)


class StationRow(Base):
    """A unit of floor ownership: a station (pick, QC, pack), a conveyor point, or the
    floor's planner. Exactly one controller instance holds it at a time: ``holder``
    until ``expires_at``; ``epoch`` grows with every change of holder, so a batch
    committed by an instance that lost the station is refused (fencing)."""

    __tablename__ = "stations"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # pick, qc, pack, conveyor, floor
    holder: Mapped[str | None] = mapped_column(String(64))
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # A pack station without a working printer is down: the conveyor sends totes elsewhere.
    down: Mapped[bool] = mapped_column(Boolean, default=False)
    down_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class ControllerInstance(Base):
    """A live controller process: stations are shared out among the fresh ones."""

    __tablename__ = "controller_instances"

    instance: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(Timestamp)
    seen_at: Mapped[datetime] = mapped_column(Timestamp)


class FloorRequest(Base):
    """An action on floor state asked by someone who does not own it (the API): the
    owning station applies it in order with its device events and writes the result."""

    __tablename__ = "floor_requests"
    __table_args__ = (Index("ix_floor_requests_pending", "station", "state"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    station: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(24))  # cancel, qc_verdict, qc_resolve, wave, ...
    order_id: Mapped[str | None] = mapped_column(String(40))
    body: Mapped[dict[str, object]] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending, done, refused
    result: Mapped[dict[str, object] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    done_at: Mapped[datetime | None] = mapped_column(Timestamp)


class PickedUnit(Base):
    """A unit picked with traceable data on its label (lot, date, serial): for recalls."""

    __tablename__ = "picked_units"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(Timestamp)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    gtin: Mapped[str | None] = mapped_column(String(14))
    lot: Mapped[str | None] = mapped_column(String(20), index=True)
    use_by: Mapped[date | None] = mapped_column(Date)
    serial: Mapped[str | None] = mapped_column(String(20))
    station: Mapped[str | None] = mapped_column(String(64))
    device_id: Mapped[str | None] = mapped_column(String(64))
