"""Result types and printing for benchmarks."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass(frozen=True)
class BenchOptions:
    quick: bool = False  # smaller loads for smoke runs (tests use this)
    pg_url: str | None = None
    mqtt_url: str | None = None  # use an existing broker instead of a private Mosquitto


@dataclass
class Row:
    metric: str
    value: float | str
    unit: str = ""
    target: str = ""  # e.g. ">= 800 /s"; empty when there is none
    met: bool | None = None


@dataclass
class Section:
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self,
        metric: str,
        value: float | str,
        unit: str = "",
        target: str = "",
        met: bool | None = None,
    ) -> None:
        self.rows.append(Row(metric, value, unit, target, met))


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile; ``pct`` in 0..100."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summarize_ms(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "p50": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "max": max(ms) if ms else float("nan"),
        "mean": statistics.fmean(ms) if ms else float("nan"),
    }
