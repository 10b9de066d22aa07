"""A fake parcel carrier: a small HTTP service that books, tracks and cancels shipments.

Run it as its own process (``wcs fake-carrier --port 8765`` or
``python -m wcs.carriers.fake_server --port 8765``) so the adapter talks real HTTP to
it, the way it talks to a real carrier in production.

Carrier API (JSON):

- ``POST /v1/shipments`` with ``Idempotency-Key``: books and answers 201 with a
  tracking number, a ZPL label and the cost. The same key with the same body answers
  the stored booking again (200, ``Idempotent-Replayed: true``); the same key with
  another body answers 409. Nothing is ever booked twice for one key.
- ``GET /v1/shipments/{tracking_no}``: status and tracking events.
- ``POST /v1/shipments/{tracking_no}/cancel``: cancels until the parcel moves (409
  after that); cancelling twice is fine.

Test and demo controls (``/admin``, never part of a real carrier):

- ``PUT /admin/faults``: fail the next N carrier requests with 503 (before doing
  anything), delay the next N responses by S seconds (after doing the work, so a
  client that times out has in fact booked), or fail a random fraction.
- ``PUT /admin/webhook``: where tracking events are pushed (``{shipment_id}`` and
  ``{tracking_no}`` in the URL are filled in).
- ``POST /admin/shipments/{tracking_no}/events``: move a shipment on
  (in_transit, out_for_delivery, delivered, delivery_failed, delayed, damaged) and
  push the event to the webhook, signed with ``X-WCS-Signature``.
- ``GET /admin/stats``: bookings and attempts per idempotency key.

The fake parses and answers on its own rather than sharing code with the client, so
a mistake in one cannot hide by being mirrored in the other.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import random
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal

import httpx
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from wcs.carriers.signing import SIGNATURE_HEADER, sign
from wcs.ids import new_id
from wcs.retry import Backoff
from wcs.timeutil import rfc3339, utcnow

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765
DEFAULT_SECRET = "dev-webhook-secret"
# Between webhook attempts, as our own clients back off (a real carrier does likewise).
WEBHOOK_BACKOFF = Backoff(0.2, 2.0)
TRACKING_STATUSES = (
    "in_transit",
    "out_for_delivery",
    "delivered",
    "delivery_failed",
    "delayed",
    "damaged",
)
# Once a parcel has moved the carrier can no longer take it back.
_CANCELLABLE = frozenset({"booked"})
_FINAL = frozenset({"delivered", "cancelled", "damaged"})


# -- wire models (as this carrier defines them) -------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParcelIn(_Model):
    weight_g: float = Field(gt=0, le=1_000_000)
    dims_mm: tuple[float, float, float]


class RecipientIn(_Model):
    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(pattern=r"^[A-Z]{2}$")
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=200)


class ShipmentIn(_Model):
    reference: str = Field(min_length=1, max_length=100)
    service: Literal["standard", "express", "same_day"]
    label_format: Literal["zpl"] = "zpl"
    parcel: ParcelIn
    recipient: RecipientIn


class FaultsIn(_Model):
    fail_next: int | None = Field(default=None, ge=0)
    # 5xx, or 429 (rate limited) which a client must also retry.
    fail_status: int | None = Field(default=None, ge=429, le=599)
    # Sent as Retry-After with injected failures; negative clears it.
    retry_after_s: float | None = Field(default=None, le=60)
    delay_next: int | None = Field(default=None, ge=0)
    delay_s: float | None = Field(default=None, ge=0, le=60)
    fail_rate: float | None = Field(default=None, ge=0, le=1)


class WebhookIn(_Model):
    url: str | None


class EventIn(_Model):
    status: Literal[
        "in_transit", "out_for_delivery", "delivered", "delivery_failed", "delayed", "damaged"
    ]
    detail: str = Field(default="", max_length=500)
    location: str | None = Field(default=None, max_length=100)


# -- state ---------------------------------------------------------------------------


@dataclass
class Faults:
    fail_next: int = 0
    fail_status: int = 503
    delay_next: int = 0
    delay_s: float = 0.0
    fail_rate: float = 0.0
    retry_after_s: float | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "fail_next": self.fail_next,
            "fail_status": self.fail_status,
            "retry_after_s": self.retry_after_s,
            "delay_next": self.delay_next,
            "delay_s": self.delay_s,
            "fail_rate": self.fail_rate,
        }


@dataclass
class FakeCarrierConfig:
    carrier: str = "fakecarrier"
    webhook_url: str | None = None
    webhook_secret: str = DEFAULT_SECRET
    api_key: str | None = None
    faults: Faults = field(default_factory=Faults)
    seed: int | None = None
    webhook_timeout_s: float = 5.0
    webhook_attempts: int = 3


@dataclass
class _Shipment:
    tracking_no: str
    reference: str
    service: str
    body: dict[str, Any]
    response: dict[str, Any]
    status: str = "booked"
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _State:
    config: FakeCarrierConfig
    rng: random.Random
    shipments: dict[str, _Shipment] = field(default_factory=dict)
    by_key: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (hash, tracking)
    bookings: Counter[str] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    webhook_client: httpx.AsyncClient | None = None

    def new_tracking_no(self) -> str:
        while True:
            number = f"FC{self.rng.randrange(10**11, 10**12)}"
            if number not in self.shipments:
                return number


def _error(
    status: int, error: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def _zpl_text(value: str) -> str:
    # ^ and ~ start ZPL commands; a name containing them must not break the label.
    return value.replace("^", " ").replace("~", " ")


def _label(carrier: str, tracking_no: str, shipment: ShipmentIn) -> str:
    r = shipment.recipient
    lines = [r.name, r.line1, *([r.line2] if r.line2 else []), f"{r.postal_code} {r.city}"]
    lines.append(r.country)
    fields = "".join(f"^FO50,{150 + 40 * i}^FD{_zpl_text(line)}^FS" for i, line in enumerate(lines))
    return (
        "^XA^CI28^CF0,32"
        f"^FO50,40^FD{_zpl_text(carrier.upper())} {shipment.service.upper()}^FS"
        f"^FO50,90^FDRef {_zpl_text(shipment.reference)}^FS"
        f"{fields}"
        f"^FO50,480^BY3^BCN,140,Y,N,N^FD{tracking_no}^FS"
        "^XZ"
    )


def _cost(shipment: ShipmentIn) -> Decimal:
    base = {"standard": Decimal("4.20"), "express": Decimal("8.90"), "same_day": Decimal("15")}
    kilos = Decimal(max(1, int(-(-shipment.parcel.weight_g // 1000))))
    return base[shipment.service] + kilos * Decimal("0.35")


def _body_hash(shipment: ShipmentIn) -> str:
    canonical = json.dumps(shipment.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def create_app(config: FakeCarrierConfig | None = None) -> FastAPI:
    cfg = config or FakeCarrierConfig()
    state = _State(config=cfg, rng=random.Random(cfg.seed))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=cfg.webhook_timeout_s) as client:
            state.webhook_client = client
            yield
            state.webhook_client = None

    app = FastAPI(title="Fake carrier", version="1", lifespan=lifespan)
    app.state.fake = state

    def refuse(request: Request, key: str | None) -> JSONResponse | None:
        """Authentication and injected failures, applied before any work is done."""
        state.requests += 1
        if key:
            state.attempts[key] += 1
        expected_auth = None if cfg.api_key is None else f"Bearer {cfg.api_key}"
        if expected_auth is not None and request.headers.get("authorization") != expected_auth:
            return _error(401, "unauthorized", "missing or wrong API key")
        faults = cfg.faults
        headers = None
        if faults.retry_after_s is not None:
            headers = {"Retry-After": f"{faults.retry_after_s:g}"}
        if faults.fail_next > 0:
            faults.fail_next -= 1
            return _error(faults.fail_status, "unavailable", "injected failure", headers)
        if faults.fail_rate > 0 and state.rng.random() < faults.fail_rate:
            return _error(faults.fail_status, "unavailable", "injected random failure", headers)
        return None

    async def respond(response: JSONResponse) -> JSONResponse:
        """Injected slowness, after the work is done: a timed-out client did book."""
        faults = cfg.faults
        if faults.delay_next > 0:
            faults.delay_next -= 1
            await asyncio.sleep(faults.delay_s)
        return response

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "carrier": cfg.carrier}

    @app.post("/v1/shipments", response_model=None)
    async def book(
        request: Request,
        idempotency_key: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        refused = refuse(request, idempotency_key)
        if refused is not None:
            return refused
        if not idempotency_key:
            return _error(400, "idempotency_key_required", "send an Idempotency-Key header")
        try:
            shipment = ShipmentIn.model_validate_json(await request.body())
        except ValueError as exc:
            return _error(422, "invalid_shipment", str(exc)[:1000])
        digest = _body_hash(shipment)
        known = state.by_key.get(idempotency_key)
        if known is not None:
            known_hash, tracking_no = known
            if known_hash != digest:
                return _error(
                    409,
                    "idempotency_conflict",
                    f"Idempotency-Key {idempotency_key!r} was used for another shipment "
                    f"(tracking {tracking_no}) with different details",
                )
            replay = JSONResponse(
                state.shipments[tracking_no].response,
                status_code=200,
                headers={"Idempotent-Replayed": "true"},
            )
            return await respond(replay)
        tracking_no = state.new_tracking_no()
        body = {
            "tracking_no": tracking_no,
            "reference": shipment.reference,
            "carrier": cfg.carrier,
            "service": shipment.service,
            "status": "booked",
            "label": {"format": "zpl", "data": _label(cfg.carrier, tracking_no, shipment)},
            "cost": {"amount": str(_cost(shipment)), "currency": "EUR"},
            "created_at": rfc3339(utcnow()),
        }
        # No await between the key check above and these writes: a concurrent retry
        # with the same key cannot slip in and book a second time.
        state.by_key[idempotency_key] = (digest, tracking_no)
        state.bookings[idempotency_key] += 1
        state.shipments[tracking_no] = _Shipment(
            tracking_no=tracking_no,
            reference=shipment.reference,
            service=shipment.service,
            body=shipment.model_dump(mode="json"),
            response=body,
        )
        log.info("booked %s for %s", tracking_no, shipment.reference)
        return await respond(JSONResponse(body, status_code=201))

    @app.get("/v1/shipments/{tracking_no}", response_model=None)
    async def get_shipment(request: Request, tracking_no: str) -> JSONResponse:
        refused = refuse(request, None)
        if refused is not None:
            return refused
        found = state.shipments.get(tracking_no)
        if found is None:
            return _error(404, "not_found", f"no shipment {tracking_no}")
        body = {
            "tracking_no": found.tracking_no,
            "reference": found.reference,
            "service": found.service,
            "status": found.status,
            "events": found.events,
        }
        return await respond(JSONResponse(body))

    @app.post("/v1/shipments/{tracking_no}/cancel", response_model=None)
    async def cancel(request: Request, tracking_no: str) -> JSONResponse:
        refused = refuse(request, None)
        if refused is not None:
            return refused
        found = state.shipments.get(tracking_no)
        if found is None:
            return _error(404, "not_found", f"no shipment {tracking_no}")
        if found.status != "cancelled":
            if found.status not in _CANCELLABLE:
                return _error(
                    409, "not_cancellable", f"shipment {tracking_no} is already {found.status}"
                )
            found.status = "cancelled"
            found.events.append({"status": "cancelled", "at": rfc3339(utcnow()), "detail": ""})
        return await respond(JSONResponse({"tracking_no": tracking_no, "status": found.status}))

    # -- test and demo controls ------------------------------------------------------

    @app.put("/admin/faults")
    async def set_faults(change: FaultsIn) -> dict[str, float | int | None]:
        for name, value in change.model_dump(exclude_none=True).items():
            setattr(cfg.faults, name, value)
        if change.retry_after_s is not None and change.retry_after_s < 0:
            cfg.faults.retry_after_s = None
        return cfg.faults.as_dict()

    @app.put("/admin/webhook")
    async def set_webhook(change: WebhookIn) -> dict[str, str | None]:
        cfg.webhook_url = change.url
        return {"url": cfg.webhook_url}

    @app.get("/admin/stats")
    async def stats() -> dict[str, Any]:
        return {
            "requests": state.requests,
            "shipments": len(state.shipments),
            "bookings": dict(state.bookings),
            "attempts": dict(state.attempts),
        }

    @app.post("/admin/shipments/{tracking_no}/events", response_model=None)
    async def push_event(tracking_no: str, event: EventIn) -> JSONResponse:
        found = state.shipments.get(tracking_no)
        if found is None:
            return _error(404, "not_found", f"no shipment {tracking_no}")
        if found.status in _FINAL:
            return _error(409, "final", f"shipment {tracking_no} is already {found.status}")
        found.status = event.status
        payload: dict[str, Any] = {
            "v": 1,
            "event_id": new_id("evt_"),
            "carrier": cfg.carrier,
            "tracking_no": tracking_no,
            "shipment_id": found.reference,
            "status": event.status,
            "at": rfc3339(utcnow()),
            "detail": event.detail,
            "location": event.location,
        }
        found.events.append({"status": event.status, "at": payload["at"], "detail": event.detail})
        webhook = await _deliver(state, payload)
        return JSONResponse({"event": payload, "webhook": webhook})

    return app


async def _deliver(state: _State, payload: dict[str, Any]) -> dict[str, Any]:
    """POST the event, signed; a few tries like a real carrier, then give up and say so."""
    cfg = state.config
    if cfg.webhook_url is None or state.webhook_client is None:
        return {"url": None, "delivered": False, "attempts": 0, "status_code": None}
    url = cfg.webhook_url.format(
        shipment_id=payload["shipment_id"], tracking_no=payload["tracking_no"]
    )
    body = json.dumps(payload, separators=(",", ":")).encode()
    status_code: int | None = None
    error: str | None = None
    for attempt in range(1, cfg.webhook_attempts + 1):
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, cfg.webhook_secret),
            "X-WCS-Event-Id": payload["event_id"],
        }
        try:
            response = await state.webhook_client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            status_code, error = None, f"{type(exc).__name__}: {exc}"
        else:
            status_code, error = response.status_code, None
            if response.is_success:
                return {"url": url, "delivered": True, "attempts": attempt, "status_code": 200}
            if response.status_code < 500:
                break  # the receiver refused it; sending it again will not help
        if attempt < cfg.webhook_attempts:
            await asyncio.sleep(WEBHOOK_BACKOFF.delay(attempt))
    log.warning("webhook %s not delivered: %s", url, error or status_code)
    return {
        "url": url,
        "delivered": False,
        "attempts": attempt,
        "status_code": status_code,
        "error": error,
    }


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"WCS_FAKE_CARRIER_{name}", default)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="fake-carrier", description="Run a fake parcel carrier for tests and demos."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--carrier", default=_env("NAME", "fakecarrier"))
    parser.add_argument(
        "--webhook-url",
        default=_env("WEBHOOK_URL"),
        help="Where tracking events go; {shipment_id} and {tracking_no} are filled in.",
    )
    parser.add_argument(
        "--webhook-secret",
        default=os.environ.get("WCS_CARRIER_WEBHOOK_SECRET", DEFAULT_SECRET),
        help="HMAC secret for X-WCS-Signature (default: WCS_CARRIER_WEBHOOK_SECRET).",
    )
    parser.add_argument("--api-key", default=_env("API_KEY"))
    parser.add_argument("--fail-next", type=int, default=int(_env("FAIL_NEXT", "0") or 0))
    parser.add_argument("--fail-status", type=int, default=503)
    parser.add_argument("--delay-next", type=int, default=int(_env("DELAY_NEXT", "0") or 0))
    parser.add_argument("--delay-s", type=float, default=float(_env("DELAY_S", "0") or 0))
    parser.add_argument("--fail-rate", type=float, default=float(_env("FAIL_RATE", "0") or 0))
    parser.add_argument("--seed", type=int, default=None)
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> FakeCarrierConfig:
    return FakeCarrierConfig(
        carrier=args.carrier,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        api_key=args.api_key,
        seed=args.seed,
        faults=Faults(
            fail_next=args.fail_next,
            fail_status=args.fail_status,
            delay_next=args.delay_next,
            delay_s=args.delay_s,
            fail_rate=args.fail_rate,
        ),
    )


def serve(config: FakeCarrierConfig, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    import uvicorn

    uvicorn.run(create_app(config), host=host, port=port, log_level="warning")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    serve(config_from_args(args), args.host, args.port)


if __name__ == "__main__":
    main()
