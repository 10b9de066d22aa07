"""Key performance indicators (design §1 step 9), computed from plain rows.

The services read facts from the event log (``order_events``), the floor activity
log (``activity``), the orders table, the delivery tables and the cycle counts with
their booked differences, and hand them here as plain values; everything below is
arithmetic, so it is table-tested without a database.

Conventions:

- A rate is ``good / total`` with both numbers kept, and ``None`` when nothing was
  measured: "no picks in the window" is not "100 % pick accuracy".
- Durations are seconds. Percentiles interpolate linearly between closest ranks
  (the common "type 7" definition), so p50 of ``[10, 20]`` is 15.
- Every timestamp is timezone-aware UTC; hourly buckets start on the full hour.
- Inventory accuracy is counts whose book matched / counts closed in the window (a
  count is one SKU at one location; a recount that finds the book closes as matched,
  any booked difference, however small, does not). Adjustments are summed in units
  and, per currency, in value (minor units), net and gross: ten units lost and ten
  found elsewhere are 0 net and 20 gross.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

HOUR = timedelta(hours=1)

# Activity kinds (rows of the ``activity`` table) each rate is built from.
PICK_OK, MISPICK = "pick", "mispick"
QC_PASS, QC_FAIL = "qc_pass", "qc_fail"
WEIGHT_OK, WEIGHT_MISMATCH = "weight_ok", "weight_mismatch"
# Results of a closed count (``count_tasks.result``).
COUNT_MATCHED, COUNT_ADJUSTED = "matched", "adjusted"
# ISO 4217's code for "no currency": a priced SKU that names none.
NO_CURRENCY = "XXX"


@dataclass(frozen=True, slots=True)
class Ratio:
    """``good`` out of ``total``; ``rate`` is None when ``total`` is 0."""

    good: int
    total: int

    def __post_init__(self) -> None:
        if self.good < 0 or self.total < 0 or self.good > self.total:
            raise ValueError(f"ratio needs 0 <= good <= total, got {self.good}/{self.total}")

    @property
    def rate(self) -> float | None:
        return self.good / self.total if self.total else None


@dataclass(frozen=True, slots=True)
class DurationSummary:
    count: int
    p50_s: float | None
    p95_s: float | None
    mean_s: float | None
    max_s: float | None


@dataclass(frozen=True, slots=True)
class ActivityCount:
    """One aggregated row: how many ``kind`` facts had this ``ok`` flag."""

    kind: str
    ok: bool
    n: int


@dataclass(frozen=True, slots=True)
class Deadline:
    """When an order reached a milestone and the time it was promised by (None: no promise)."""

    order_id: str
    reached_at: datetime
    deadline: datetime | None


@dataclass(frozen=True, slots=True)
class Satisfaction:
    count: int
    average: float | None
    # score -> number of ratings with that score
    distribution: Mapping[int, int]


@dataclass(frozen=True, slots=True)
class HourCount:
    hour: datetime
    count: int


@dataclass(frozen=True, slots=True)
class AdjustmentTotal:
    """Booked count differences of the SKUs of one currency (None: the SKU names
    none); ``value_*`` sum the differences that have a value (the SKU has a price)."""

    currency: str | None
    count: int
    units_net: int
    units_gross: int
    value_net_minor: int | None = None
    value_gross_minor: int | None = None


@dataclass(frozen=True, slots=True)
class AdjustmentValue:
    currency: str
    net_minor: int
    gross_minor: int


@dataclass(frozen=True, slots=True)
class Adjustments:
    count: int
    units_net: int
    units_gross: int
    values: tuple[AdjustmentValue, ...]  # per currency, by currency code


@dataclass(frozen=True, slots=True)
class KpiInputs:
    """Everything one KPI report is computed from, read for the window [start, end)."""

    start: datetime
    end: datetime
    # order id -> time of its first event, for the orders that reached ``packed`` in the window
    started: Mapping[str, datetime] = field(default_factory=dict)
    # order id -> time it first reached ``packed`` (within the window)
    packed: Mapping[str, datetime] = field(default_factory=dict)
    activity: Sequence[ActivityCount] = ()
    shipped: Sequence[Deadline] = ()
    delivered: Sequence[Deadline] = ()
    ratings: Mapping[int, int] | None = None  # None: the ratings table does not exist yet
    # ids of orders with a return request, among ``delivered`` (None: no returns table yet)
    returned: frozenset[str] | None = None
    orders_by_state: Mapping[str, int] = field(default_factory=dict)
    received_per_hour: Mapping[datetime, int] = field(default_factory=dict)
    packed_per_hour: Mapping[datetime, int] = field(default_factory=dict)
    # result -> counts closed with it in the window (matched, adjusted)
    counts: Mapping[str, int] = field(default_factory=dict)
    adjustments: Sequence[AdjustmentTotal] = ()


@dataclass(frozen=True, slots=True)
class KpiReport:
    start: datetime
    end: datetime
    processing_time: DurationSummary
    pick_accuracy: Ratio
    pack_pass_rate: Ratio
    qc_pass_rate: Ratio
    on_time_shipping: Ratio
    on_time_delivery: Ratio
    satisfaction: Satisfaction | None
    returns_rate: Ratio | None
    orders_by_state: Mapping[str, int]
    received_per_hour: tuple[HourCount, ...]
    packed_per_hour: tuple[HourCount, ...]
    inventory_accuracy: Ratio = field(default_factory=lambda: Ratio(0, 0))
    adjustments: Adjustments = field(default_factory=lambda: Adjustments(0, 0, 0, ()))


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values`` by linear interpolation between ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be within 0..1, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    lower = math.floor(position)
    upper = math.ceil(position)
    fraction = position - lower
    return ordered[lower] + (ordered[upper] - ordered[lower]) * fraction


def summarise_durations(seconds: Sequence[float]) -> DurationSummary:
    if not seconds:
        return DurationSummary(0, None, None, None, None)
    return DurationSummary(
        count=len(seconds),
        p50_s=percentile(seconds, 0.5),
        p95_s=percentile(seconds, 0.95),
        mean_s=sum(seconds) / len(seconds),
        max_s=max(seconds),
    )


def processing_times(
    started: Mapping[str, datetime], packed: Mapping[str, datetime]
) -> list[float]:
    """Seconds from each order's first event to ``packed``, for orders that have both.

    Clocks of different processes can disagree by a little; a packed time before the
    first event counts as zero rather than as a negative duration.
    """
    durations = []
    for order_id, done in packed.items():
        begun = started.get(order_id)
        if begun is not None:
            durations.append(max(0.0, (done - begun).total_seconds()))
    return durations


def _count(rows: Iterable[ActivityCount], kind: str, ok: bool | None = None) -> int:
    return sum(r.n for r in rows if r.kind == kind and (ok is None or r.ok is ok))


def pick_accuracy(rows: Sequence[ActivityCount]) -> Ratio:
    """Correct picks / (picks + mispicks): a mispick is a wrong item scanned and refused."""
    good = _count(rows, PICK_OK, ok=True)
    return Ratio(good, _count(rows, PICK_OK) + _count(rows, MISPICK))


def pack_pass_rate(rows: Sequence[ActivityCount]) -> Ratio:
    """Parcels whose measured weight matched the expected weight at the first check."""
    good = _count(rows, WEIGHT_OK)
    return Ratio(good, good + _count(rows, WEIGHT_MISMATCH))


def qc_pass_rate(rows: Sequence[ActivityCount]) -> Ratio:
    good = _count(rows, QC_PASS)
    return Ratio(good, good + _count(rows, QC_FAIL))


def on_time(milestones: Iterable[Deadline]) -> Ratio:
    """Share of milestones reached no later than promised; unpromised ones are not judged."""
    judged = [m for m in milestones if m.deadline is not None]
    good = sum(1 for m in judged if m.deadline is not None and m.reached_at <= m.deadline)
    return Ratio(good, len(judged))


def satisfaction(distribution: Mapping[int, int]) -> Satisfaction:
    count = sum(distribution.values())
    if any(n < 0 for n in distribution.values()):
        raise ValueError("rating counts cannot be negative")
    average = sum(score * n for score, n in distribution.items()) / count if count else None
    return Satisfaction(count, average, dict(sorted(distribution.items())))


def returns_rate(delivered: Iterable[Deadline], returned: frozenset[str]) -> Ratio:
    """Of the orders delivered in the window, the share with a return requested so far.

    A cohort rate: returns follow their delivery by days, so a recent window reads low
    until its returns have had time to arrive (compare windows of the same age).
    """
    cohort = {d.order_id for d in delivered}
    return Ratio(len(cohort & returned), len(cohort))


def inventory_accuracy(counts: Mapping[str, int]) -> Ratio:
    """Counts whose book matched / counts closed with a result."""
    matched = counts.get(COUNT_MATCHED, 0)
    return Ratio(matched, matched + counts.get(COUNT_ADJUSTED, 0))


def adjustments(totals: Iterable[AdjustmentTotal]) -> Adjustments:
    """Booked differences in units, and in value per currency."""
    rows = list(totals)
    values: dict[str, tuple[int, int]] = {}
    for row in rows:
        if row.value_net_minor is None:
            continue
        code = row.currency or NO_CURRENCY
        net, gross = values.get(code, (0, 0))
        values[code] = (net + row.value_net_minor, gross + (row.value_gross_minor or 0))
    return Adjustments(
        count=sum(r.count for r in rows),
        units_net=sum(r.units_net for r in rows),
        units_gross=sum(r.units_gross for r in rows),
        values=tuple(AdjustmentValue(c, n, g) for c, (n, g) in sorted(values.items())),
    )


def floor_hour(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def hourly_series(
    counts: Mapping[datetime, int], start: datetime, end: datetime
) -> tuple[HourCount, ...]:
    """One entry per hour from the hour holding ``start`` up to ``end``, zeros included."""
    if end <= start:
        return ()
    bucketed: dict[datetime, int] = {}
    for hour, n in counts.items():
        key = floor_hour(hour)
        bucketed[key] = bucketed.get(key, 0) + n
    series = []
    hour = floor_hour(start)
    while hour < end:
        series.append(HourCount(hour, bucketed.get(hour, 0)))
        hour += HOUR
    return tuple(series)


def build_report(inputs: KpiInputs) -> KpiReport:
    if inputs.end <= inputs.start:
        raise ValueError("the KPI window must end after it starts")
    return KpiReport(
        start=inputs.start,
        end=inputs.end,
        processing_time=summarise_durations(processing_times(inputs.started, inputs.packed)),
        pick_accuracy=pick_accuracy(inputs.activity),
        pack_pass_rate=pack_pass_rate(inputs.activity),
        qc_pass_rate=qc_pass_rate(inputs.activity),
        on_time_shipping=on_time(inputs.shipped),
        on_time_delivery=on_time(inputs.delivered),
        satisfaction=None if inputs.ratings is None else satisfaction(inputs.ratings),
        returns_rate=(
            None if inputs.returned is None else returns_rate(inputs.delivered, inputs.returned)
        ),
        orders_by_state=dict(sorted(inputs.orders_by_state.items())),
        received_per_hour=hourly_series(inputs.received_per_hour, inputs.start, inputs.end),
        packed_per_hour=hourly_series(inputs.packed_per_hour, inputs.start, inputs.end),
        inventory_accuracy=inventory_accuracy(inputs.counts),
        adjustments=adjustments(inputs.adjustments),
    )
