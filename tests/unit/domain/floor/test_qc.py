"""QC bench rules (``wcs.domain.floor.qc``): the count, the verdicts, the outcome."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.domain.floor.legal import check_tote_moves, of
from wcs.domain.floor.effects import Effect, MoveTotes, OrderMove, Record, SaveCheck, SaveTote
from wcs.domain.floor.machines import CHECK_MOVES, CheckState, ToteState
from wcs.domain.floor.qc import (
    COUNTING,
    Check,
    ItemScan,
    QcBench,
    QcEvent,
    ToteAtBench,
    Verdict,
    decide,
)
from wcs.domain.states import OrderState

BENCH = "QC1"
EXPECTED = {"SKU-A": 2, "SKU-B": 1}
CODES = {"4006381333931": "SKU-A", "SKU-A": "SKU-A", "4006381333948": "SKU-B", "SKU-B": "SKU-B"}
FOREIGN = {"4006381333955": "SKU-C"}  # known to the catalogue, not in this order

Outcome = str | None


def run(bench: QcBench, event: QcEvent) -> tuple[QcBench, list[Effect], Outcome]:
    result = decide(bench, event)
    assert decide(bench, event) == result  # deterministic
    check_tote_moves(result[1])
    return result


def at_bench(require_operator: bool = False, expected: Mapping[str, int] = EXPECTED) -> QcBench:
    bench, _, outcome = run(
        QcBench(BENCH, require_operator),
        ToteAtBench("QS1", "T-1", "O1", OrderState.PICKED, expected, {**CODES, **FOREIGN}),
    )
    assert outcome == COUNTING
    return bench


def scan(bench: QcBench, *codes: str) -> tuple[QcBench, list[Effect], Outcome]:
    effects: list[Effect] = []
    outcome: Outcome = None
    for code in codes:
        bench, more, outcome = run(bench, ItemScan("QS1", code))
        effects += more
    return bench, effects, outcome


def finished(effects: list[Effect], passed: bool, reason: str) -> None:
    """The effects end the check of O1 with ``passed`` for ``reason``."""
    [saved] = [s for s in of(SaveCheck, effects) if s.result is not None]
    assert saved.result == (CheckState.PASSED if passed else CheckState.FAILED)
    assert saved.note == reason and saved.station == BENCH
    assert of(OrderMove, effects) == [
        OrderMove(
            "O1",
            OrderState.PICKED,
            OrderState.QC_PASSED if passed else OrderState.QC_FAILED,
            reason,
        )
    ]
    [record] = [r for r in of(Record, effects) if r.kind in ("qc_pass", "qc_fail")]
    assert (record.kind, record.ok) == ("qc_pass" if passed else "qc_fail", passed)
    assert of(MoveTotes, effects) == [
        MoveTotes(
            "O1",
            (ToteState.TO_QC, ToteState.QC),
            ToteState.QC if passed else ToteState.EXCEPTION,
        )
    ]


# --- the tote ------------------------------------------------------------------------


def test_a_picked_orders_tote_opens_its_count() -> None:
    bench, effects, outcome = run(
        QcBench(BENCH),
        ToteAtBench("QS1", "T-1", "O1", OrderState.PICKED, EXPECTED, CODES),
    )
    assert outcome == COUNTING
    assert effects == [
        SaveTote("T-1", "O1", ToteState.QC, BENCH),
        Record("qc_start", True, "O1", "QS1", {"station": BENCH}),
        SaveCheck("O1", BENCH, {}, None, None, None, None),
    ]
    assert bench.check == Check("O1", EXPECTED, CODES)


@pytest.mark.parametrize(
    ("order", "state"),
    [(None, None), ("O1", OrderState.PICKING), ("O1", OrderState.QC_PASSED)],
)
def test_a_tote_not_waiting_for_qc_is_logged_and_left(order: str | None, state: str) -> None:
    before = QcBench(BENCH)
    bench, effects, outcome = run(before, ToteAtBench("QS1", "T-1", order, state, EXPECTED, CODES))
    assert (bench, outcome) == (before, None)
    assert effects == [
        Record(
            "qc_unexpected_tote",
            False,
            order,
            "QS1",
            {"station": BENCH, "tote": "T-1", "state": state},
        )
    ]


def test_an_item_without_a_tote_on_the_bench_is_logged() -> None:
    before = QcBench(BENCH)
    bench, effects, outcome = run(before, ItemScan("QS1", "SKU-A"))
    assert (bench, outcome) == (before, None)
    assert effects == [
        Record("qc_no_tote", False, None, "QS1", {"station": BENCH, "code": "SKU-A"})
    ]


# --- the count -----------------------------------------------------------------------


def test_the_count_goes_on_until_every_line_is_complete() -> None:
    bench, effects, outcome = scan(at_bench(), "4006381333931", "SKU-B")
    assert outcome == COUNTING
    assert of(SaveCheck, effects)[-1] == SaveCheck(
        "O1", BENCH, {"SKU-A": 1, "SKU-B": 1}, None, None, None, None
    )
    assert of(OrderMove, effects) == []
    bench, effects, outcome = scan(bench, "SKU-A")
    assert outcome == CheckState.PASSED
    finished(effects, True, "count complete")
    assert of(SaveCheck, effects)[-1].scanned == EXPECTED
    assert bench.check is None


@pytest.mark.parametrize(
    ("codes", "reason"),
    [
        (["4006381333955"], "item 4006381333955 is not in the order"),  # another SKU
        (["SKU-A", "NO-SUCH-CODE"], "item NO-SUCH-CODE is not in the order"),
        (["SKU-B", "SKU-B"], "2 x SKU-B counted, order has 1"),
        (["SKU-A", "SKU-A", "SKU-A"], "3 x SKU-A counted, order has 2"),
        (["Z" * 60], f"item {'Z' * 40} is not in the order"),
    ],
)
def test_a_wrong_count_fails_at_once(codes: list[str], reason: str) -> None:
    bench, effects, outcome = scan(at_bench(), *codes)
    assert outcome == CheckState.FAILED
    finished(effects, False, reason)
    assert bench.check is None


def test_an_extra_unit_is_in_the_failed_count() -> None:
    _, effects, _ = scan(at_bench(), "SKU-B", "SKU-B")
    assert of(SaveCheck, effects)[-1].scanned == {"SKU-B": 2}


def test_scans_after_the_outcome_find_no_tote() -> None:
    bench, _, _ = scan(at_bench(), "SKU-B", "SKU-A", "SKU-A")
    _, effects, outcome = run(bench, ItemScan("QS1", "SKU-A"))
    assert outcome is None
    assert [r.kind for r in of(Record, effects)] == ["qc_no_tote"]


def test_a_new_tote_starts_a_new_count() -> None:
    bench, _, _ = scan(at_bench(), "SKU-A")
    bench, _, _ = run(
        bench, ToteAtBench("QS1", "T-2", "O2", OrderState.PICKED, {"SKU-B": 1}, CODES)
    )
    assert bench.check == Check("O2", {"SKU-B": 1}, CODES)


# --- the operator's verdicts -----------------------------------------------------------


def test_with_the_operator_required_a_complete_count_waits_for_the_verdicts() -> None:
    bench, effects, outcome = scan(at_bench(require_operator=True), "SKU-A", "SKU-A", "SKU-B")
    assert outcome == COUNTING and of(OrderMove, effects) == []
    bench, effects, outcome = run(bench, Verdict("O1", True, True, "neat"))
    assert outcome == CheckState.PASSED
    finished(effects, True, "count complete")
    assert of(SaveCheck, effects)[-1].packaging_ok is True


def test_verdicts_before_the_count_is_complete_are_kept() -> None:
    bench = at_bench(require_operator=True)
    bench, effects, outcome = run(bench, Verdict("O1", True, True, None))
    assert outcome == COUNTING
    assert of(SaveCheck, effects) == [SaveCheck("O1", BENCH, {}, True, True, None, None)]
    _, effects, outcome = scan(bench, "SKU-A", "SKU-A", "SKU-B")
    assert outcome == CheckState.PASSED


@pytest.mark.parametrize("require_operator", [False, True])
@pytest.mark.parametrize(
    ("packaging", "appearance", "reason"),
    [
        (False, True, "packaging not acceptable"),
        (True, False, "appearance not acceptable"),
        (False, False, "packaging not acceptable"),
    ],
)
def test_a_bad_verdict_fails_the_check(
    require_operator: bool, packaging: bool, appearance: bool, reason: str
) -> None:
    bench, _, _ = scan(at_bench(require_operator), "SKU-A")
    bench, effects, outcome = run(bench, Verdict("O1", packaging, appearance, "crushed"))
    assert outcome == CheckState.FAILED
    finished(effects, False, reason)


@pytest.mark.parametrize("on_bench", [False, True])
def test_a_verdict_for_an_order_not_on_the_bench_is_ignored(on_bench: bool) -> None:
    before = at_bench() if on_bench else QcBench(BENCH)
    assert run(before, Verdict("O9", False, False, None)) == (before, [], None)


def test_without_the_operator_required_the_count_alone_passes() -> None:
    _, effects, outcome = scan(at_bench(), "SKU-A", "SKU-B", "SKU-A")
    assert outcome == CheckState.PASSED
    finished(effects, True, "count complete")


# --- properties ----------------------------------------------------------------------

ALL_CODES = [*CODES, *FOREIGN, "NO-SUCH-CODE"]


@settings(max_examples=300, deadline=None)
@given(
    expected=st.dictionaries(st.sampled_from(["SKU-A", "SKU-B"]), st.integers(1, 3), min_size=1),
    codes=st.lists(st.sampled_from(ALL_CODES), max_size=10),
    verdict=st.none() | st.tuples(st.integers(0, 10), st.booleans(), st.booleans()),
    require_operator=st.booleans(),
)
def test_a_check_passes_exactly_when_the_count_and_verdicts_are_right(
    expected: dict[str, int],
    codes: list[str],
    verdict: tuple[int, bool, bool] | None,
    require_operator: bool,
) -> None:
    bench = at_bench(require_operator, expected)
    events: list[QcEvent] = [ItemScan("QS1", c) for c in codes]
    if verdict is not None:
        events.insert(min(verdict[0], len(events)), Verdict("O1", verdict[1], verdict[2], None))
    counted: Counter[str] = Counter()
    judged: tuple[bool, bool] | None = None
    check = CheckState.COUNTING
    outcomes: list[Outcome] = []
    for event in events:
        bench, effects, outcome = run(bench, event)
        outcomes.append(outcome)
        if check != CheckState.COUNTING:  # finished: nothing moves any more
            assert of(OrderMove, effects) == [] and of(SaveCheck, effects) == []
            continue
        match event:
            case ItemScan(code=code):
                if code in CODES:
                    counted[CODES[code]] += 1
                    wrong = (
                        CODES[code] not in expected or counted[CODES[code]] > expected[CODES[code]]
                    )
                else:
                    wrong = True
            case Verdict():
                judged = (event.packaging_ok, event.appearance_ok)
                wrong = not all(judged)
        right = counted == Counter(expected) and (judged is not None or not require_operator)
        want = CheckState.FAILED if wrong else CheckState.PASSED if right else COUNTING
        assert outcome == want, (event, counted, judged)
        if want != COUNTING:
            assert want in CHECK_MOVES[check]
            check = CheckState(want)
            assert len(of(OrderMove, effects)) == 1
            assert bench.check is None
        else:
            assert of(OrderMove, effects) == []
            assert bench.check is not None and bench.check.scanned == +counted
    assert sum(o in (CheckState.PASSED, CheckState.FAILED) for o in outcomes) <= 1
