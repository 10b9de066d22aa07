"""Order transitions: (current state, wanted state) -> event, or IllegalTransition.

Events are append-only and numbered per order without gaps: the n-th event of an
order has ``seq == n``. The caller persists the event together with the new state
in one transaction; this module only decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from wcs.domain.states import (
    TERMINAL,
    OrderState,
    allowed_targets,
    find_return_transition,
    find_transition,
)
from wcs.errors import IllegalTransition

ACTOR_MAX = 64
REASON_MAX = 500


@dataclass(frozen=True, slots=True)
class OrderEvent:
    order_id: str
    seq: int
    from_state: str | None
    to_state: str
    actor: str
    reason: str | None
    at: datetime


def _known(state: str) -> bool:
    try:
        OrderState(state)
    except ValueError:
        return False
    return True


def created(order_id: str, actor: str, at: datetime, reason: str | None = None) -> OrderEvent:
    """The first event of every order: it enters the machine in ``received``."""
    return OrderEvent(order_id, 1, None, OrderState.RECEIVED, actor[:ACTOR_MAX], reason, at)


def transition(
    order_id: str,
    current: str,
    last_seq: int,
    target: str,
    *,
    actor: str,
    reason: str | None,
    at: datetime,
) -> OrderEvent:
    """Decide one move; raise IllegalTransition naming order, from and to."""
    if not _known(target):
        raise IllegalTransition(order_id, current, target, "no such state")
    if find_transition(current, target) is None:
        if current in TERMINAL:
            detail = f"'{current}' is final"
        else:
            options = ", ".join(allowed_targets(current)) or "none"
            detail = f"allowed from '{current}': {options}"
        raise IllegalTransition(order_id, current, target, detail)
    if reason is not None:
        reason = reason[:REASON_MAX]
    return OrderEvent(order_id, last_seq + 1, current, target, actor[:ACTOR_MAX], reason, at)


def check_return_move(subject: str, current: str, target: str) -> None:
    if find_return_transition(current, target) is None:
        raise IllegalTransition(subject, current, target, "not allowed for a return")
