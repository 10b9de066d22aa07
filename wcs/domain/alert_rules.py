"""Anomaly rules and the alert catalogue (design §1 step 9).

``ALERT_CATALOGUE`` is the one list of alert codes: severity, what the alert means
and what the person on duty does about it. Operator documentation is generated from
it, the API serves it, and every alert raised anywhere uses one of its codes.

The rules are pure functions of a snapshot of the floor (orders with the time they
entered their state, devices, recent weight checks, pick counts, carrier outcomes)
and return *findings*: "this condition holds now for this subject". ``plan()`` turns
findings and the alerts still unresolved into what to raise and what to resolve:

- one alert per ``(code, subject)`` at a time: a finding whose alert is still
  unresolved (acknowledged or not) raises nothing new, so acknowledging an alert
  quiets it while its condition lasts;
- an alert of a rule-driven code (``auto_resolve``) is resolved once its condition
  no longer holds; the next occurrence raises a new alert;
- when one rule finds more than ``per_order_max`` orders at once (a peak, a stopped
  conveyor), they are summarised in one alert instead of flooding the supervisor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Literal

from wcs.domain.kpis import Ratio
from wcs.domain.states import CANCELLABLE, TERMINAL, OrderState
from wcs.i18n.markers import N_

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: Mapping[str, int] = MappingProxyType({"info": 0, "warning": 1, "critical": 2})


@dataclass(frozen=True, slots=True)
class AlertSpec:
    code: str
    severity: Severity
    title: str  # a few words, shown on the status page (translated where shown)
    subject: str  # what the alert's subject names
    meaning: str  # what happened
    runbook: str  # what the person on duty does
    auto_resolve: bool  # resolved by the engine when the condition is gone


def _spec(*specs: AlertSpec) -> Mapping[str, AlertSpec]:
    return MappingProxyType({s.code: s for s in specs})


ALERT_CATALOGUE: Mapping[str, AlertSpec] = _spec(
    AlertSpec(
        "order_invalid",
        "warning",
        N_("Order needs customer service"),
        "order id",
        "An order failed the intake checks (unknown SKU, bad quantity, incomplete "
        "address, no reachable contact) and was kept in 'exception' instead of dropped.",
        "Open the order on the service desk (/desk), read the reason, contact the customer "
        "or the shop, then correct it there (checked again; it goes back to 'validated' "
        "and on to 'reserved') or cancel it: either closes this alert by itself. "
        "Acknowledge it while you work on it. Customer service handles it.",
        auto_resolve=False,
    ),
    AlertSpec(
        "order_stuck",
        "warning",
        N_("Order not moving"),
        "order id, or state:<state> when many orders are stuck in one state",
        "An order has stayed in one state longer than that state's limit "
        "(WCS_MONITORING__STUCK_AFTER_MIN).",
        "Find the order on the floor by its state: a tote lost on the conveyor, a picker "
        "who left the cart, a label that never printed. Move it on or put it into the "
        "exception lane. Many orders stuck in one state point to a stopped station.",
        auto_resolve=True,
    ),
    AlertSpec(
        "sla_at_risk",
        "warning",
        N_("Ship-by deadline close"),
        "order id, or 'orders' when many are at risk",
        "An order is not shipped yet and its ship-by deadline is within the margin "
        "(WCS_MONITORING__SLA_MARGIN_MIN).",
        "Raise the order's priority or release it in the next wave; check it is not "
        "waiting on stock or in the exception lane.",
        auto_resolve=True,
    ),
    AlertSpec(
        "sla_missed",
        "critical",
        N_("Ship-by deadline missed"),
        "order id, or 'orders' when many are late",
        "An order's ship-by deadline has passed and it has not been shipped.",
        "Ship it with the fastest carrier available, tell customer service so they can "
        "inform the customer, and note the cause for the shift report.",
        auto_resolve=True,
    ),
    AlertSpec(
        "delivery_delayed",
        "warning",
        N_("Delivery delayed"),
        "order id, or 'orders' when many are delayed",
        "The carrier reported an order as delayed, or a shipped parcel is past the delivery "
        "time promised for its service.",
        "Check the carrier's tracking, tell customer service so the customer is informed, "
        "and consider a claim or a reshipment if it does not move within a day.",
        auto_resolve=True,
    ),
    AlertSpec(
        "device_offline",
        "critical",
        N_("Device offline"),
        "device id",
        "A floor device's driver has lost its device or died (its MQTT Last Will said "
        "offline) and has not come back within the grace period.",
        "Check power and cable of the device, then the driver process (wcs drivers); the "
        "station cannot work until it is back. Route work to another station meanwhile.",
        auto_resolve=True,
    ),
    AlertSpec(
        "device_fault",
        "warning",
        N_("Device fault"),
        "device id",
        "A device reports a fault (paper out, head open, scale overload, Modbus error).",
        "Read the detail on the devices list, fix the device (refill labels, close the "
        "head, clear the scale); the alert clears when the device reports online.",
        auto_resolve=True,
    ),
    AlertSpec(
        "weight_mismatch_streak",
        "warning",
        N_("Weight mismatches in a row"),
        "pack station",
        "Several parcels in a row at one pack station weighed differently from what their "
        "contents should weigh (WCS_PACK__MISMATCH_STREAK_ALERT). One mismatch is a "
        "packing error; a streak is usually the scale.",
        "Check the scale: empty platform reads zero, re-tare, calibrate with a test "
        "weight. Check the SKU master weights if only one SKU is involved.",
        auto_resolve=True,
    ),
    AlertSpec(
        "pick_accuracy_low",
        "warning",
        N_("Pick accuracy dropped"),
        "pick",
        "Correct picks / (picks + mispicks) over the recent window fell below the "
        "threshold (WCS_MONITORING__PICK_ACCURACY_MIN).",
        "Look for slots with mixed or misplaced stock and for mislabelled bins; brief the "
        "pickers; check that PTL panels light the right slots.",
        auto_resolve=True,
    ),
    AlertSpec(
        "carrier_failures",
        "critical",
        N_("Carrier bookings failing"),
        "carrier",
        "Several bookings with one carrier failed in a row (carrier down or refusing).",
        "Check the carrier's status page and our credentials; allocate parcels to another "
        "carrier or own fleet until it recovers. Rebooking the same shipment is safe.",
        auto_resolve=True,
    ),
    # Raised where the event happens (controller, dispatch, tracking), ended by people.
    AlertSpec(
        "weight_mismatch",
        "warning",
        N_("Parcel weight mismatch"),
        "pack station",
        "One parcel weighed outside the tolerance of its expected weight (items + carton); "
        "its tote was sent back to QC.",
        "At QC, recount the tote against the order lines and look for a wrong or missing "
        "item; a series at one station is its own alert (weight_mismatch_streak).",
        auto_resolve=False,
    ),
    AlertSpec(
        "no_carton",
        "warning",
        N_("No carton fits"),
        "order id",
        "No carton in the catalogue fits the order's items (dimensions or weight).",
        "Pack it by hand in an oversize box or split it into two parcels; check the SKU "
        "dimensions if the items should have fitted.",
        auto_resolve=False,
    ),
    AlertSpec(
        "pack_station_down",
        "critical",
        N_("Pack station without printer"),
        "pack station",
        "A pack station has no working label printer; totes are routed to other stations.",
        "Fix or replace the printer (paper, ribbon, head, cable); the station takes totes "
        "again as soon as its printer reports online.",
        auto_resolve=False,
    ),
    AlertSpec(
        "label_not_printed",
        "warning",
        N_("Parcel label not printed"),
        "order id",
        "A parcel's label (the carrier's, once booked, or a reprint) found no printer "
        "online at its outbound or pack station; the booking itself stands.",
        "Bring a printer back (paper, ribbon, head, cable), then reprint the label: "
        "POST /api/v1/parcels/{sscc}/reprint with label carrier or sscc.",
        auto_resolve=False,
    ),
    AlertSpec(
        "printer_fault",
        "warning",
        N_("Label not printed"),
        "printer (device id)",
        "A printer refused or failed a label job; the label went to another printer if "
        "one was available.",
        "Check the printer (paper, ribbon, head open) and reprint from the pack station if "
        "the parcel has no label.",
        auto_resolve=False,
    ),
    AlertSpec(
        "short_pick",
        "warning",
        N_("Short pick, no stock elsewhere"),
        "order id",
        "A picker found fewer units than planned and no other location has stock; the "
        "order went to the exception lane.",
        "Count the location (stock record vs shelf), book a correction, then let customer "
        "service offer a substitute, a partial shipment or cancellation.",
        auto_resolve=False,
    ),
    AlertSpec(
        "location_adjusted_twice",
        "warning",
        N_("Location adjusted again"),
        "location code",
        "A count booked a difference at a location whose book had already been adjusted "
        "for the same SKU within the alert period (WCS_INVENTORY__ADJUSTED_TWICE_S). One "
        "difference is a slip; two in a row mean something keeps going wrong there.",
        "Look at the location's adjustments (GET /api/v1/adjustments) and at the shelf: "
        "units stored in the neighbouring slot, a label on the wrong bin, a case size "
        "different from what is booked, damage or theft. Fix the cause (relabel, move "
        "the stock, brief the pickers), then ask for a count (POST /api/v1/counts) to "
        "confirm the location holds what the books say. Acknowledge when done.",
        auto_resolve=False,
    ),
    AlertSpec(
        "carrier_booking_failed",
        "warning",
        N_("Carrier booking failed"),
        "order id",
        "Booking a shipment with the chosen carrier failed (after retries).",
        "Allocate the order again (it may pick another carrier) or exclude that carrier; "
        "rebooking the same shipment is safe. Many at once: see carrier_failures.",
        auto_resolve=False,
    ),
    AlertSpec(
        "carrier_cancel_failed",
        "warning",
        N_("Unused booking not cancelled"),
        "order id",
        "A booking replaced by another could not be cancelled with the carrier.",
        "Void the label in the carrier's portal so it is not billed.",
        auto_resolve=False,
    ),
    AlertSpec(
        "parcel_damaged",
        "warning",
        N_("Parcel damaged in transit"),
        "order id",
        "The carrier reported the parcel damaged; a claim was opened and a replacement "
        "order created.",
        "Follow the claim with the carrier and make sure the replacement ships with priority.",
        auto_resolve=False,
    ),
)

# Alerts about one order (their subject is an order id): customer service may
# acknowledge and resolve these; the floor's and the devices' are the supervisor's.
ORDER_CODES: frozenset[str] = frozenset(
    code for code, spec in ALERT_CATALOGUE.items() if spec.subject.startswith("order id")
)

# Limits of time in a state before an order counts as stuck. States without a limit
# are never "stuck": terminal ones, ``delivered`` (closed by sign-off or its own
# timeout) and ``delayed`` (it has its own alert).
DEFAULT_STUCK_AFTER: Mapping[str, timedelta] = MappingProxyType(
    {
        OrderState.RECEIVED: timedelta(minutes=10),
        OrderState.VALIDATED: timedelta(minutes=10),
        OrderState.EXCEPTION: timedelta(hours=4),
        OrderState.BACKORDERED: timedelta(hours=48),
        OrderState.RESERVED: timedelta(hours=4),
        OrderState.PICK_PLANNED: timedelta(hours=1),
        OrderState.PICKING: timedelta(hours=1),
        OrderState.PICKED: timedelta(minutes=30),
        OrderState.QC_PASSED: timedelta(minutes=30),
        OrderState.QC_FAILED: timedelta(minutes=30),
        OrderState.PACKING: timedelta(minutes=30),
        OrderState.PACKED: timedelta(hours=4),
        OrderState.ALLOCATED: timedelta(hours=8),
        OrderState.SHIPPED: timedelta(hours=48),
        OrderState.IN_TRANSIT: timedelta(days=5),
        OrderState.OUT_FOR_DELIVERY: timedelta(hours=24),
        OrderState.DELIVERY_FAILED: timedelta(hours=24),
        OrderState.DAMAGED: timedelta(hours=72),
    }
)

# The ship-by promise holds while the warehouse still has the parcel.
BEFORE_SHIPPING: frozenset[str] = CANCELLABLE


def stuck_limits(overrides_min: Mapping[str, float]) -> dict[str, timedelta]:
    """Default limits with per-state overrides in minutes; 0 switches a state off."""
    unknown = sorted(set(overrides_min) - {s.value for s in OrderState})
    if unknown:
        raise ValueError(f"stuck limits name unknown order states: {', '.join(unknown)}")
    terminal = sorted(set(overrides_min) & TERMINAL)
    if terminal:
        raise ValueError(f"terminal states cannot be stuck: {', '.join(terminal)}")
    limits = dict(DEFAULT_STUCK_AFTER)
    for state, minutes in overrides_min.items():
        if minutes < 0:
            raise ValueError(f"stuck limit for {state} must be >= 0 minutes, got {minutes}")
        if minutes == 0:
            limits.pop(state, None)
        else:
            limits[state] = timedelta(minutes=minutes)
    return limits


@dataclass(frozen=True, slots=True)
class RuleConfig:
    stuck_after: Mapping[str, timedelta] = field(default_factory=lambda: DEFAULT_STUCK_AFTER)
    sla_margin: timedelta = timedelta(hours=1)
    device_grace: timedelta = timedelta(seconds=30)
    weight_mismatch_streak: int = 3
    pick_accuracy_min: float = 0.98
    pick_accuracy_min_picks: int = 50
    carrier_failure_streak: int = 3
    per_order_max: int = 10


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    order_id: str
    state: str
    since: datetime  # when it entered its current state
    sla_deadline: datetime | None
    delivery_due: datetime | None = None  # the carrier's promised delivery, once shipped


@dataclass(frozen=True, slots=True)
class DeviceSnapshot:
    device_id: str
    kind: str
    zone: str
    state: str  # online, offline, fault
    detail: str | None
    since: datetime


@dataclass(frozen=True, slots=True)
class FloorSnapshot:
    orders: Sequence[OrderSnapshot] = ()
    devices: Sequence[DeviceSnapshot] = ()
    # station -> outcomes of its latest weight checks, newest first (True: weight ok)
    weights: Mapping[str, Sequence[bool]] = field(default_factory=dict)
    picks: Ratio = field(default_factory=lambda: Ratio(0, 0))
    # carrier -> outcomes of its latest bookings, newest first (True: booked)
    carriers: Mapping[str, Sequence[bool]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    subject: str
    message: str

    def __post_init__(self) -> None:
        if self.code not in ALERT_CATALOGUE:
            raise ValueError(f"alert code {self.code!r} is not in the catalogue")

    @property
    def severity(self) -> Severity:
        return ALERT_CATALOGUE[self.code].severity


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """An alert that is not resolved yet (it may be acknowledged)."""

    id: int
    code: str
    subject: str | None


@dataclass(frozen=True, slots=True)
class AlertPlan:
    to_raise: tuple[Finding, ...]
    to_resolve: tuple[int, ...]


def duration_text(span: timedelta) -> str:
    """``1 h 12 min``, ``45 s``, ``3 d 2 h``: for messages read on the floor."""
    seconds = max(0, int(span.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def _collapse(
    code: str, group: str, found: list[tuple[OrderSnapshot, str]], limit: int, what: str
) -> list[Finding]:
    """Per-order findings, or one summary when there are more than ``limit`` of them."""
    if len(found) <= limit:
        return [Finding(code, order.order_id, text) for order, text in found]
    oldest = ", ".join(o.order_id for o, _ in sorted(found, key=lambda f: f[0].since)[:5])
    return [Finding(code, group, f"{len(found)} orders {what}; oldest first: {oldest}, ...")]


def stuck_orders(
    orders: Iterable[OrderSnapshot], now: datetime, config: RuleConfig
) -> list[Finding]:
    by_state: dict[str, list[tuple[OrderSnapshot, str]]] = {}
    for order in orders:
        limit = config.stuck_after.get(order.state)
        if limit is None or now - order.since < limit:
            continue
        text = (
            f"order {order.order_id} has been in '{order.state}' for "
            f"{duration_text(now - order.since)} (limit {duration_text(limit)}); find it on "
            "the floor and move it on or into the exception lane"
        )
        by_state.setdefault(order.state, []).append((order, text))
    findings: list[Finding] = []
    for state in sorted(by_state):
        limit_text = duration_text(config.stuck_after[state])
        findings += _collapse(
            "order_stuck",
            f"state:{state}",
            by_state[state],
            config.per_order_max,
            f"stuck in '{state}' longer than {limit_text}; check the {state} station",
        )
    return findings


def sla_risks(orders: Iterable[OrderSnapshot], now: datetime, config: RuleConfig) -> list[Finding]:
    at_risk: list[tuple[OrderSnapshot, str]] = []
    missed: list[tuple[OrderSnapshot, str]] = []
    for order in orders:
        deadline = order.sla_deadline
        if deadline is None or order.state not in BEFORE_SHIPPING:
            continue
        if deadline <= now:
            missed.append(
                (
                    order,
                    f"order {order.order_id} ('{order.state}') missed its ship-by deadline "
                    f"{duration_text(now - deadline)} ago; ship it with the fastest carrier "
                    "and tell customer service",
                )
            )
        elif deadline - now <= config.sla_margin:
            at_risk.append(
                (
                    order,
                    f"order {order.order_id} ('{order.state}') must ship within "
                    f"{duration_text(deadline - now)}; raise its priority or release it now",
                )
            )
    return _collapse(
        "sla_missed", "orders", missed, config.per_order_max, "past their ship-by deadline"
    ) + _collapse(
        "sla_at_risk",
        "orders",
        at_risk,
        config.per_order_max,
        f"due to ship within {duration_text(config.sla_margin)}",
    )


IN_DELIVERY: frozenset[str] = frozenset(
    {
        OrderState.SHIPPED,
        OrderState.IN_TRANSIT,
        OrderState.OUT_FOR_DELIVERY,
        OrderState.DELIVERY_FAILED,
        OrderState.DELAYED,
    }
)


def delayed_deliveries(
    orders: Iterable[OrderSnapshot], now: datetime, config: RuleConfig
) -> list[Finding]:
    """Orders the carrier reported delayed, and parcels past their promised delivery."""
    found: list[tuple[OrderSnapshot, str]] = []
    for order in orders:
        due = order.delivery_due
        overdue = order.state in IN_DELIVERY and due is not None and due < now
        if order.state == OrderState.DELAYED:
            text = f"order {order.order_id} was reported delayed in transit " + (
                f"{duration_text(now - order.since)} ago"
            )
        elif overdue and due is not None:
            text = (
                f"order {order.order_id} ('{order.state}') is {duration_text(now - due)} past "
                "its promised delivery"
            )
        else:
            continue
        found.append((order, text + "; check the carrier's tracking and inform the customer"))
    return _collapse(
        "delivery_delayed", "orders", found, config.per_order_max, "delayed in delivery"
    )


def devices_down(
    devices: Iterable[DeviceSnapshot], now: datetime, config: RuleConfig
) -> list[Finding]:
    findings = []
    for dev in devices:
        if dev.state == "online" or now - dev.since < config.device_grace:
            continue
        where = f"{dev.kind} {dev.device_id} ({dev.zone})"
        detail = f": {dev.detail}" if dev.detail else ""
        if dev.state == "fault":
            text = f"{where} reports a fault{detail}; fix the device, it clears when online"
            findings.append(Finding("device_fault", dev.device_id, text))
        else:
            text = (
                f"{where} offline for {duration_text(now - dev.since)}{detail}; check power, "
                "cable and its driver"
            )
            findings.append(Finding("device_offline", dev.device_id, text))
    return findings


def _leading_failures(outcomes: Sequence[bool]) -> int:
    streak = 0
    for ok in outcomes:
        if ok:
            break
        streak += 1
    return streak


def weight_streaks(weights: Mapping[str, Sequence[bool]], config: RuleConfig) -> list[Finding]:
    findings = []
    for station in sorted(weights):
        streak = _leading_failures(weights[station])
        if streak >= config.weight_mismatch_streak:
            findings.append(
                Finding(
                    "weight_mismatch_streak",
                    station,
                    f"pack station {station}: the last {streak} parcels failed the weight "
                    "check; re-tare and check the scale with a test weight",
                )
            )
    return findings


def pick_accuracy_drop(picks: Ratio, config: RuleConfig) -> list[Finding]:
    rate = picks.rate
    if rate is None or picks.total < config.pick_accuracy_min_picks:
        return []
    if rate >= config.pick_accuracy_min:
        return []
    return [
        Finding(
            "pick_accuracy_low",
            "pick",
            f"pick accuracy {rate:.1%} ({picks.good} of {picks.total}) is below "
            f"{config.pick_accuracy_min:.1%}; look for mixed slots and mislabelled bins",
        )
    ]


def carrier_streaks(carriers: Mapping[str, Sequence[bool]], config: RuleConfig) -> list[Finding]:
    findings = []
    for carrier in sorted(carriers):
        streak = _leading_failures(carriers[carrier])
        if streak >= config.carrier_failure_streak:
            findings.append(
                Finding(
                    "carrier_failures",
                    carrier,
                    f"the last {streak} bookings with {carrier} failed; check the carrier "
                    "and allocate to another carrier meanwhile",
                )
            )
    return findings


def evaluate(snapshot: FloorSnapshot, now: datetime, config: RuleConfig) -> list[Finding]:
    """Every condition that holds now; order of the result is stable (for tests, logs)."""
    return [
        *stuck_orders(snapshot.orders, now, config),
        *sla_risks(snapshot.orders, now, config),
        *delayed_deliveries(snapshot.orders, now, config),
        *devices_down(snapshot.devices, now, config),
        *weight_streaks(snapshot.weights, config),
        *pick_accuracy_drop(snapshot.picks, config),
        *carrier_streaks(snapshot.carriers, config),
    ]


def plan(findings: Iterable[Finding], unresolved: Iterable[OpenAlert]) -> AlertPlan:
    """What to raise (new conditions) and resolve (rule alerts whose condition is gone)."""
    current: dict[tuple[str, str], Finding] = {}
    for finding in findings:
        current.setdefault((finding.code, finding.subject), finding)
    live = list(unresolved)
    active_keys = {(a.code, a.subject) for a in live}
    to_raise = tuple(f for key, f in current.items() if key not in active_keys)
    to_resolve = tuple(
        a.id
        for a in live
        if (spec := ALERT_CATALOGUE.get(a.code)) is not None
        and spec.auto_resolve
        and (a.code, a.subject) not in current
    )
    return AlertPlan(to_raise, to_resolve)
