"""A QC bench (design §1 step 4): a tote opens the count for its order, each scanned
item is counted, the operator judges packaging and appearance.

Fails at once on an item the order does not have, one unit too many, or a bad
verdict; passes when every line's count is complete (and, where the site asks for
it, both verdicts are in). The order moves ``picked -> qc_passed | qc_failed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from wcs.domain import pick_scan
from wcs.domain.floor.effects import (
    DeadLetter,
    Effect,
    MoveTotes,
    OrderMove,
    Record,
    SaveCheck,
    SaveTote,
)
from wcs.domain.floor.machines import CHECK_MOVES, CheckState, ToteState, step
from wcs.domain.states import OrderState


@dataclass(frozen=True, slots=True)
class Check:
    order_id: str
    expected: Mapping[str, int]  # SKU -> units ordered
    codes: Mapping[str, str]  # item code or GTIN -> SKU, for the order's SKUs
    scanned: Mapping[str, int] = field(default_factory=dict)
    packaging_ok: bool | None = None
    appearance_ok: bool | None = None
    note: str | None = None
    state: CheckState = CheckState.COUNTING


@dataclass(frozen=True, slots=True)
class QcBench:
    id: str
    require_operator: bool = False
    check: Check | None = None  # the order on the bench now


@dataclass(frozen=True, slots=True)
class ToteAtBench:
    """A tote scanned at the bench, with what the edge found about it."""

    device: str
    code: str
    order_id: str | None
    order_state: str | None
    expected: Mapping[str, int]
    codes: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ItemScan:
    device: str
    code: str
    symbology: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The operator's packaging and appearance judgement for the order on the bench."""

    order_id: str
    packaging_ok: bool
    appearance_ok: bool
    note: str | None


QcEvent = ToteAtBench | ItemScan | Verdict

COUNTING = "counting"


def decide(bench: QcBench, event: QcEvent) -> tuple[QcBench, list[Effect], str | None]:
    """The bench after ``event``, its effects, and the check's outcome where one is
    asked for (``counting``, ``passed``, ``failed``; None: nothing to say)."""
    effects: list[Effect] = []
    match event:
        case ToteAtBench():
            return _tote(bench, event, effects)
        case ItemScan():
            check = bench.check
            if check is None:
                effects.append(
                    Record(
                        "qc_no_tote",
                        False,
                        None,
                        event.device,
                        {"station": bench.id, "code": event.code[:64]},
                    )
                )
                return bench, effects, None
            # A GS1 label that is wrong is no count either way: scan the unit again.
            item = pick_scan.read_item(event.code, event.symbology)
            if isinstance(item, pick_scan.Refused):
                detail = {"station": bench.id, "code": event.code[:64], "reason": item.reason}
                effects.append(
                    Record("qc_scan_refused", False, check.order_id, event.device, detail)
                )
                effects.append(DeadLetter(item.reason))
                return bench, effects, None
            sku = pick_scan.sku_of(item, check.codes)
            if sku is None or sku not in check.expected:
                return _finish(
                    bench, check, False, f"item {event.code[:40]} is not in the order", effects
                )
            scanned = {**check.scanned, sku: check.scanned.get(sku, 0) + 1}
            check = replace(check, scanned=scanned)
            if scanned[sku] > check.expected[sku]:
                return _finish(
                    bench,
                    check,
                    False,
                    f"{scanned[sku]} x {sku} counted, order has {check.expected[sku]}",
                    effects,
                )
            return _evaluate(bench, check, effects)
        case Verdict():
            check = bench.check
            if check is None or check.order_id != event.order_id:
                return bench, effects, None
            check = replace(
                check,
                packaging_ok=event.packaging_ok,
                appearance_ok=event.appearance_ok,
                note=event.note,
            )
            return _evaluate(bench, check, effects)


def _tote(
    bench: QcBench, event: ToteAtBench, effects: list[Effect]
) -> tuple[QcBench, list[Effect], str | None]:
    if event.order_id is None or event.order_state != OrderState.PICKED:
        effects.append(
            Record(
                "qc_unexpected_tote",
                False,
                event.order_id,
                event.device,
                {"station": bench.id, "tote": event.code, "state": event.order_state},
            )
        )
        return bench, effects, None
    check = Check(event.order_id, dict(event.expected), dict(event.codes))
    effects.append(SaveTote(event.code, event.order_id, ToteState.QC, bench.id))
    effects.append(Record("qc_start", True, event.order_id, event.device, {"station": bench.id}))
    return _evaluate(replace(bench, check=check), check, effects)


def _saved(bench: QcBench, check: Check, result: str | None) -> SaveCheck:
    return SaveCheck(
        check.order_id,
        bench.id,
        dict(check.scanned),
        check.packaging_ok,
        check.appearance_ok,
        result,
        check.note,
    )


def _evaluate(
    bench: QcBench, check: Check, effects: list[Effect]
) -> tuple[QcBench, list[Effect], str | None]:
    if check.packaging_ok is False or check.appearance_ok is False:
        what = "packaging" if check.packaging_ok is False else "appearance"
        return _finish(bench, check, False, f"{what} not acceptable", effects)
    complete = dict(check.scanned) == dict(check.expected)
    judged = check.packaging_ok is not None and check.appearance_ok is not None
    if not complete or (bench.require_operator and not judged):
        effects.append(_saved(bench, check, None))
        return replace(bench, check=check), effects, COUNTING
    return _finish(bench, check, True, "count complete", effects)


def _finish(
    bench: QcBench, check: Check, passed: bool, reason: str, effects: list[Effect]
) -> tuple[QcBench, list[Effect], str | None]:
    state = step(
        CHECK_MOVES,
        f"QC check of {check.order_id}",
        check.state,
        CheckState.PASSED if passed else CheckState.FAILED,
    )
    check = replace(check, state=state, note=check.note or reason)
    effects.append(
        SaveCheck(
            check.order_id,
            bench.id,
            dict(check.scanned),
            check.packaging_ok,
            check.appearance_ok,
            state.value,
            reason,
        )
    )
    effects.append(
        OrderMove(
            check.order_id,
            OrderState.PICKED,
            OrderState.QC_PASSED if passed else OrderState.QC_FAILED,
            reason,
        )
    )
    effects.append(
        Record(
            "qc_pass" if passed else "qc_fail",
            passed,
            check.order_id,
            None,
            {"station": bench.id, "reason": reason},
        )
    )
    effects.append(
        MoveTotes(
            check.order_id,
            (ToteState.TO_QC, ToteState.QC),
            ToteState.QC if passed else ToteState.EXCEPTION,
        )
    )
    return replace(bench, check=None), effects, state.value
