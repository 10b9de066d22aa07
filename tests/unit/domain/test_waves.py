"""Pick orders and tasks, and the wave release rule (cut-offs, priority, SLA, cap)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wcs.domain.geometry import Layout, Location
from wcs.domain.picking import PickLine, PickOrder, pick_tasks, urgency_key
from wcs.domain.waves import (
    WavePolicy,
    latest_release_times,
    plan_wave,
    select_wave,
    should_release,
)
from wcs.errors import ValidationFailed

DAY = datetime(2025, 11, 28, tzinfo=UTC)


def at(hh: int, mm: int = 0) -> datetime:
    return DAY + timedelta(hours=hh, minutes=mm)


def order(
    oid: str,
    priority: int = 0,
    cutoff: datetime | None = None,
    sla: datetime | None = None,
    ready: datetime | None = None,
    qty: int = 1,
    where: tuple[int, int] = (1, 1),
) -> PickOrder:
    location = Location(f"A-{where[0]:02d}-{where[1]:02d}-1", *where)
    return PickOrder(
        order_id=oid,
        lines=(PickLine(1, "SKU1", qty, location),),
        priority=priority,
        sla_deadline=sla,
        carrier="dhl" if cutoff else None,
        cutoff=cutoff,
        ready_at=ready,
    )


def ids(orders: tuple[PickOrder, ...]) -> list[str]:
    return [o.order_id for o in orders]


# --- the order model --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"priority": 10}, "priority"),
        ({"priority": -1}, "priority"),
        ({"lines": ()}, "no lines"),
        ({"sla_deadline": datetime(2025, 11, 28, 12)}, "time zone"),
    ],
)
def test_bad_orders_are_refused(changes: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"order_id": "O1", "lines": order("x").lines}
    fields.update(changes)
    with pytest.raises(ValidationFailed, match=message):
        PickOrder(**fields)  # type: ignore[arg-type]


def test_bad_lines_are_refused() -> None:
    loc = Location("A-01-01-1", 1, 1)
    with pytest.raises(ValidationFailed, match="repeat"):
        PickOrder("O1", (PickLine(1, "S", 1, loc), PickLine(1, "T", 1, loc)))
    with pytest.raises(ValidationFailed, match="positive"):
        PickOrder("O1", (PickLine(1, "S", 0, loc),))


def test_tasks_carry_the_order_facts_and_come_most_urgent_first() -> None:
    low = order("low", priority=1, sla=at(12))
    high = order("high", priority=7, sla=at(20))
    soon = order("soon", priority=1, sla=at(10))
    tasks = pick_tasks([low, high, soon])
    assert [t.order_id for t in tasks] == ["high", "soon", "low"]
    assert tasks[0].priority == 7
    assert tasks[0].sla_deadline == at(20)
    assert tasks[0].zone == "pick"


def test_urgency_ties_fall_to_cutoff_then_first_come_then_id() -> None:
    a = order("a", cutoff=at(18), ready=at(8))
    b = order("b", cutoff=at(16), ready=at(9))
    c = order("c", cutoff=at(16), ready=at(7))
    d = order("d", cutoff=at(16), ready=at(7))
    e = order("e")
    assert [o.order_id for o in sorted([a, b, c, d, e], key=urgency_key)] == [
        "c",
        "d",
        "b",
        "a",
        "e",
    ]


# --- wave release by hand ---------------------------------------------------------------

# Lead 1 h, rate 6 orders/h (10 min each). Cut-off queue: a, b, c (16:00, by priority)
# then e (20:00). Backwards: e 19:00 - 0:10 = 18:50; c min(15:00, 18:50) - 0:10 = 14:50;
# b min(15:00, 14:50) - 0:10 = 14:40; a 14:30.
PEAK = WavePolicy(max_orders=3, cutoff_lead=timedelta(hours=1), pick_rate_per_hour=6)
A = order("a", priority=5, cutoff=at(16))
B = order("b", priority=3, cutoff=at(16))
C = order("c", priority=1, cutoff=at(16))
D = order("d", priority=9)
E = order("e", priority=0, cutoff=at(20))
QUEUE = [E, D, C, B, A]


def test_latest_release_prices_the_queue() -> None:
    assert latest_release_times(QUEUE, PEAK) == {
        "a": at(14, 30),
        "b": at(14, 40),
        "c": at(14, 50),
        "e": at(18, 50),
    }


def test_latest_release_without_a_rate_is_cutoff_minus_lead() -> None:
    policy = WavePolicy(cutoff_lead=timedelta(hours=1))
    assert latest_release_times(QUEUE, policy) == {
        "a": at(15),
        "b": at(15),
        "c": at(15),
        "e": at(19),
    }


def test_due_orders_lead_the_wave_whatever_their_priority() -> None:
    picked = select_wave(QUEUE, at(14, 45), PEAK)
    assert picked.due == ("a", "b")
    # a, b are due; then by priority d (9) fills the cap of 3.
    assert ids(picked.released) == ["a", "b", "d"]
    assert ids(picked.held) == ["c", "e"]
    assert picked.at_risk == ()


def test_before_any_cutoff_pressure_priority_rules() -> None:
    picked = select_wave(QUEUE, at(10), PEAK)
    assert picked.due == ()
    assert ids(picked.released) == ["d", "a", "b"]


def test_due_orders_held_by_the_cap_are_at_risk() -> None:
    policy = WavePolicy(max_orders=1, cutoff_lead=timedelta(hours=1), pick_rate_per_hour=6)
    picked = select_wave(QUEUE, at(14, 45), policy)
    assert ids(picked.released) == ["a"]
    assert picked.at_risk == ("b",)


def test_orders_that_cannot_make_the_cutoff_are_at_risk() -> None:
    # 14:55 + 1:00 lead + 0:10 picking = 16:05, past the 16:00 cut-off of a, b, c.
    picked = select_wave(QUEUE, at(14, 55), PEAK)
    assert picked.due == ("a", "b", "c")
    assert ids(picked.released) == ["a", "b", "c"]
    assert picked.at_risk == ("a", "b", "c")


def test_item_cap_passes_over_orders_that_do_not_fit() -> None:
    orders = [order("big", priority=9, qty=30), order("x", priority=5, qty=5), order("y", qty=4)]
    picked = select_wave(orders, at(8), WavePolicy(max_items=10))
    assert ids(picked.released) == ["x", "y"]
    assert ids(picked.held) == ["big"]


def test_should_release() -> None:
    policy = WavePolicy(fill_orders=3, cutoff_lead=timedelta(hours=1))
    assert not should_release([], at(8), policy)
    assert should_release([order("1"), order("2"), order("3")], at(8), policy)
    assert not should_release([order("1"), order("2", cutoff=at(16))], at(8), policy)
    assert should_release([order("1"), order("2", cutoff=at(16))], at(15), policy)


def test_release_refuses_naive_now_and_duplicates() -> None:
    with pytest.raises(ValidationFailed, match="time zone"):
        select_wave([A], datetime(2025, 11, 28, 8), PEAK)
    with pytest.raises(ValidationFailed, match="twice"):
        select_wave([A, A], at(8), PEAK)


# --- properties -------------------------------------------------------------------------

moments = st.one_of(st.none(), st.integers(0, 12).map(lambda h: at(8 + h)))


@st.composite
def backlogs(draw: st.DrawFn) -> list[PickOrder]:
    count = draw(st.integers(0, 25))
    return [
        order(
            f"O{n:02d}",
            priority=draw(st.integers(0, 9)),
            cutoff=draw(moments),
            sla=draw(moments),
            ready=draw(moments),
            qty=draw(st.integers(1, 4)),
        )
        for n in range(count)
    ]


@settings(max_examples=150, deadline=None)
@given(
    backlogs(),
    st.integers(1, 10),
    st.sampled_from([None, 6.0, 60.0]),
    st.integers(0, 10),
    st.randoms(use_true_random=False),
)
def test_selection_rules_hold(
    backlog: list[PickOrder],
    cap: int,
    rate: float | None,
    hour: int,
    shuffle: random.Random,
) -> None:
    policy = WavePolicy(max_orders=cap, cutoff_lead=timedelta(minutes=45), pick_rate_per_hour=rate)
    now = at(8 + hour)
    picked = select_wave(backlog, now, policy)
    released, held = ids(picked.released), ids(picked.held)
    assert sorted(released + held) == sorted(o.order_id for o in backlog)
    assert len(released) == min(cap, len(backlog))
    # Due orders first, in cut-off order; then the rest by urgency.
    due = set(picked.due)
    n_due = sum(1 for oid in released if oid in due)
    assert all(oid in due for oid in released[:n_due])
    assert not any(oid in due for oid in released[n_due:])
    cutoffs = [o.cutoff for o in picked.released[:n_due]]
    assert cutoffs == sorted(cutoffs)  # type: ignore[type-var]
    rest = [urgency_key(o) for o in picked.released[n_due:]]
    assert rest == sorted(rest)
    # Nothing held is more urgent than something released for urgency alone.
    if rest:
        assert all(urgency_key(o) > rest[-1] for o in picked.held if o.order_id not in due)
    # Only due orders may be held at risk by the cap, and they are reported.
    for o in picked.held:
        if o.order_id in due:
            assert o.order_id in picked.at_risk
    # The input order does not matter.
    mixed = list(backlog)
    shuffle.shuffle(mixed)
    assert select_wave(mixed, now, policy) == picked


def test_plan_wave_does_not_depend_on_input_order() -> None:
    rng = random.Random(7)
    backlog = [
        order(
            f"O{n}",
            priority=rng.randint(0, 9),
            cutoff=rng.choice([None, at(12), at(16)]),
            where=(rng.randint(1, 6), rng.randint(1, 20)),
        )
        for n in range(40)
    ]
    layouts = {"pick": Layout(aisles=6, bays=20)}
    policy = WavePolicy(max_orders=25)
    plan = plan_wave(backlog, at(9), layouts, policy)
    assert len(plan.selection.released) == 25
    assert sum(len(b.orders) for b in plan.batches) == 25
    assert plan.distance_m == sum(b.distance_m for b in plan.batches)
    rng.shuffle(backlog)
    assert plan_wave(backlog, at(9), layouts, policy) == plan
