"""One rooted exception tree; messages are written for the person on the floor.

    WcsError
    ├── ConfigError              settings or floor file wrong; fix the file and restart
    ├── ValidationFailed         input rejected (payload, order body, frame)
    ├── NotFound                 order, SKU, location, device ... does not exist
    ├── Conflict                 the request contradicts stored state
    │   ├── IllegalTransition    order state change not allowed by the state machine
    │   └── IdempotencyConflict  same Idempotency-Key, different body
    ├── InsufficientStock        not enough available units to reserve
    ├── Forbidden                role not admitted
    │   └── SignatureInvalid     webhook signature missing, wrong or too old
    ├── DeviceError              a device or its link misbehaved
    │   ├── DeviceUnavailable    cannot reach it now (retry, check cable/power)
    │   └── ProtocolError        it answered something the codec cannot accept
    └── CarrierError             booking with a carrier failed, or none fits
        ├── CarrierUnavailable   carrier unreachable or failing after retries (rebook later
        │                        or allocate another carrier; the same shipment id is safe)
        ├── CarrierRejected      the carrier refused the shipment data (fix it, then rebook)
        └── NoCarrierAvailable   no carrier/service fits destination, parcel and SLA

Foreign exceptions (SQLAlchemy, aiomqtt, pyserial, pymodbus) are translated at the
edges into these, so callers never depend on a library's error types.
"""

from __future__ import annotations


class WcsError(Exception):
    """Root of every error the system raises on purpose."""

    code = "wcs_error"

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.context = context


class ConfigError(WcsError):
    code = "config"


class ValidationFailed(WcsError):
    code = "validation"


class NotFound(WcsError):
    code = "not_found"


class Conflict(WcsError):
    code = "conflict"


class IllegalTransition(Conflict):
    code = "illegal_transition"

    def __init__(self, order_id: str, from_state: str, to_state: str, detail: str = "") -> None:
        message = f"order {order_id}: cannot go from '{from_state}' to '{to_state}'"
        if detail:
            message = f"{message} ({detail})"
        super().__init__(message, order_id=order_id, from_state=from_state, to_state=to_state)
        self.order_id = order_id
        self.from_state = from_state
        self.to_state = to_state


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


class InsufficientStock(WcsError):
    code = "insufficient_stock"


class Forbidden(WcsError):
    code = "forbidden"


class DeviceError(WcsError):
    code = "device"


class DeviceUnavailable(DeviceError):
    code = "device_unavailable"


class ProtocolError(DeviceError):
    code = "protocol"


class SignatureInvalid(Forbidden):
    code = "signature_invalid"


class CarrierError(WcsError):
    code = "carrier"


class CarrierUnavailable(CarrierError):
    code = "carrier_unavailable"


class CarrierRejected(CarrierError):
    code = "carrier_rejected"


class NoCarrierAvailable(CarrierError):
    code = "no_carrier"
