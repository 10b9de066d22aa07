"""The operator manuals: generated pages match the code, and every page is in place."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wcs import docs
from wcs.domain.alert_rules import ALERT_CATALOGUE
from wcs.domain.states import STAGE_OF, OrderState

ROOT = Path(__file__).resolve().parents[2]
MANUAL = ROOT / docs.OUT_DIR


def test_generated_pages_are_up_to_date() -> None:
    assert docs.stale(ROOT) == [], "run `python -m wcs.docs` and commit docs/operations"


def test_stale_pages_are_detected(tmp_path: Path) -> None:
    assert sorted(docs.stale(tmp_path)) == [
        str(docs.OUT_DIR / "alerts.md"),
        str(docs.OUT_DIR / "states.md"),
    ]
    docs.write(tmp_path)
    assert docs.stale(tmp_path) == []
    page = tmp_path / docs.OUT_DIR / "alerts.md"
    page.write_text(page.read_text().replace("order_stuck", "order_stock"))
    assert docs.stale(tmp_path) == [str(docs.OUT_DIR / "alerts.md")]
    assert docs.main(["--check"]) == 0  # the committed tree, from the repository root


def test_every_alert_and_state_is_documented() -> None:
    alerts = docs.alerts_page()
    for code, spec in ALERT_CATALOGUE.items():
        assert f"\n## {code}\n" in alerts
        assert spec.runbook in alerts
    states = docs.states_page()
    for state in OrderState:
        assert f"| `{state}` |" in states


@pytest.mark.parametrize("stage", sorted(set(STAGE_OF.values())))
def test_each_stage_has_a_manual_page_with_its_sections(stage: str) -> None:
    page = (MANUAL / docs.STAGE_PAGES[stage]).read_text(encoding="utf-8")
    for heading in ("## Roles", "## Procedure", "## What the system does", "## Alerts"):
        assert heading in page, f"{stage}: missing {heading}"
    # Every alert code a page names exists, and links go to the generated runbooks.
    for code in re.findall(r"alerts\.md#([a-z_]+)", page):
        assert code in ALERT_CATALOGUE, f"{stage} links to unknown alert {code}"


def test_every_alert_runbook_is_reachable_from_a_stage_or_contingency_page() -> None:
    linked: set[str] = set()
    for path in MANUAL.glob("*.md"):
        linked |= set(re.findall(r"alerts\.md#([a-z_]+)", path.read_text(encoding="utf-8")))
    assert set(ALERT_CATALOGUE) <= linked, sorted(set(ALERT_CATALOGUE) - linked)


def test_contingency_plans_cover_the_named_cases() -> None:
    page = (MANUAL / "contingency.md").read_text(encoding="utf-8").lower()
    for case in (
        "carrier delay",
        "damaged goods",
        "device failure",
        "broker outage",
        "database outage",
        "peak overload",
    ):
        assert f"## {case}" in page
