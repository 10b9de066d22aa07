from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wcs.domain import orders
from wcs.domain.states import (
    CANCELLABLE,
    INITIAL,
    RETURN_TRANSITIONS,
    STAGE_OF,
    TERMINAL,
    TRANSITIONS,
    OrderState,
    ReturnState,
    allowed_targets,
)
from wcs.errors import IllegalTransition

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
S = OrderState

DESIGN_MOVES = [
    (S.RECEIVED, S.VALIDATED),
    (S.RECEIVED, S.EXCEPTION),
    (S.VALIDATED, S.RESERVED),
    (S.VALIDATED, S.BACKORDERED),
    (S.BACKORDERED, S.RESERVED),
    (S.BACKORDERED, S.CANCELLED),
    (S.RESERVED, S.PICK_PLANNED),
    (S.PICK_PLANNED, S.PICKING),
    (S.PICKING, S.PICKED),
    (S.PICKED, S.QC_PASSED),
    (S.PICKED, S.QC_FAILED),
    (S.QC_FAILED, S.PICKING),
    (S.QC_FAILED, S.EXCEPTION),
    (S.QC_PASSED, S.PACKING),
    (S.PACKING, S.PACKED),
    (S.PACKED, S.ALLOCATED),
    (S.ALLOCATED, S.SHIPPED),
    (S.SHIPPED, S.IN_TRANSIT),
    (S.IN_TRANSIT, S.OUT_FOR_DELIVERY),
    (S.OUT_FOR_DELIVERY, S.DELIVERED),
    (S.DELIVERED, S.CLOSED),
]


@pytest.mark.parametrize(("src", "dst"), DESIGN_MOVES)
def test_design_moves_are_in_the_table(src: str, dst: str) -> None:
    assert dst in allowed_targets(src)


def test_every_state_is_reachable_and_has_a_stage() -> None:
    reachable = {INITIAL}
    frontier = [INITIAL]
    while frontier:
        for nxt in allowed_targets(frontier.pop()):
            if nxt not in reachable:
                reachable.add(nxt)
                frontier.append(nxt)
    assert reachable == set(OrderState)
    assert set(STAGE_OF) == set(OrderState)


def test_cancel_only_before_shipped() -> None:
    for state in OrderState:
        can = S.CANCELLED in allowed_targets(state)
        assert can == (state in CANCELLABLE), state
    assert S.SHIPPED not in CANCELLABLE
    assert S.ALLOCATED in CANCELLABLE


def test_terminal_states_have_no_way_out() -> None:
    for state in TERMINAL:
        assert allowed_targets(state) == ()


def test_table_has_no_duplicates_and_only_known_states() -> None:
    pairs = [(t.src, t.dst) for t in TRANSITIONS]
    assert len(pairs) == len(set(pairs))
    names = set(OrderState)
    assert all(t.src in names and t.dst in names for t in TRANSITIONS)
    rnames = set(ReturnState)
    assert all(t.src in rnames and t.dst in rnames for t in RETURN_TRANSITIONS)


def test_illegal_transition_names_order_from_and_to() -> None:
    with pytest.raises(IllegalTransition) as info:
        orders.transition("o1", S.RECEIVED, 1, S.SHIPPED, actor="t", reason=None, at=NOW)
    err = info.value
    assert (err.order_id, err.from_state, err.to_state) == ("o1", "received", "shipped")
    assert "o1" in str(err) and "received" in str(err) and "shipped" in str(err)
    assert "validated" in str(err)  # tells what is allowed instead


def test_final_and_unknown_states_are_explained() -> None:
    with pytest.raises(IllegalTransition, match="final"):
        orders.transition("o1", S.CLOSED, 9, S.RECEIVED, actor="t", reason=None, at=NOW)
    with pytest.raises(IllegalTransition, match="no such state"):
        orders.transition("o1", S.RECEIVED, 1, "teleported", actor="t", reason=None, at=NOW)


@given(st.lists(st.sampled_from(list(OrderState)), max_size=40))
def test_random_walks_stay_legal_and_gap_free(targets: list[str]) -> None:
    event = orders.created("o1", "t", NOW)
    history = [event]
    for target in targets:
        try:
            event = orders.transition(
                "o1", event.to_state, event.seq, target, actor="t", reason=None, at=NOW
            )
        except IllegalTransition:
            assert target not in allowed_targets(event.to_state)
            continue
        history.append(event)
    assert [e.seq for e in history] == list(range(1, len(history) + 1))
    for prev, cur in itertools.pairwise(history):
        assert cur.from_state == prev.to_state
        assert cur.to_state in allowed_targets(prev.to_state)
