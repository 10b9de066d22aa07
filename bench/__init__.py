"""Benchmarks behind ``make bench`` / ``wcs bench``.

Each ``bench/b_*.py`` module exposes ``NAME`` (a short title) and
``run(opts: BenchOptions) -> Section``. The runner discovers them, runs them in name
order and prints every section; a baseline measured in the same run sits beside each
figure so ratios hold on a noisy machine.
"""
