"""docs/configuration.md lists every setting, each described, as the code defines it."""

from __future__ import annotations

from pathlib import Path

from wcs.settings_doc import render, variables

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_has_a_description() -> None:
    missing = [var for var, _, description in variables() if not description.strip()]
    assert not missing, (
        f"describe these in wcs/settings_doc.py or with Field(description=...): {missing}"
    )


def test_reference_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is stale: run `wcs config-reference --out docs/configuration.md`"
    )


def test_readme_names_only_real_settings() -> None:
    import re

    readme = (DOC.parents[1] / "README.md").read_text(encoding="utf-8")
    known = {var for var, _, _ in variables()}
    named = set(re.findall(r"`(WCS_[A-Z0-9_]+)`", readme))
    assert named <= known, f"README mentions unknown settings: {named - known}"
