"""HTTP adapter to a parcel carrier: book a shipment, read its status, cancel it.

    async with CarrierClient("https://carrier.example", carrier="parcelco") as carrier:
        booking = await carrier.book(shipment)

Every request is retried on timeouts, dropped connections, 5xx and 429, with capped
exponential backoff and full jitter (a whole dispatch desk retrying in lock-step
would hammer a carrier that is just coming back). Booking is safe to retry because it
carries ``Idempotency-Key: <shipment id>``: a carrier that already booked the first
attempt (and only the answer got lost) returns that same booking again.

Failures reach the caller as the project's errors, never as httpx's:

    CarrierUnavailable    still failing after the retries: rebook later with the same
                          shipment id, or allocate another carrier
    CarrierRejected       the carrier refused the data or our credentials: fix, rebook
    IdempotencyConflict   this shipment id was booked with different details before
    NotFound              unknown tracking number
    CarrierError          the carrier answered something unreadable
"""

from __future__ import annotations

import logging
import random
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any, Literal, Self

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
)

from wcs.errors import (
    CarrierError,
    CarrierRejected,
    CarrierUnavailable,
    IdempotencyConflict,
    NotFound,
)
from wcs.retry import Backoff

log = logging.getLogger(__name__)

Service = Literal["standard", "express", "same_day"]
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Recipient:
    name: str
    line1: str
    city: str
    postal_code: str
    country: str
    line2: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class ShipmentRequest:
    """One parcel to book. ``shipment_id`` is our id and the idempotency key."""

    shipment_id: str
    service: Service
    weight_g: float
    dims_mm: tuple[float, float, float]
    recipient: Recipient
    label_format: Literal["zpl"] = "zpl"

    def to_json(self) -> dict[str, Any]:
        r = self.recipient
        return {
            "reference": self.shipment_id,
            "service": self.service,
            "label_format": self.label_format,
            "parcel": {"weight_g": self.weight_g, "dims_mm": list(self.dims_mm)},
            "recipient": {
                "name": r.name,
                "line1": r.line1,
                "line2": r.line2,
                "city": r.city,
                "postal_code": r.postal_code,
                "country": r.country,
                "phone": r.phone,
                "email": r.email,
            },
        }


@dataclass(frozen=True, slots=True)
class Booking:
    shipment_id: str
    tracking_no: str
    carrier: str
    service: str
    label_format: str
    label_data: str  # ZPL text, or base64 when the format is binary (pdf)
    cost: Decimal
    currency: str
    # True when the carrier answered a booking it had already made for this shipment.
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class TrackingEvent:
    status: str
    at: datetime
    detail: str


@dataclass(frozen=True, slots=True)
class ShipmentStatus:
    tracking_no: str
    status: str
    events: tuple[TrackingEvent, ...]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The system's backoff (capped exponential, full jitter), bounded by attempts and a
    deadline."""

    attempts: int = 5
    initial_s: float = 0.25
    max_s: float = 5.0
    # No new attempt starts if waiting for it would pass this many seconds in total.
    deadline_s: float = 30.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Wait before attempt ``attempt + 1``: the system's policy (:mod:`wcs.retry`)."""
        return Backoff(self.initial_s, max(self.max_s, self.initial_s)).delay(attempt, rng)


class _Transient(Exception):
    """A failure worth retrying; never leaves this module."""

    def __init__(self, description: str, retry_after_s: float | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.retry_after_s = retry_after_s


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, Mapping):
        detail = body.get("detail") or body.get("error") or body
        return str(detail)[:500]
    return str(body)[:200]


class CarrierClient:
    """One carrier's HTTP API. Use as ``async with``; the connection pool lives inside."""

    def __init__(
        self,
        base_url: str,
        *,
        carrier: str = "carrier",
        api_key: str | None = None,
        timeout_s: float = 5.0,
        connect_timeout_s: float = 2.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """``tls``: the TLS context of https:// (``Settings.carrier_tls``: a private CA,
        our client certificate); None checks the carrier against the system's trust store."""
        self.base_url = base_url.rstrip("/")
        self.carrier = carrier
        self.retry = retry or RetryPolicy()
        self._rng = rng or random.Random()
        headers = {"User-Agent": "wcs-carrier-client/1", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            transport=transport,
            verify=tls if tls is not None else True,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- operations ------------------------------------------------------------------

    async def book(self, shipment: ShipmentRequest) -> Booking:
        """Book the parcel; retrying with the same shipment never books it twice."""
        response = await self._call(
            "POST",
            "/v1/shipments",
            what=f"book shipment {shipment.shipment_id}",
            json=shipment.to_json(),
            headers={"Idempotency-Key": shipment.shipment_id},
        )
        if response.status_code == 409:
            raise IdempotencyConflict(
                f"carrier {self.carrier} already has shipment {shipment.shipment_id} booked "
                f"with different details ({_detail(response)}); cancel that booking or "
                "book under a new shipment id",
                shipment_id=shipment.shipment_id,
                carrier=self.carrier,
            )
        self._raise_for_refusal(response, f"book shipment {shipment.shipment_id}")
        body = self._json(response, "booking")
        try:
            label = body["label"]
            cost = body["cost"]
            return Booking(
                shipment_id=shipment.shipment_id,
                tracking_no=str(body["tracking_no"]),
                carrier=str(body.get("carrier") or self.carrier),
                service=str(body["service"]),
                label_format=str(label["format"]),
                label_data=str(label["data"]),
                cost=Decimal(str(cost["amount"])),
                currency=str(cost["currency"]),
                replayed=response.headers.get("idempotent-replayed", "").lower() == "true",
            )
        except (KeyError, TypeError, InvalidOperation) as exc:
            raise self._unreadable("booking", exc) from None

    async def status(self, tracking_no: str) -> ShipmentStatus:
        response = await self._call(
            "GET", f"/v1/shipments/{tracking_no}", what=f"read status of {tracking_no}"
        )
        if response.status_code == 404:
            raise NotFound(f"carrier {self.carrier} knows no shipment {tracking_no}")
        self._raise_for_refusal(response, f"read status of {tracking_no}")
        body = self._json(response, "status")
        try:
            events = tuple(
                TrackingEvent(
                    status=str(e["status"]),
                    at=datetime.fromisoformat(str(e["at"]).replace("Z", "+00:00")),
                    detail=str(e.get("detail") or ""),
                )
                for e in body["events"]
            )
            return ShipmentStatus(str(body["tracking_no"]), str(body["status"]), events)
        except (KeyError, TypeError, ValueError) as exc:
            raise self._unreadable("status", exc) from None

    async def cancel(self, tracking_no: str) -> None:
        """Cancel a booking; cancelling one that is already cancelled is fine."""
        response = await self._call(
            "POST", f"/v1/shipments/{tracking_no}/cancel", what=f"cancel {tracking_no}"
        )
        if response.status_code == 404:
            raise NotFound(f"carrier {self.carrier} knows no shipment {tracking_no}")
        if response.status_code == 409:
            raise CarrierRejected(
                f"carrier {self.carrier} will not cancel {tracking_no}: {_detail(response)}; "
                "the parcel has left, start a return instead",
                tracking_no=tracking_no,
            )
        self._raise_for_refusal(response, f"cancel {tracking_no}")

    # -- plumbing --------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        backoff = self.retry.backoff(state.attempt_number, self._rng)
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, _Transient) and error.retry_after_s is not None:
            # The carrier said when; asking sooner would only be refused again. The
            # deadline still bounds it: a wait past it ends the retrying instead.
            return max(backoff, error.retry_after_s)
        return backoff

    def _log_retry(self, state: RetryCallState) -> None:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        log.warning(
            "carrier %s: attempt %d failed (%s); retrying in %.2f s",
            self.carrier,
            state.attempt_number,
            error,
            state.upcoming_sleep,
        )

    async def _send_once(
        self, method: str, path: str, json: Any, headers: Mapping[str, str] | None
    ) -> httpx.Response:
        try:
            response = await self._http.request(method, path, json=json, headers=headers)
        except httpx.TimeoutException as exc:
            raise _Transient(f"timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise _Transient(f"connection failed ({type(exc).__name__}: {exc})") from exc
        if response.status_code in _RETRY_STATUSES:
            raise _Transient(
                f"HTTP {response.status_code} {_detail(response)}", _retry_after(response)
            )
        return response

    async def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One logical request, retried; CarrierUnavailable once retrying is over."""
        policy = self.retry
        started = time.monotonic()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.attempts) | stop_before_delay(policy.deadline_s),
            wait=self._wait,
            retry=retry_if_exception_type(_Transient),
            before_sleep=self._log_retry,
            reraise=True,
        )
        attempts = 0
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    return await self._send_once(method, path, json, headers)
        except _Transient as exc:
            elapsed = time.monotonic() - started
            raise CarrierUnavailable(
                f"carrier {self.carrier} at {self.base_url} could not {what}: "
                f"{attempts} attempt{'' if attempts == 1 else 's'} in {elapsed:.1f} s, "
                f"last {exc.description}. "
                "Retry later (the same shipment id will not book twice) or allocate "
                "another carrier",
                carrier=self.carrier,
                attempts=attempts,
            ) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _raise_for_refusal(self, response: httpx.Response, what: str) -> None:
        if response.is_success:
            return
        code = response.status_code
        if code in (401, 403):
            raise CarrierRejected(
                f"carrier {self.carrier} refused our credentials ({code}) to {what}: "
                "check the carrier API key",
                carrier=self.carrier,
                status=code,
            )
        raise CarrierRejected(
            f"carrier {self.carrier} refused to {what} ({code}): {_detail(response)}",
            carrier=self.carrier,
            status=code,
        )

    def _json(self, response: httpx.Response, what: str) -> Mapping[str, Any]:
        try:
            body = response.json()
        except ValueError as exc:
            raise self._unreadable(what, exc) from None
        if not isinstance(body, Mapping):
            raise self._unreadable(what, TypeError(f"expected an object, got {type(body)}"))
        return body

    def _unreadable(self, what: str, exc: Exception) -> CarrierError:
        return CarrierError(
            f"carrier {self.carrier} answered an unreadable {what} ({type(exc).__name__}: "
            f"{exc}); its API may have changed",
            carrier=self.carrier,
        )
