"""Discover ``bench/b_*.py`` modules, run them, print one table per section."""

from __future__ import annotations

import importlib
import pkgutil
import time
from collections.abc import Iterable

from rich.console import Console
from rich.table import Table

import bench
from bench.report import BenchOptions, Section


def discover(only: Iterable[str] = ()) -> list[str]:
    wanted = set(only)
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("b_"))
    return [n for n in names if not wanted or n.removeprefix("b_") in wanted or n in wanted]


def render(section: Section, console: Console) -> None:
    table = Table(title=section.title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("unit")
    table.add_column("target")
    table.add_column("met", justify="center")
    for row in section.rows:
        value = f"{row.value:,.2f}" if isinstance(row.value, float) else str(row.value)
        met = "" if row.met is None else ("yes" if row.met else "NO")
        table.add_row(row.metric, value, row.unit, row.target, met)
    console.print(table)
    for note in section.notes:
        console.print(f"  [dim]{note}[/dim]")


def run(opts: BenchOptions, only: Iterable[str] = ()) -> list[Section]:
    console = Console()
    sections: list[Section] = []
    for name in discover(only):
        module = importlib.import_module(f"bench.{name}")
        console.print(f"[bold]running {module.NAME}[/bold] ...")
        started = time.perf_counter()
        section: Section = module.run(opts)
        section.notes.append(f"took {time.perf_counter() - started:.1f} s")
        render(section, console)
        sections.append(section)
    return sections
