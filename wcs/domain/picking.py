"""Pick tasks: what a released order asks of the pick floor.

A reserved order reaches pick planning as a ``PickOrder``: its lines already resolved
to storage locations, its priority (0-9, higher first), its SLA deadline and the
cut-off of the carrier it must leave with. ``PickTask`` is one line of it as the floor
sees it (``GET /tasks``). Every datetime here is timezone-aware; nothing reads a
clock, the caller passes ``now``.

Urgency (``urgency_key``): higher priority first, then the earlier SLA deadline, then
the earlier carrier cut-off, then first come first served, then the order id so the
order of equal orders never depends on input order. The carrier cut-off can overrule
this when it is close; that rule belongs to wave release (``wcs.domain.waves``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from wcs.domain.geometry import Location
from wcs.errors import ValidationFailed

PRIORITY_MIN, PRIORITY_MAX = 0, 9

# Sorts after every real moment; only ever compared with itself (see ``late_last``).
_NEVER = datetime.max.replace(tzinfo=UTC)


def late_last(moment: datetime | None) -> tuple[int, datetime]:
    """Sort key for an optional moment: missing ones go last."""
    return (1, _NEVER) if moment is None else (0, moment)


def _aware(name: str, order_id: str, moment: datetime | None) -> None:
    if moment is not None and moment.tzinfo is None:
        raise ValidationFailed(
            f"order {order_id}: {name} must carry a time zone", order_id=order_id, field=name
        )


@dataclass(frozen=True, slots=True)
class PickLine:
    line: int
    sku: str
    qty: int
    location: Location


@dataclass(frozen=True, slots=True)
class PickTask:
    """One line to pick, with the order facts that rank it."""

    order_id: str
    line: int
    sku: str
    qty: int
    location: Location
    priority: int
    sla_deadline: datetime | None
    carrier: str | None
    cutoff: datetime | None

    @property
    def zone(self) -> str:
        return self.location.zone


@dataclass(frozen=True, slots=True)
class PickOrder:
    order_id: str
    lines: tuple[PickLine, ...]
    priority: int = 0
    sla_deadline: datetime | None = None
    carrier: str | None = None
    # The cut-off of the carrier collection this order is booked on.
    cutoff: datetime | None = None
    # When it became pickable (reserved); first come first served among equals.
    ready_at: datetime | None = None

    def __post_init__(self) -> None:
        oid = self.order_id
        if not self.lines:
            raise ValidationFailed(f"order {oid} has no lines to pick", order_id=oid)
        if not PRIORITY_MIN <= self.priority <= PRIORITY_MAX:
            raise ValidationFailed(
                f"order {oid}: priority {self.priority} is outside {PRIORITY_MIN}-{PRIORITY_MAX}",
                order_id=oid,
            )
        numbers = [line.line for line in self.lines]
        if len(set(numbers)) != len(numbers):
            raise ValidationFailed(f"order {oid}: line numbers repeat", order_id=oid)
        for line in self.lines:
            if line.qty <= 0:
                raise ValidationFailed(
                    f"order {oid} line {line.line}: quantity must be positive", order_id=oid
                )
        _aware("sla_deadline", oid, self.sla_deadline)
        _aware("cutoff", oid, self.cutoff)
        _aware("ready_at", oid, self.ready_at)

    @property
    def items(self) -> int:
        return sum(line.qty for line in self.lines)

    @property
    def zones(self) -> tuple[str, ...]:
        return tuple(sorted({line.location.zone for line in self.lines}))

    @property
    def tasks(self) -> tuple[PickTask, ...]:
        return tuple(
            PickTask(
                order_id=self.order_id,
                line=line.line,
                sku=line.sku,
                qty=line.qty,
                location=line.location,
                priority=self.priority,
                sla_deadline=self.sla_deadline,
                carrier=self.carrier,
                cutoff=self.cutoff,
            )
            for line in sorted(self.lines, key=lambda ln: ln.line)
        )


UrgencyKey = tuple[int, tuple[int, datetime], tuple[int, datetime], tuple[int, datetime], str]


def urgency_key(order: PickOrder) -> UrgencyKey:
    """Most urgent first when sorted ascending; see the module docstring."""
    return (
        -order.priority,
        late_last(order.sla_deadline),
        late_last(order.cutoff),
        late_last(order.ready_at),
        order.order_id,
    )


def pick_tasks(orders: Sequence[PickOrder]) -> tuple[PickTask, ...]:
    """All tasks of the orders, most urgent order first, lines in line order."""
    return tuple(task for order in sorted(orders, key=urgency_key) for task in order.tasks)
