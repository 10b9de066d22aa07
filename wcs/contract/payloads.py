"""Payload models for every row of the MQTT contract.

Every payload is a JSON object with ``v`` (schema version) and ``ts`` (RFC 3339 UTC).
Unknown extra fields are ignored so a newer publisher does not break an older
subscriber; a wrong ``v``, a missing field or a wrong type is a validation error,
which the receiver sends to ``dlq``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from wcs.errors import ValidationFailed
from wcs.timeutil import as_utc, rfc3339, utcnow

SCHEMA_VERSION: Literal[1] = 1
MAX_PAYLOAD_BYTES = 64 * 1024
DLQ_RAW_LIMIT = 1024

Timestamp = Annotated[datetime, PlainSerializer(rfc3339, return_type=str)]
DeviceKind = Literal["scanner", "scale", "printer", "ptl", "diverter"]
Zone = Literal["pick", "qc", "pack", "outbound", "exception", "returns"]
Lane = Literal["qc", "pack", "outbound", "exception"]
Severity = Literal["info", "warning", "critical"]
MsgId = Annotated[str, Field(min_length=1, max_length=128)]


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    v: Literal[1] = SCHEMA_VERSION
    ts: Timestamp = Field(default_factory=utcnow)

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return as_utc(value)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


# --- device status -------------------------------------------------------------


class DeviceStatus(Payload):
    state: Literal["online", "offline", "fault"]
    kind: DeviceKind
    zone: Zone
    detail: str | None = Field(default=None, max_length=500)


class ControllerStatus(Payload):
    """A controller's presence: ``online`` when it connects, ``offline`` as its Last
    Will (or said on a clean stop)."""

    state: Literal["online", "offline"]
    instance: str = Field(min_length=1, max_length=64)


# --- device events ---------------------------------------------------------------


class ScanEvent(Payload):
    msg_id: MsgId
    code: str = Field(min_length=1, max_length=4096)
    symbology: str | None = Field(default=None, pattern=r"^\][A-Za-z][0-9A-Za-z]$")


class WeightEvent(Payload):
    msg_id: MsgId
    grams: float = Field(ge=-1_000_000, le=10_000_000, allow_inf_nan=False)
    stable: bool


class ConfirmEvent(Payload):
    msg_id: MsgId
    slot: int = Field(ge=0, le=65535)
    qty: int = Field(ge=0, le=65535)


class ArrivalEvent(Payload):
    msg_id: MsgId
    tote: str = Field(min_length=1, max_length=128)
    point: str = Field(min_length=1, max_length=64)


DeviceEvent = ScanEvent | WeightEvent | ConfirmEvent | ArrivalEvent

EVENT_MODELS: dict[str, type[Payload]] = {
    "scan": ScanEvent,
    "weight": WeightEvent,
    "confirm": ConfirmEvent,
    "arrival": ArrivalEvent,
}


# --- commands --------------------------------------------------------------------


class Command(Payload):
    cmd_id: MsgId
    # msg_id of the event that caused this command (tracing and latency measurement).
    cause: str | None = Field(default=None, max_length=160)


class LightCommand(Command):
    """Light one PTL slot and show a quantity."""

    slot: int = Field(ge=0, le=65535)
    qty: int = Field(ge=0, le=9999)
    color: Literal["green", "red", "blue", "yellow", "white"] = "green"
    blink: bool = False


class ClearCommand(Command):
    """Turn a slot off, or every slot of the panel when ``slot`` is null."""

    slot: int | None = Field(default=None, ge=0, le=65535)


class RouteCommand(Command):
    """Send a tote down a lane; ``station`` picks one pack station when lane is pack."""

    tote: str = Field(min_length=1, max_length=128)
    lane: Lane
    station: str | None = Field(default=None, max_length=64)


class PrintCommand(Command):
    """A print job: ZPL II formats, or a PDF (base64) for a printer that prints PDF
    directly (a carrier's own label often comes as one). Exactly one of the two."""

    zpl: str | None = Field(default=None, min_length=5, max_length=256 * 1024)
    pdf: str | None = Field(default=None, min_length=8, max_length=MAX_PAYLOAD_BYTES)
    job_id: str | None = Field(default=None, max_length=128)

    @model_validator(mode="after")
    def _one_document(self) -> PrintCommand:
        if (self.zpl is None) == (self.pdf is None):
            raise ValueError("give either zpl or pdf")
        return self


class TareCommand(Command):
    """Tare the scale: at the next stable weight (MT-SICS ``T``), at once whatever the
    pan does (``immediate``: ``TI``), or to a known container weight (``preset_g``:
    ``TA``) without the container on the pan."""

    preset_g: float | None = Field(default=None, ge=0, le=1_000_000, allow_inf_nan=False)
    immediate: bool = False


class ZeroCommand(Command):
    """Zero the scale at the next stable weight (``Z``), or at once (``immediate``: ``ZI``)."""

    immediate: bool = False


class WeighCommand(Command):
    """Ask the scale for a stable weight now (published as ``evt/weight``); with
    ``dynamic`` the moving readings on the way are published too, as ``stable: false``."""

    dynamic: bool = False


class ResetCommand(Command):
    """Reset the scale (MT-SICS ``@``): cancels what it is doing, clears the tare."""


COMMAND_MODELS: dict[str, type[Command]] = {
    "light": LightCommand,
    "clear": ClearCommand,
    "route": RouteCommand,
    "print": PrintCommand,
    "tare": TareCommand,
    "zero": ZeroCommand,
    "weigh": WeighCommand,
    "reset": ResetCommand,
}


class Ack(Payload):
    cmd_id: MsgId
    ok: bool
    error: str | None = Field(default=None, max_length=1000)


# --- orders, alerts, dead letters ------------------------------------------------------


class OrderStateChange(Payload):
    order_id: str
    seq: int = Field(ge=1)
    from_: str | None = Field(alias="from")
    to: str
    reason: str | None = None


class Alert(Payload):
    code: str = Field(min_length=1, max_length=64)
    message: str = Field(max_length=2000)
    subject: str | None = Field(default=None, max_length=200)


class DlqMessage(Payload):
    topic: str
    raw: str = Field(max_length=DLQ_RAW_LIMIT * 4 + 16)
    error: str


# --- helpers -------------------------------------------------------------------------

P = TypeVar("P", bound=Payload)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse_payload(model: type[P], raw: bytes | str) -> P:
    """Parse raw JSON into ``model`` or raise ValidationFailed with a precise reason."""
    size = len(raw)
    if size > MAX_PAYLOAD_BYTES:
        raise ValidationFailed(f"payload is {size} bytes, limit is {MAX_PAYLOAD_BYTES}")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise ValidationFailed(f"payload is not valid JSON: {_describe(exc)}") from None
        reason = _describe(exc)
        raise ValidationFailed(f"payload does not match {model.__name__}: {reason}") from None


def parse_event(kind: str, raw: bytes | str) -> DeviceEvent:
    model = EVENT_MODELS.get(kind)
    if model is None:
        raise ValidationFailed(f"unknown event kind {kind!r}")
    event = parse_payload(model, raw)
    assert isinstance(event, ScanEvent | WeightEvent | ConfirmEvent | ArrivalEvent)
    return event


def parse_command(name: str, raw: bytes | str) -> Command:
    model = COMMAND_MODELS.get(name)
    if model is None:
        raise ValidationFailed(f"unknown command {name!r}")
    return parse_payload(model, raw)


def dump(payload: Payload) -> bytes:
    return payload.to_json()


def dlq_for(topic: str, raw: bytes, error: str) -> DlqMessage:
    """A dead letter: the raw bytes (truncated, decoded leniently) and why they were refused."""
    text = raw[:DLQ_RAW_LIMIT].decode("utf-8", errors="backslashreplace")
    if len(raw) > DLQ_RAW_LIMIT:
        text += f"…(+{len(raw) - DLQ_RAW_LIMIT} bytes)"
    return DlqMessage(topic=topic, raw=text, error=error[:2000])
