"""device_sim plays the device side on its own: it must not borrow the host side's code."""

from __future__ import annotations

import ast
from pathlib import Path

import device_sim

FORBIDDEN = ("drivers", "controller", "api")


def test_device_sim_imports_neither_drivers_nor_controller_nor_api() -> None:
    offenders = []
    for path in sorted(Path(device_sim.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [
                f"{path.name}: {name}" for name in names if name.split(".")[0] in FORBIDDEN
            ]
    assert offenders == []
