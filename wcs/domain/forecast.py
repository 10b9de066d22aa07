"""Order volume forecast by hour, and the pickers and waves it calls for.

The model: hourly order counts are a smooth *level* with a damped *trend*, times a
weekly *profile* of 168 factors, one per (weekday, hour) in the warehouse's local time
(so the evening peak stays at 20:00 across daylight-saving changes).

- Profile: ratio of sums against a centred moving average (robust to hours with no
  orders), shrunk towards hour-of-day x day-of-week while a slot has been seen in few
  weeks, so three days of history already give a usable daily shape.
- Level: exponential smoothing of the deseasonalised counts, its gain scaled by the
  hour's profile factor: for Poisson-like counts a quiet 3 a.m. hour says little about
  the level and a busy evening hour a lot.
- Trend: smoothed day-over-day change of the level (hour-to-hour changes are mostly
  noise), damped; only fitted once two weekly cycles are seen, as weekday effects
  look like a trend before that.
- Smoothing constants: a small grid, judged by Poisson-scaled errors one hour, one
  day and one week ahead (one-step error alone rewards chasing noise).
- Interval: the model's own error at each horizon over the last two weeks of history
  (backtest from every hour) as a quasi-Poisson dispersion that never shrinks with
  the horizon, plus the uncertainty of the slot's profile factor.

Holt-Winters from statsmodels would need two full seasons of 168 hours, knows nothing
of Poisson weighting and costs about a second to import; this is numpy and stdlib and
fits sixteen weeks of history in tens of milliseconds.

Everything is pure: history in, numbers out; timestamps only label the hours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from statistics import NormalDist
from typing import Literal

import numpy as np
import numpy.typing as npt

from wcs.errors import ValidationFailed

HOURS_PER_WEEK = 168
# More than this is not needed for level and trend, and keeps fitting fast.
MAX_HISTORY_HOURS = 16 * HOURS_PER_WEEK
MIN_HISTORY_HOURS = 24
# How many weeks of evidence a (weekday, hour) slot needs to outweigh the smooth
# hour-of-day x day-of-week prior by half.
_PRIOR_WEEKS = 1.0
_PROFILE_FLOOR = 1e-3
_ALPHAS = (0.005, 0.01, 0.02, 0.04, 0.08, 0.15)
_BETAS = (0.0, 0.005, 0.02, 0.05)
_PHIS = (0.995, 0.999)
_BACKTEST_HOURS = 2 * HOURS_PER_WEEK
_SELECTION_HORIZONS = (1, 24, 168)
_BACKTEST_MAX_H = 48

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SeasonalModel:
    """A fitted model; ``forecast()`` continues it from the end of the history."""

    end: datetime  # start of the first hour after the history (UTC)
    tz: tzinfo
    profile: tuple[float, ...]  # 168 factors, index weekday * 24 + hour, mean 1
    level: float  # orders per hour at profile 1, at the end of the history
    trend: float  # change of level per hour
    alpha: float
    beta: float
    phi: float
    # Quasi-Poisson dispersion by horizon (index h-1); variance = dispersion * mean.
    dispersion: tuple[float, ...]
    # Relative variance of each profile factor (it was estimated from finite counts).
    profile_var: tuple[float, ...]
    history_hours: int

    def slot(self, moment: datetime) -> int:
        local = moment.astimezone(self.tz)
        return local.weekday() * 24 + local.hour

    def expected(self, hours_ahead: int) -> float:
        """Mean orders in the hour starting ``hours_ahead - 1`` hours after ``end``."""
        damp = _damp_sum(self.phi, hours_ahead)
        moment = self.end + timedelta(hours=hours_ahead - 1)
        return max(0.0, (self.level + damp * self.trend) * self.profile[self.slot(moment)])

    def forecast(self, hours: int, *, level: float = 0.8) -> Forecast:
        if hours < 1:
            raise ValidationFailed(f"forecast horizon must be at least 1 hour, got {hours}")
        if not 0 < level < 1:
            raise ValidationFailed(f"interval level must be between 0 and 1, got {level}")
        z = NormalDist().inv_cdf(0.5 + level / 2)
        points: list[ForecastPoint] = []
        for h in range(1, hours + 1):
            mean = self.expected(h)
            dispersion = self.dispersion[min(h, len(self.dispersion)) - 1]
            slot_var = self.profile_var[self.slot(self.end + timedelta(hours=h - 1))]
            spread = z * math.sqrt(dispersion * mean + slot_var * mean * mean)
            points.append(
                ForecastPoint(
                    at=self.end + timedelta(hours=h - 1),
                    expected=mean,
                    low=max(0.0, mean - spread),
                    high=mean + spread,
                )
            )
        return Forecast(points=tuple(points), level=level, model=self)


@dataclass(frozen=True, slots=True)
class ForecastPoint:
    at: datetime  # start of the hour (UTC)
    expected: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Forecast:
    points: tuple[ForecastPoint, ...]
    level: float  # coverage of [low, high], e.g. 0.8
    model: SeasonalModel | None = None

    @property
    def expected(self) -> tuple[float, ...]:
        return tuple(p.expected for p in self.points)

    @property
    def total(self) -> float:
        return sum(p.expected for p in self.points)


def _validate(counts: Sequence[float], start: datetime) -> FloatArray:
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValidationFailed(
            "history start must be timezone-aware (the warehouse's local zone sets the "
            "hour-of-day and weekday pattern)"
        )
    if (start.minute, start.second, start.microsecond) != (0, 0, 0):
        raise ValidationFailed(f"history must start on the hour, got {start.isoformat()}")
    y = np.asarray(counts, dtype=np.float64)
    if y.ndim != 1:
        raise ValidationFailed("history must be a flat sequence of hourly counts")
    if len(y) < MIN_HISTORY_HOURS:
        raise ValidationFailed(
            f"need at least {MIN_HISTORY_HOURS} hours of history to forecast, got {len(y)}"
        )
    if not np.all(np.isfinite(y)) or np.any(y < 0):
        raise ValidationFailed("hourly counts must be finite and non-negative")
    return y


def _centred_mean(values: FloatArray, half_window: int) -> FloatArray:
    """Mean over [t - w, t + w], truncated at the ends."""
    n = len(values)
    cumsum = np.concatenate(([0.0], np.cumsum(values)))
    idx = np.arange(n)
    lo = np.clip(idx - half_window, 0, n)
    hi = np.clip(idx + half_window + 1, 0, n)
    result: FloatArray = (cumsum[hi] - cumsum[lo]) / (hi - lo)
    return result


def _profile(y: FloatArray, slots: npt.NDArray[np.int64]) -> tuple[FloatArray, FloatArray]:
    """Factors per (weekday, hour), mean 1, and their relative variance.

    A slot's factor is a ratio of order counts, so its relative variance is about one
    over the orders it saw (Poisson), scaled down by how much the smooth prior carries.
    """
    n = len(y)
    # A full week smooths the whole pattern away; with less history, a day has to do.
    half = HOURS_PER_WEEK // 2 if n >= 2 * HOURS_PER_WEEK else 12
    hours = slots % 24
    days = slots // 24
    s = np.ones(HOURS_PER_WEEK)
    for _ in range(4):
        base = _centred_mean(y / s[slots], half)
        y_slot = np.bincount(slots, weights=y, minlength=HOURS_PER_WEEK)
        base_slot = np.bincount(slots, weights=base, minlength=HOURS_PER_WEEK)
        seen = np.bincount(slots, minlength=HOURS_PER_WEEK).astype(np.float64)
        raw = np.divide(y_slot, base_slot, out=np.ones(HOURS_PER_WEEK), where=base_slot > 0)

        y_hour = np.bincount(hours, weights=y, minlength=24)
        base_hour = np.bincount(hours, weights=base, minlength=24)
        by_hour = np.divide(y_hour, base_hour, out=np.ones(24), where=base_hour > 0)
        expected_day = np.bincount(days, weights=base * by_hour[hours], minlength=7)
        y_day = np.bincount(days, weights=y, minlength=7)
        by_day = np.divide(y_day, expected_day, out=np.ones(7), where=expected_day > 0)
        prior = (by_day[:, None] * by_hour[None, :]).reshape(HOURS_PER_WEEK)

        weeks = seen  # one observation per slot per week
        s = (weeks * raw + _PRIOR_WEEKS * prior) / (weeks + _PRIOR_WEEKS)
        s = np.maximum(s, _PROFILE_FLOOR)
        s = s / s.mean()
    own_share = weeks / (weeks + _PRIOR_WEEKS)
    variance: FloatArray = own_share**2 / np.maximum(y_slot, 1.0)
    return s, variance


def _smooth(
    y: FloatArray, season: FloatArray, alpha: float, beta: float, phi: float
) -> tuple[FloatArray, FloatArray]:
    """Run the level/trend filter; the states after each hour.

    Gains are scaled by the hour's seasonal factor: for Poisson-like counts an hour
    tells about the level in proportion to how many orders it is expected to hold.
    """
    n = len(y)
    levels = np.empty(n)
    trends = np.empty(n)
    first_week = min(HOURS_PER_WEEK, n)
    level = float(np.sum(y[:first_week]) / max(float(np.sum(season[:first_week])), 1e-9))
    trend = 0.0
    y_list = y.tolist()
    s_list = season.tolist()
    for t in range(n):
        s_t = s_list[t]
        predicted = level + phi * trend
        level = predicted + min(1.0, alpha * s_t) * (y_list[t] / s_t - predicted)
        if t >= 24:
            # Slope over the last day, not the last hour: hour-to-hour level changes are
            # mostly noise, a day's change is mostly signal.
            slope = (level - levels[t - 24]) / 24
            trend = phi * trend + beta * (slope - phi * trend)
        levels[t] = level
        trends[t] = trend
    return levels, trends


def _damp_sum(phi: float, h: int) -> float:
    return sum(phi**j for j in range(1, h + 1))


def _horizon_errors(
    y: FloatArray,
    season: FloatArray,
    levels: FloatArray,
    trends: FloatArray,
    phi: float,
    h: int,
    first_origin: int,
) -> FloatArray | None:
    """Pearson-scaled squared errors of h-step forecasts from origins >= first_origin.

    Origin ``o`` has seen hours ``< o``; its forecast for hour ``o - 1 + h`` is compared
    with what came.
    """
    origins = np.arange(max(first_origin, 1), len(y) - h + 1)
    if len(origins) == 0:
        return None
    mean = np.maximum(levels[origins - 1] + _damp_sum(phi, h) * trends[origins - 1], 0.0)
    mean = mean * season[origins - 1 + h]
    err = y[origins - 1 + h] - mean
    result: FloatArray = err * err / np.maximum(mean, 1.0)
    return result


def _dispersion(
    y: FloatArray,
    season: FloatArray,
    levels: FloatArray,
    trends: FloatArray,
    phi: float,
) -> tuple[float, ...]:
    """Quasi-Poisson dispersion of h-step errors from every recent origin, h = 1..48."""
    first_origin = max(HOURS_PER_WEEK // 2, len(y) - _BACKTEST_HOURS)
    result: list[float] = []
    for h in range(1, _BACKTEST_MAX_H + 1):
        errors = _horizon_errors(y, season, levels, trends, phi, h, first_origin)
        if errors is None or len(errors) < 24:
            break
        result.append(float(np.mean(errors)))
    if not result:
        return (1.0,)
    # At least Poisson noise; never narrower further out than nearer in.
    return tuple(np.maximum.accumulate(np.maximum(np.asarray(result), 1.0)).tolist())


def fit(counts: Sequence[float], start: datetime) -> SeasonalModel:
    """Fit hourly order counts; ``start`` is the first hour, aware, in the site's zone."""
    y_all = _validate(counts, start)
    tz = start.tzinfo
    assert tz is not None
    first = start.astimezone(UTC)
    skip = max(0, len(y_all) - MAX_HISTORY_HOURS)
    y = y_all[skip:]
    first = first + timedelta(hours=skip)
    moments = [first + timedelta(hours=i) for i in range(len(y))]
    slots = np.fromiter(
        ((m.astimezone(tz).weekday() * 24 + m.astimezone(tz).hour) for m in moments),
        dtype=np.int64,
        count=len(y),
    )
    profile, profile_var = _profile(y, slots)
    season = profile[slots]
    # Weekday effects look like a trend until two weekly cycles have been seen.
    betas = _BETAS if len(y) >= 2 * HOURS_PER_WEEK else (0.0,)
    # Judge candidates on what planning needs: the next hour, the next day and the next
    # week (one-step error alone rewards models that chase noise and miss the trend).
    warmup = min(HOURS_PER_WEEK, len(y)) // 2
    best: tuple[float, float, float, float] | None = None
    for alpha in _ALPHAS:
        for beta in betas:
            for phi in _PHIS if beta > 0 else (1.0,):
                levels, trends = _smooth(y, season, alpha, beta, phi)
                scores = [
                    _horizon_errors(y, season, levels, trends, phi, h, warmup)
                    for h in _SELECTION_HORIZONS
                ]
                score = float(np.mean([np.mean(e) for e in scores if e is not None]))
                if best is None or score < best[0]:
                    best = (score, alpha, beta, phi)
    assert best is not None
    _, alpha, beta, phi = best
    levels, trends = _smooth(y, season, alpha, beta, phi)
    dispersion = _dispersion(y, season, levels, trends, phi)
    return SeasonalModel(
        end=first + timedelta(hours=len(y)),
        tz=tz,
        profile=tuple(float(v) for v in profile),
        level=float(levels[-1]),
        trend=float(trends[-1]),
        alpha=alpha,
        beta=beta,
        phi=phi,
        dispersion=dispersion,
        profile_var=tuple(float(v) for v in profile_var),
        history_hours=len(y),
    )


def forecast(
    counts: Sequence[float], start: datetime, hours: int, *, level: float = 0.8
) -> Forecast:
    """Fit ``counts`` (hourly, from ``start``) and forecast the next ``hours`` hours."""
    return fit(counts, start).forecast(hours, level=level)


# -- staffing ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StaffingHour:
    at: datetime
    orders: int  # orders planned for (expected, or the interval's upper end)
    picks: float  # pick lines arriving this hour
    pickers: int
    waves: int
    orders_per_wave: int
    backlog_picks: float  # lines still open at the end of the hour


@dataclass(frozen=True, slots=True)
class StaffingPlan:
    hours: tuple[StaffingHour, ...]

    @property
    def picker_hours(self) -> int:
        return sum(h.pickers for h in self.hours)

    @property
    def peak_pickers(self) -> int:
        return max((h.pickers for h in self.hours), default=0)

    @property
    def unfinished_picks(self) -> float:
        return self.hours[-1].backlog_picks if self.hours else 0.0


def suggest_staffing(
    forecast: Forecast | Sequence[ForecastPoint],
    picks_per_picker_hour: float,
    wave_size: int,
    *,
    lines_per_order: float = 1.0,
    plan_for: Literal["expected", "high"] = "expected",
    utilisation: float = 0.85,
    min_pickers: int = 0,
    max_pickers: int | None = None,
) -> StaffingPlan:
    """Pickers and waves per hour to keep up with the forecast.

    ``picks_per_picker_hour`` is a picker's line rate; ``utilisation`` leaves room for
    walking to the depot, breaks and exceptions (85 % is a common planning figure).
    Plan for ``"high"`` (the interval's upper end) where being short costs more than
    idle hands. With ``max_pickers`` the open lines carry over to the next hour as
    backlog, and the plan shows where the peak cannot be absorbed.
    """
    if picks_per_picker_hour <= 0:
        raise ValidationFailed("picks_per_picker_hour must be positive")
    if wave_size < 1:
        raise ValidationFailed("wave_size must be at least 1 order")
    if lines_per_order <= 0:
        raise ValidationFailed("lines_per_order must be positive")
    if not 0 < utilisation <= 1:
        raise ValidationFailed("utilisation must be in (0, 1]")
    if min_pickers < 0 or (max_pickers is not None and max_pickers < max(min_pickers, 1)):
        raise ValidationFailed("need 0 <= min_pickers <= max_pickers and max_pickers >= 1")
    points = forecast.points if isinstance(forecast, Forecast) else tuple(forecast)
    capacity = picks_per_picker_hour * utilisation
    backlog = 0.0
    hours: list[StaffingHour] = []
    for point in points:
        volume = point.high if plan_for == "high" else point.expected
        # Orders are whole; a fraction still means somebody may order.
        orders = math.ceil(volume - 1e-9)
        picks = orders * lines_per_order
        due = picks + backlog
        pickers = math.ceil(due / capacity - 1e-9) if due > 0 else 0
        pickers = max(pickers, min_pickers)
        if max_pickers is not None:
            pickers = min(pickers, max_pickers)
        backlog = max(0.0, due - pickers * capacity)
        waves = math.ceil(orders / wave_size) if orders else 0
        hours.append(
            StaffingHour(
                at=point.at,
                orders=orders,
                picks=picks,
                pickers=pickers,
                waves=waves,
                orders_per_wave=math.ceil(orders / waves) if waves else 0,
                backlog_picks=backlog,
            )
        )
    return StaffingPlan(tuple(hours))
