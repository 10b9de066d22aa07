"""The drivers benchmark runs end to end in its quick form and reports what it measured."""

from __future__ import annotations

from bench import b_drivers
from bench.report import BenchOptions


def test_quick_bench_reports_throughput_and_latency() -> None:
    section = b_drivers.run(BenchOptions(quick=True))
    rows = {row.metric: row for row in section.rows}
    assert rows["throughput: lines received / written"].met is True
    assert rows["throughput: scan lines pty -> broker -> subscriber"].value > 0  # type: ignore[operator]
    for key in ("p50", "p99"):
        assert rows[f"latency pty -> evt/scan {key}"].value > 0  # type: ignore[operator]
        assert rows[f"baseline MQTT publish -> receive {key}"].value > 0  # type: ignore[operator]
