"""Dependencies point inward (design §2): checked from the imports in the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package -> top-level packages it must never import
# The console script (``cli``) is the composition root: it starts every process,
# importing each lazily inside its command, and nothing imports it.
FORBIDDEN: dict[str, set[str]] = {
    "wcs": {"controller", "api", "drivers", "device_sim", "demo", "bench", "cli"},
    "drivers": {"controller", "api", "device_sim", "demo", "cli"},
    "device_sim": {"drivers", "controller", "api", "demo", "cli"},
    "controller": {"api", "drivers", "device_sim", "demo", "cli"},
    "api": {"controller", "drivers", "device_sim", "demo", "cli"},
    "demo": {"cli"},
    "bench": {"cli"},
}

# The pure domain does no I/O: no database, network, broker, serial or file system.
IO_MODULES = {
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "aiomqtt",
    "paho",
    "httpx",
    "serial",
    "pymodbus",
    "socket",
    "asyncio",
    "subprocess",
    "fastapi",
    "uvicorn",
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_outer_layers(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imports(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"{package} imports what it must not: {offenders}"


def test_domain_is_pure() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imports(path) & IO_MODULES)
        for path in (ROOT / "wcs" / "domain").rglob("*.py")
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"the domain must not do I/O: {offenders}"
