"""Proof of delivery from the courier's phone: out_for_delivery -> delivered (design §1 step 7).

Checks, all before anything is written:

- Only the courier the shipment is assigned to may deliver it.
- At least one image: a photo of the parcel at the door and/or the receiver's
  signature. Each at most ``settings.pod_max_bytes``.
- An image is accepted for what its first bytes say (JPEG, PNG or WebP), never for
  its file name or declared content type: a PDF or text renamed ``.jpg`` is refused.

Storage: ``<pod_dir>/<shipment id>/<photo|signature>-<sha256>.<ext>``, written to a
temporary name and renamed, so a reader never sees half a file. The SHA-256 of each
file is in the database next to its path; the proof's identity is the hash over
both files. The same files sent again (a phone retrying on a flaky network) answer
the stored proof and change nothing; different files once the order is delivered
are refused (409). Files written for an upload whose transaction then fails are
removed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wcs.contract.topics import Topics
from wcs.domain.delivery import EXTENSION, ImageType, describe_bytes, sniff_image
from wcs.domain.states import OrderState
from wcs.errors import Conflict, Forbidden, IllegalTransition, NotFound, ValidationFailed
from wcs.persistence.db import transaction
from wcs.persistence.orders import transition
from wcs.persistence.tables import orders, proofs_of_delivery, shipments
from wcs.services.shipments import lock_shipment, log_shipment_event
from wcs.timeutil import as_utc, utcnow

S = OrderState
KINDS = ("photo", "signature")


class UploadTooLarge(ValidationFailed):
    code = "too_large"


class UnsupportedImage(ValidationFailed):
    code = "unsupported_media_type"


@dataclass(frozen=True, slots=True)
class PodImage:
    kind: str  # photo, signature
    data: bytes
    media_type: ImageType
    sha256: str

    @property
    def relative_path(self) -> str:
        return f"{self.kind}-{self.sha256}.{EXTENSION[self.media_type]}"


def check_image(kind: str, data: bytes, *, max_bytes: int, filename: str | None) -> PodImage:
    """Size and type of one uploaded file; UploadTooLarge / UnsupportedImage otherwise."""
    name = f"{kind} {filename!r}" if filename else kind
    if len(data) > max_bytes:
        raise UploadTooLarge(
            f"{name} is {len(data)} bytes; the limit is {max_bytes} bytes. Send a smaller "
            "photo (lower the camera resolution)",
            field=kind,
        )
    media_type = sniff_image(data)
    if media_type is None:
        raise UnsupportedImage(
            f"{name} is {describe_bytes(data)}, not a JPEG, PNG or WebP image; "
            "send a photo taken with the app's camera",
            field=kind,
        )
    return PodImage(kind, data, media_type, hashlib.sha256(data).hexdigest())


@dataclass(frozen=True, slots=True)
class PodSubmission:
    receiver_name: str
    delivered_at: datetime
    photo: PodImage | None = None
    signature: PodImage | None = None
    lat: float | None = None
    lon: float | None = None

    def __post_init__(self) -> None:
        if self.photo is None and self.signature is None:
            raise ValidationFailed(
                "send a photo or a signature image (or both) as proof of delivery"
            )
        if not self.receiver_name.strip():
            raise ValidationFailed("receiver_name is empty; write who took the parcel")
        if (self.lat is None) != (self.lon is None):
            raise ValidationFailed("send both lat and lon, or neither")

    @property
    def images(self) -> tuple[PodImage, ...]:
        return tuple(i for i in (self.photo, self.signature) if i is not None)

    @property
    def content_sha256(self) -> str:
        parts = [f"{i.kind}:{i.sha256}" for i in self.images]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PodResult:
    created: bool
    pod: dict[str, Any]


def pod_view(row: Row[Any]) -> dict[str, Any]:
    def image(kind: str) -> dict[str, Any] | None:
        sha = getattr(row, f"{kind}_sha256")
        if sha is None:
            return None
        return {
            "sha256": sha,
            "media_type": getattr(row, f"{kind}_type"),
            "bytes": getattr(row, f"{kind}_bytes"),
            "path": getattr(row, f"{kind}_path"),
        }

    return {
        "shipment_id": row.shipment_id,
        "order_id": row.order_id,
        "courier_id": row.courier_id,
        "receiver_name": row.receiver_name,
        "delivered_at": as_utc(row.delivered_at),
        "lat": row.lat,
        "lon": row.lon,
        "content_sha256": row.content_sha256,
        "photo": image("photo"),
        "signature": image("signature"),
        "recorded_at": as_utc(row.created_at),
    }


async def _existing(conn: AsyncConnection, shipment_id: str) -> Row[Any] | None:
    return (
        await conn.execute(
            select(proofs_of_delivery).where(proofs_of_delivery.c.shipment_id == shipment_id)
        )
    ).first()


def _check(
    head_state: str,
    ship: Row[Any],
    existing: Row[Any] | None,
    submission: PodSubmission,
    courier_id: str,
) -> PodResult | None:
    """Decide before writing; a PodResult means "already recorded, answer it"."""
    if ship.courier_id != courier_id:
        raise Forbidden(
            f"shipment {ship.id} is not assigned to you (courier {courier_id}); "
            "ask the dispatcher to assign it before delivering",
            shipment_id=ship.id,
        )
    if existing is not None:
        if existing.content_sha256 == submission.content_sha256:
            return PodResult(False, pod_view(existing))
        raise Conflict(
            f"shipment {ship.id} already has a proof of delivery (recorded "
            f"{as_utc(existing.created_at).isoformat()}) with other images; it cannot "
            "be replaced. Tell the dispatcher if it was wrong",
            shipment_id=ship.id,
        )
    if head_state != S.OUT_FOR_DELIVERY:
        raise IllegalTransition(
            ship.order_id,
            head_state,
            S.DELIVERED,
            "a proof of delivery is accepted while the parcel is out for delivery",
        )
    return None


def _write_atomically(path: Path, data: bytes) -> bool:
    """Write if absent; True when this call created the file."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return True


def _remove(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    for parent in {p.parent for p in paths}:
        with contextlib.suppress(OSError):
            parent.rmdir()  # only when empty


async def record_pod(
    engine: AsyncEngine,
    topics: Topics,
    shipment_id: str,
    submission: PodSubmission,
    *,
    courier_id: str,
    pod_dir: Path,
) -> PodResult:
    """Store the proof and move the order out_for_delivery -> delivered."""
    # Stored as UTC: SQLite would otherwise keep the wall time and drop the offset.
    delivered_at = as_utc(submission.delivered_at)
    async with engine.connect() as conn:
        ship = (await conn.execute(select(shipments).where(shipments.c.id == shipment_id))).first()
        if ship is None:
            raise NotFound(f"shipment {shipment_id} does not exist", shipment_id=shipment_id)
        state = await conn.scalar(select(orders.c.state).where(orders.c.id == ship.order_id))
        answer = _check(
            str(state), ship, await _existing(conn, shipment_id), submission, courier_id
        )
    if answer is not None:
        return answer

    folder = pod_dir / shipment_id
    created: list[Path] = []
    for image in submission.images:
        path = folder / image.relative_path
        if await asyncio.to_thread(_write_atomically, path, image.data):
            created.append(path)
    try:
        async with transaction(engine) as conn:
            head, ship = await lock_shipment(conn, shipment_id)
            answer = _check(
                head.state, ship, await _existing(conn, shipment_id), submission, courier_id
            )
            if answer is not None:
                return answer
            now = utcnow()
            event = await transition(
                conn,
                topics,
                ship.order_id,
                S.DELIVERED,
                actor=f"courier:{courier_id}",
                reason=f"proof of delivery: received by {submission.receiver_name}",
                at=now,
            )
            values: dict[str, Any] = {
                "shipment_id": shipment_id,
                "order_id": ship.order_id,
                "courier_id": courier_id,
                "receiver_name": submission.receiver_name.strip()[:200],
                "delivered_at": delivered_at,
                "lat": submission.lat,
                "lon": submission.lon,
                "content_sha256": submission.content_sha256,
                "created_at": now,
            }
            for image in submission.images:
                values |= {
                    f"{image.kind}_sha256": image.sha256,
                    f"{image.kind}_type": image.media_type,
                    f"{image.kind}_bytes": len(image.data),
                    f"{image.kind}_path": f"{shipment_id}/{image.relative_path}",
                }
            await conn.execute(insert(proofs_of_delivery).values(**values))
            await conn.execute(
                update(shipments)
                .where(shipments.c.id == shipment_id)
                .values(status="delivered", delivered_at=delivered_at, updated_at=now)
            )
            await log_shipment_event(
                conn,
                shipment_id=shipment_id,
                order_id=ship.order_id,
                source="courier",
                kind="pod",
                status="delivered",
                outcome="applied",
                order_seq=event.seq,
                actor=f"courier:{courier_id}",
                note="proof of delivery: "
                + " and ".join(i.kind for i in submission.images)
                + f", sha256 {submission.content_sha256[:16]}",
                at=delivered_at,
            )
            row = await _existing(conn, shipment_id)
            assert row is not None
            return PodResult(True, pod_view(row))
    except BaseException:
        await asyncio.to_thread(_remove, created)
        raise


async def get_pod(engine: AsyncEngine, shipment_id: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = await _existing(conn, shipment_id)
    if row is None:
        raise NotFound(f"shipment {shipment_id} has no proof of delivery", shipment_id=shipment_id)
    return pod_view(row)
