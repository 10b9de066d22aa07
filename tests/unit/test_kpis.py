"""KPI arithmetic, table-tested on plain rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wcs.domain import kpis
from wcs.domain.kpis import ActivityCount, Deadline, KpiInputs, Ratio

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 0.5, 5.0),
        ([10.0, 20.0], 0.5, 15.0),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 0.5, 3.0),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 0.95, 4.8),
        ([3.0, 1.0, 2.0], 0.0, 1.0),
        ([3.0, 1.0, 2.0], 1.0, 3.0),
        (list(map(float, range(1, 101))), 0.95, 95.05),
    ],
)
def test_percentile(values: list[float], q: float, expected: float) -> None:
    assert kpis.percentile(values, q) == pytest.approx(expected)


@pytest.mark.parametrize(("values", "q"), [([], 0.5), ([1.0], -0.1), ([1.0], 1.5)])
def test_percentile_refuses(values: list[float], q: float) -> None:
    with pytest.raises(ValueError, match=r"percentile|quantile"):
        kpis.percentile(values, q)


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=50))
def test_percentiles_are_ordered_and_bounded(values: list[float]) -> None:
    summary = kpis.summarise_durations(values)
    assert summary.p50_s is not None and summary.p95_s is not None and summary.max_s is not None
    assert min(values) <= summary.p50_s <= summary.p95_s <= summary.max_s == max(values)


def test_processing_times_pair_first_event_with_packed() -> None:
    started = {"a": at(0), "b": at(10), "c": at(20)}
    packed = {"a": at(30), "b": at(15), "d": at(50)}
    # d has no first event in the rows (cannot happen in one query, but must not crash)
    assert sorted(kpis.processing_times(started, packed)) == [300.0, 1800.0]


def test_processing_time_never_negative() -> None:
    assert kpis.processing_times({"a": at(5)}, {"a": at(4)}) == [0.0]


def rows(*items: tuple[str, bool, int]) -> list[ActivityCount]:
    return [ActivityCount(kind, ok, n) for kind, ok, n in items]


@pytest.mark.parametrize(
    ("activity", "pick", "pack", "qc"),
    [
        ([], (0, 0), (0, 0), (0, 0)),
        (rows(("pick", True, 98), ("mispick", False, 2)), (98, 100), (0, 0), (0, 0)),
        # a pick recorded as not ok (short pick) counts against accuracy, not as a mispick
        (rows(("pick", True, 9), ("pick", False, 1)), (9, 10), (0, 0), (0, 0)),
        (rows(("weight_ok", True, 47), ("weight_mismatch", False, 3)), (0, 0), (47, 50), (0, 0)),
        (rows(("qc_pass", True, 19), ("qc_fail", False, 1)), (0, 0), (0, 0), (19, 20)),
        # kinds that feed no rate are ignored
        (rows(("label_printed", True, 40), ("route", True, 7)), (0, 0), (0, 0), (0, 0)),
    ],
)
def test_floor_rates(
    activity: list[ActivityCount],
    pick: tuple[int, int],
    pack: tuple[int, int],
    qc: tuple[int, int],
) -> None:
    assert kpis.pick_accuracy(activity) == Ratio(*pick)
    assert kpis.pack_pass_rate(activity) == Ratio(*pack)
    assert kpis.qc_pass_rate(activity) == Ratio(*qc)


def test_rate_is_none_when_nothing_was_measured() -> None:
    assert Ratio(0, 0).rate is None
    assert Ratio(49, 50).rate == pytest.approx(0.98)
    with pytest.raises(ValueError, match="good <= total"):
        Ratio(3, 2)


@pytest.mark.parametrize(
    ("milestones", "expected"),
    [
        ([], Ratio(0, 0)),
        ([Deadline("a", at(10), at(10))], Ratio(1, 1)),  # on the minute counts as on time
        ([Deadline("a", at(11), at(10))], Ratio(0, 1)),
        (
            [
                Deadline("a", at(5), at(10)),
                Deadline("b", at(15), at(10)),
                Deadline("c", at(15), None),  # no promise: not judged
            ],
            Ratio(1, 2),
        ),
    ],
)
def test_on_time(milestones: list[Deadline], expected: Ratio) -> None:
    assert kpis.on_time(milestones) == expected


@pytest.mark.parametrize(
    ("distribution", "count", "average"),
    [({}, 0, None), ({5: 3}, 3, 5.0), ({1: 1, 5: 1}, 2, 3.0), ({4: 2, 5: 1, 3: 1}, 4, 4.0)],
)
def test_satisfaction(distribution: dict[int, int], count: int, average: float | None) -> None:
    result = kpis.satisfaction(distribution)
    assert (result.count, result.average) == (count, average)
    assert list(result.distribution) == sorted(distribution)


def test_returns_rate_is_a_cohort_of_delivered_orders() -> None:
    delivered = [Deadline(o, at(0), None) for o in ("a", "b", "c", "d")]
    # "x" returned something delivered before the window: not part of this cohort
    assert kpis.returns_rate(delivered, frozenset({"b", "x"})) == Ratio(1, 4)


def test_hourly_series_fills_gaps_and_buckets() -> None:
    counts = {T0: 2, T0 + timedelta(hours=2, minutes=30): 1, T0 + timedelta(hours=2): 4}
    series = kpis.hourly_series(counts, T0 + timedelta(minutes=15), T0 + timedelta(hours=3))
    assert [(h.hour, h.count) for h in series] == [
        (T0, 2),
        (T0 + timedelta(hours=1), 0),
        (T0 + timedelta(hours=2), 5),
    ]
    assert kpis.hourly_series(counts, T0, T0) == ()


def test_hourly_series_accepts_naive_utc_from_sqlite() -> None:
    series = kpis.hourly_series({datetime(2026, 11, 25, 8): 3}, T0, T0 + timedelta(hours=1))
    assert [(h.hour, h.count) for h in series] == [(T0, 3)]


def test_build_report() -> None:
    inputs = KpiInputs(
        start=T0,
        end=T0 + timedelta(hours=2),
        started={"a": at(0), "b": at(0), "c": at(0)},
        packed={"a": at(10), "b": at(20), "c": at(60)},
        activity=rows(("pick", True, 99), ("mispick", False, 1), ("weight_ok", True, 3)),
        shipped=[Deadline("a", at(30), at(60)), Deadline("b", at(90), at(60))],
        delivered=[Deadline("z", at(100), at(120))],
        ratings={5: 2, 4: 1},
        returned=frozenset({"z"}),
        orders_by_state={"reserved": 4, "packed": 3},
        received_per_hour={T0: 3},
        packed_per_hour={T0: 2, T0 + timedelta(hours=1): 1},
    )
    report = kpis.build_report(inputs)
    assert report.processing_time.count == 3
    assert report.processing_time.p50_s == 1200.0
    assert report.processing_time.p95_s == pytest.approx(1200 + 0.9 * 2400)
    assert report.pick_accuracy == Ratio(99, 100)
    assert report.pack_pass_rate == Ratio(3, 3)
    assert report.qc_pass_rate == Ratio(0, 0)
    assert report.on_time_shipping == Ratio(1, 2)
    assert report.on_time_delivery == Ratio(1, 1)
    assert report.satisfaction is not None and report.satisfaction.average == pytest.approx(14 / 3)
    assert report.returns_rate == Ratio(1, 1)
    assert list(report.orders_by_state) == ["packed", "reserved"]
    assert [h.count for h in report.received_per_hour] == [3, 0]
    assert [h.count for h in report.packed_per_hour] == [2, 1]


def test_build_report_without_delivery_tables() -> None:
    report = kpis.build_report(KpiInputs(start=T0, end=T0 + timedelta(hours=1)))
    assert report.satisfaction is None and report.returns_rate is None
    assert report.processing_time.p50_s is None


def test_build_report_refuses_empty_window() -> None:
    with pytest.raises(ValueError, match="window"):
        kpis.build_report(KpiInputs(start=T0, end=T0))


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({}, Ratio(0, 0)),
        ({"matched": 7, "adjusted": 3}, Ratio(7, 10)),
        ({"adjusted": 2}, Ratio(0, 2)),
        ({"matched": 4}, Ratio(4, 4)),
    ],
)
def test_inventory_accuracy_is_counts_whose_book_matched(
    counts: dict[str, int], expected: Ratio
) -> None:
    assert kpis.inventory_accuracy(counts) == expected
    assert kpis.inventory_accuracy(counts).rate == expected.rate


def test_adjustments_add_units_and_value_per_currency() -> None:
    totals = [
        # ten lost and four found, priced in CNY: -6 net, 14 gross
        kpis.AdjustmentTotal("CNY", 3, -6, 14, -600, 1400),
        kpis.AdjustmentTotal("EUR", 1, 2, 2, 500, 500),
        # a SKU without a price counts in units only
        kpis.AdjustmentTotal(None, 2, -3, 5, None, None),
    ]
    result = kpis.adjustments(totals)
    assert (result.count, result.units_net, result.units_gross) == (6, -7, 21)
    assert result.values == (
        kpis.AdjustmentValue("CNY", -600, 1400),
        kpis.AdjustmentValue("EUR", 500, 500),
    )
    # a price without a currency: ISO 4217's "no currency"
    priced = kpis.adjustments([kpis.AdjustmentTotal(None, 1, -1, 1, -250, 250)])
    assert priced.values == (kpis.AdjustmentValue("XXX", -250, 250),)
    empty = kpis.adjustments([])
    assert (empty.count, empty.units_net, empty.units_gross, empty.values) == (0, 0, 0, ())


def test_build_report_carries_inventory_accuracy_and_adjustments() -> None:
    report = kpis.build_report(
        KpiInputs(
            start=T0,
            end=T0 + timedelta(hours=1),
            counts={"matched": 9, "adjusted": 1},
            adjustments=[kpis.AdjustmentTotal("CNY", 1, -3, 3, -750, 750)],
        )
    )
    assert report.inventory_accuracy == Ratio(9, 10)
    assert report.adjustments.units_net == -3
    assert report.adjustments.values == (kpis.AdjustmentValue("CNY", -750, 750),)
    assert kpis.build_report(KpiInputs(start=T0, end=T0 + timedelta(hours=1))).adjustments == (
        kpis.Adjustments(0, 0, 0, ())
    )
