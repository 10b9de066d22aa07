"""Order volume forecast on synthetic history with a known pattern, and staffing."""

from __future__ import annotations

import itertools
import math
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from wcs.domain.forecast import (
    Forecast,
    ForecastPoint,
    SeasonalModel,
    fit,
    forecast,
    suggest_staffing,
)
from wcs.errors import ValidationFailed

BERLIN = ZoneInfo("Europe/Berlin")
# Orders by local hour: quiet nights, a lunch bump and an evening peak at 20:00.
DAILY = np.array(
    [0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.45, 0.8, 1.1, 1.2, 1.25, 1.3,
     1.4, 1.3, 1.2, 1.15, 1.2, 1.4, 1.6, 1.8, 2.4, 1.7, 1.1, 0.5]
)  # fmt: skip
WEEKLY = np.array([1.15, 1.05, 1.0, 1.0, 0.95, 0.8, 1.05])  # Monday first
# Monday 3 March 2025: the history crosses the switch to summer time on 30 March.
START = datetime(2025, 3, 3, tzinfo=BERLIN)


def true_means(
    hours: int,
    *,
    level: float = 40.0,
    growth_per_week: float = 0.02,
    start: datetime = START,
    daily: np.ndarray = DAILY,
) -> np.ndarray:
    first = start.astimezone(UTC)
    means = np.empty(hours)
    for i in range(hours):
        local = (first + timedelta(hours=i)).astimezone(start.tzinfo)
        trend = 1 + growth_per_week * i / 168
        means[i] = level * trend * daily[local.hour] * WEEKLY[local.weekday()]
    return means


def sample(means: np.ndarray, seed: int = 42) -> np.ndarray:
    return np.random.default_rng(seed).poisson(means).astype(float)


TRAIN = 5 * 168
HOLD = 168
MEANS = true_means(TRAIN + HOLD)
COUNTS = sample(MEANS)


@pytest.fixture(scope="module")
def model() -> SeasonalModel:
    return fit(COUNTS[:TRAIN].tolist(), START)


@pytest.fixture(scope="module")
def held_out(model: SeasonalModel) -> Forecast:
    return model.forecast(HOLD)


def test_recovers_the_weekly_profile(model: SeasonalModel) -> None:
    truth = np.outer(WEEKLY, DAILY).reshape(168)
    truth = truth / truth.mean()
    fitted = np.asarray(model.profile)
    assert fitted.shape == (168,)
    assert fitted.mean() == pytest.approx(1.0)
    busy = truth >= 0.3  # quiet night slots hold a handful of orders: noise dominates
    relative = np.abs(fitted[busy] - truth[busy]) / truth[busy]
    assert relative.mean() < 0.08
    assert np.corrcoef(fitted, truth)[0, 1] > 0.98
    # The evening peak is found at 20:00 local on every day of the week.
    assert all(int(np.argmax(fitted[d * 24 : d * 24 + 24])) == 20 for d in range(7))


def test_forecast_tracks_the_true_mean(held_out: Forecast) -> None:
    expected = np.asarray(held_out.expected)
    truth = MEANS[TRAIN:]
    busy = truth >= 5
    assert np.mean(np.abs(expected[busy] - truth[busy]) / truth[busy]) < 0.10
    assert held_out.total == pytest.approx(truth.sum(), rel=0.07)


def test_beats_naive_baselines_on_held_out_mae(held_out: Forecast) -> None:
    actual = COUNTS[TRAIN:]
    expected = np.asarray(held_out.expected)
    model_mae = np.mean(np.abs(expected - actual))
    # "Same as last hour", even given every actual hour as it comes in: a week-long
    # forecast made once must still beat it.
    last_hour = np.concatenate(([COUNTS[TRAIN - 1]], actual[:-1]))
    naive_mae = np.mean(np.abs(last_hour - actual))
    seasonal_naive_mae = np.mean(np.abs(COUNTS[TRAIN - 168 : TRAIN] - actual))
    assert model_mae < 0.6 * naive_mae
    assert model_mae < seasonal_naive_mae
    # And it is close to the best possible: the noise around the true mean.
    assert model_mae < 1.25 * np.mean(np.abs(MEANS[TRAIN:] - actual))


def test_prediction_interval_covers_about_its_level(model: SeasonalModel) -> None:
    actual = COUNTS[TRAIN:]
    narrow = model.forecast(HOLD, level=0.8)
    wide = model.forecast(HOLD, level=0.95)
    low = np.array([p.low for p in narrow.points])
    high = np.array([p.high for p in narrow.points])
    coverage = np.mean((actual >= low) & (actual <= high))
    assert 0.7 <= coverage <= 0.92
    wide_low = np.array([p.low for p in wide.points])
    wide_high = np.array([p.high for p in wide.points])
    assert np.all(wide_high - wide_low >= high - low)
    assert np.mean((actual >= wide_low) & (actual <= wide_high)) >= 0.88
    assert all(p.low <= p.expected <= p.high and p.low >= 0 for p in narrow.points)


def test_forecast_hours_are_consecutive_and_follow_local_time(held_out: Forecast) -> None:
    hours = [p.at for p in held_out.points]
    assert hours[0] == START.astimezone(UTC) + timedelta(hours=TRAIN)
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(hours))
    # The history began in winter time; the forecast is in summer time. The peak must
    # stay at 20:00 on the wall clock, not move with UTC.
    expected = np.asarray(held_out.expected)
    for day in range(7):
        window = slice(day * 24, day * 24 + 24)
        peak = hours[window][int(np.argmax(expected[window]))]
        assert peak.astimezone(BERLIN).hour == 20
        assert peak.astimezone(UTC).hour == 18


def test_growth_is_carried_forward() -> None:
    weeks = 8
    means = true_means((weeks + 1) * 168, level=80.0, growth_per_week=0.10)
    counts = sample(means, seed=7)
    result = forecast(counts[: weeks * 168].tolist(), START, 168)
    last_week = means[(weeks - 1) * 168 : weeks * 168].sum()
    truth = means[weeks * 168 :].sum()  # 5.7 % more than last week
    assert result.total > last_week
    # Closer to what comes than "same as last week" (even last week's true volume).
    assert abs(result.total - truth) < abs(last_week - truth)
    assert result.total == pytest.approx(truth, rel=0.05)


def test_a_step_up_in_demand_is_absorbed() -> None:
    means = true_means(6 * 168, growth_per_week=0.0)
    means[TRAIN - 240 :] *= 1.5  # a campaign started ten days before the forecast
    counts = sample(means, seed=11)
    result = forecast(counts[:TRAIN].tolist(), START, 48)
    truth = means[TRAIN : TRAIN + 48]
    assert np.sum(result.expected) == pytest.approx(truth.sum(), rel=0.1)


def test_three_days_of_history_give_the_daily_shape() -> None:
    counts = COUNTS[:72]
    result = forecast(counts.tolist(), START, 24)
    truth = MEANS[72:96]
    assert np.corrcoef(result.expected, truth)[0, 1] > 0.95
    assert np.sum(result.expected) == pytest.approx(truth.sum(), rel=0.25)


def test_closed_hours_stay_near_zero() -> None:
    daily = DAILY.copy()
    daily[1:5] = 0.0  # no orders between 01:00 and 05:00
    start = datetime(2025, 1, 6, tzinfo=UTC)
    means = true_means(4 * 168, start=start, daily=daily, growth_per_week=0.0)
    result = forecast(sample(means, seed=5).tolist(), start, 24)
    for point in result.points:
        if 1 <= point.at.hour <= 4:
            assert point.expected < 0.1
            assert point.high < 1.0
        else:
            assert point.expected > 1


def test_fitting_months_of_history_is_quick() -> None:
    counts = sample(true_means(26 * 168), seed=3)
    started = time.perf_counter()
    model = fit(counts.tolist(), START)
    elapsed = time.perf_counter() - started
    assert model.history_hours == 16 * 168  # older history does not slow it down
    assert elapsed < 2.0


@pytest.mark.parametrize(
    ("counts", "start", "message"),
    [
        ([1.0] * 48, datetime(2025, 3, 3), "timezone-aware"),
        ([1.0] * 48, datetime(2025, 3, 3, 0, 30, tzinfo=UTC), "on the hour"),
        ([1.0] * 23, START, "at least 24 hours"),
        ([1.0] * 47 + [-1.0], START, "non-negative"),
        ([1.0] * 47 + [math.nan], START, "finite"),
    ],
)
def test_bad_history_is_refused(counts: list[float], start: datetime, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        fit(counts, start)


def test_bad_forecast_arguments_are_refused(model: SeasonalModel) -> None:
    with pytest.raises(ValidationFailed, match="at least 1 hour"):
        model.forecast(0)
    with pytest.raises(ValidationFailed, match="between 0 and 1"):
        model.forecast(24, level=1.0)


def points(*values: tuple[float, float, float]) -> list[ForecastPoint]:
    first = datetime(2025, 6, 2, 8, tzinfo=UTC)
    return [
        ForecastPoint(first + timedelta(hours=i), expected, low, high)
        for i, (low, expected, high) in enumerate(values)
    ]


def test_staffing_covers_each_hour_at_the_planned_pace() -> None:
    plan = suggest_staffing(
        points((0, 0, 0), (8, 10.2, 13), (80, 95, 110), (30, 40, 50)),
        picks_per_picker_hour=100,
        wave_size=25,
        lines_per_order=2,
        utilisation=0.8,  # 80 lines per picker-hour
    )
    assert [h.orders for h in plan.hours] == [0, 11, 95, 40]
    assert [h.picks for h in plan.hours] == [0, 22, 190, 80]
    assert [h.pickers for h in plan.hours] == [0, 1, 3, 1]
    assert [h.waves for h in plan.hours] == [0, 1, 4, 2]
    assert [h.orders_per_wave for h in plan.hours] == [0, 11, 24, 20]
    assert all(h.backlog_picks == 0 for h in plan.hours)
    assert plan.picker_hours == 5
    assert plan.peak_pickers == 3
    for hour in plan.hours:
        assert hour.pickers * 80 >= hour.picks
        assert hour.waves * 25 >= hour.orders


def test_a_capped_crew_carries_backlog_into_the_next_hours() -> None:
    plan = suggest_staffing(
        points((0, 95, 0), (0, 40, 0), (0, 0, 0)),
        picks_per_picker_hour=100,
        wave_size=25,
        lines_per_order=2,
        utilisation=0.8,
        max_pickers=2,
    )
    assert [h.pickers for h in plan.hours] == [2, 2, 0]
    assert [h.backlog_picks for h in plan.hours] == pytest.approx([30, 0, 0])
    assert plan.unfinished_picks == 0
    short = suggest_staffing(
        points((0, 500, 0)), picks_per_picker_hour=100, wave_size=50, max_pickers=3
    )
    assert short.unfinished_picks == pytest.approx(500 - 3 * 85)


def test_planning_for_the_high_end_and_a_minimum_crew() -> None:
    values = points((5, 10, 30), (0, 0.0, 0.4))
    expected = suggest_staffing(values, picks_per_picker_hour=10, wave_size=5)
    high = suggest_staffing(values, picks_per_picker_hour=10, wave_size=5, plan_for="high")
    assert [h.orders for h in expected.hours] == [10, 0]
    assert [h.orders for h in high.hours] == [30, 1]
    assert high.peak_pickers > expected.peak_pickers
    floor = suggest_staffing(values, picks_per_picker_hour=10, wave_size=5, min_pickers=1)
    assert [h.pickers for h in floor.hours] == [2, 1]


def test_staffing_from_a_real_forecast_peaks_with_demand(held_out: Forecast) -> None:
    plan = suggest_staffing(held_out, picks_per_picker_hour=60, wave_size=20, lines_per_order=2.5)
    assert len(plan.hours) == HOLD
    expected = np.asarray(held_out.expected)
    busiest = int(np.argmax(expected))
    assert plan.hours[busiest].pickers == plan.peak_pickers
    assert plan.peak_pickers == math.ceil(math.ceil(expected[busiest]) * 2.5 / (60 * 0.85))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"picks_per_picker_hour": 0}, "picks_per_picker_hour"),
        ({"wave_size": 0}, "wave_size"),
        ({"lines_per_order": 0}, "lines_per_order"),
        ({"utilisation": 1.5}, "utilisation"),
        ({"min_pickers": 3, "max_pickers": 2}, "min_pickers"),
    ],
)
def test_bad_staffing_arguments_are_refused(kwargs: dict[str, float], message: str) -> None:
    args: dict[str, float] = {"picks_per_picker_hour": 60, "wave_size": 20} | kwargs
    with pytest.raises(ValidationFailed, match=message):
        suggest_staffing(points((0, 1, 2)), **args)  # type: ignore[arg-type]
