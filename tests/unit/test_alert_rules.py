"""Alert rules and planning, table-tested on plain snapshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wcs.contract.topics import SEVERITIES
from wcs.domain import alert_rules as rules
from wcs.domain.alert_rules import (
    ALERT_CATALOGUE,
    DeviceSnapshot,
    Finding,
    FloorSnapshot,
    OpenAlert,
    OrderSnapshot,
    RuleConfig,
)
from wcs.domain.kpis import Ratio
from wcs.domain.states import TERMINAL, OrderState

NOW = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
CFG = RuleConfig()


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def order(
    oid: str,
    state: str,
    since_min: float,
    sla_in_min: float | None = None,
    due_in_min: float | None = None,
) -> OrderSnapshot:
    return OrderSnapshot(
        oid,
        state,
        ago(since_min),
        None if sla_in_min is None else NOW + timedelta(minutes=sla_in_min),
        None if due_in_min is None else NOW + timedelta(minutes=due_in_min),
    )


def keys(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.code, f.subject) for f in findings]


def test_catalogue_is_complete_and_consistent() -> None:
    required = {
        "order_invalid",
        "delivery_delayed",
        "order_stuck",
        "sla_at_risk",
        "device_offline",
        "device_fault",
        "weight_mismatch_streak",
        "pick_accuracy_low",
        "carrier_failures",
    }
    assert required <= set(ALERT_CATALOGUE)
    for code, spec in ALERT_CATALOGUE.items():
        assert spec.code == code
        assert spec.severity in SEVERITIES  # it must be publishable on alert/{severity}
        assert spec.title and spec.meaning and spec.runbook and spec.subject
        assert len(code) <= 64 and code.isidentifier()
    # raised once at intake, ended by people: the engine must never resolve it
    assert not ALERT_CATALOGUE["order_invalid"].auto_resolve


def test_unknown_code_is_refused() -> None:
    with pytest.raises(ValueError, match="catalogue"):
        Finding("made_up", "x", "y")


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        ([order("o1", "picking", 59)], []),
        ([order("o1", "picking", 60)], [("order_stuck", "o1")]),
        ([order("o1", "received", 11), order("o2", "packing", 29)], [("order_stuck", "o1")]),
        # no limit for delivered (sign-off timeout closes it) or terminal states
        ([order("o1", "delivered", 10_000), order("o2", "closed", 10_000)], []),
        # sorted by state name, stable for logs and tests
        (
            [order("o1", "picking", 90), order("o2", "backordered", 3000)],
            [("order_stuck", "o2"), ("order_stuck", "o1")],
        ),
    ],
)
def test_stuck_orders(snapshot: list[OrderSnapshot], expected: list[tuple[str, str]]) -> None:
    assert keys(rules.stuck_orders(snapshot, NOW, CFG)) == expected


def test_stuck_message_tells_how_long_and_what_to_do() -> None:
    (finding,) = rules.stuck_orders([order("o1", "picking", 72)], NOW, CFG)
    assert "1 h 12 min" in finding.message and "limit 1 h" in finding.message
    assert "exception lane" in finding.message
    assert finding.severity == "warning"


def test_many_stuck_orders_collapse_into_one_alert_per_state() -> None:
    many = [order(f"o{i:02}", "picking", 120 + i) for i in range(11)]
    (finding,) = rules.stuck_orders(many, NOW, CFG)
    assert (finding.code, finding.subject) == ("order_stuck", "state:picking")
    assert finding.message.startswith("11 orders stuck in 'picking'")
    assert "o10, o09, o08, o07, o06" in finding.message  # oldest first
    exactly = rules.stuck_orders(many[:10], NOW, CFG)
    assert len(exactly) == 10


def test_stuck_limits_overrides() -> None:
    limits = rules.stuck_limits({"picking": 15, "packed": 0})
    assert limits["picking"] == timedelta(minutes=15)
    assert "packed" not in limits
    assert limits["reserved"] == rules.DEFAULT_STUCK_AFTER["reserved"]
    with pytest.raises(ValueError, match="unknown order states: pikcing"):
        rules.stuck_limits({"pikcing": 5})
    with pytest.raises(ValueError, match="terminal"):
        rules.stuck_limits({"closed": 5})
    with pytest.raises(ValueError, match=">= 0"):
        rules.stuck_limits({"picking": -1})
    assert not set(rules.DEFAULT_STUCK_AFTER) & TERMINAL


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        ([order("o1", "picking", 1, sla_in_min=61)], []),
        ([order("o1", "picking", 1, sla_in_min=60)], [("sla_at_risk", "o1")]),
        ([order("o1", "packed", 1, sla_in_min=-5)], [("sla_missed", "o1")]),
        ([order("o1", "exception", 1, sla_in_min=0)], [("sla_missed", "o1")]),
        # shipped or cancelled: the ship-by promise is no longer the warehouse's to keep
        ([order("o1", "shipped", 1, sla_in_min=-5), order("o2", "cancelled", 1, -5)], []),
        ([order("o1", "picking", 1)], []),  # no deadline
    ],
)
def test_sla_risks(snapshot: list[OrderSnapshot], expected: list[tuple[str, str]]) -> None:
    assert keys(rules.sla_risks(snapshot, NOW, CFG)) == expected


def test_sla_missed_is_critical_and_at_risk_says_how_long_is_left() -> None:
    late, risky = rules.sla_risks(
        [order("o1", "picking", 1, sla_in_min=-90), order("o2", "reserved", 1, sla_in_min=25)],
        NOW,
        CFG,
    )
    assert late.severity == "critical" and "1 h 30 min ago" in late.message
    assert risky.severity == "warning" and "within 25 min" in risky.message


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        ([order("o1", "delayed", 30)], [("delivery_delayed", "o1")]),
        ([order("o1", "in_transit", 30, due_in_min=-1)], [("delivery_delayed", "o1")]),
        ([order("o1", "in_transit", 30, due_in_min=10)], []),
        ([order("o1", "delivery_failed", 30, due_in_min=-1)], [("delivery_delayed", "o1")]),
        ([order("o1", "delivered", 30, due_in_min=-100)], []),
    ],
)
def test_delayed_deliveries(snapshot: list[OrderSnapshot], expected: list[tuple[str, str]]) -> None:
    assert keys(rules.delayed_deliveries(snapshot, NOW, CFG)) == expected


def device(dev_id: str, state: str, since_s: float, detail: str | None = None) -> DeviceSnapshot:
    return DeviceSnapshot(dev_id, "scale", "pack", state, detail, NOW - timedelta(seconds=since_s))


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        ([device("sc1", "online", 1000)], []),
        ([device("sc1", "offline", 29)], []),  # a driver restart is not an incident
        ([device("sc1", "offline", 30)], [("device_offline", "sc1")]),
        ([device("pr1", "fault", 45, "paper out")], [("device_fault", "pr1")]),
    ],
)
def test_devices_down(snapshot: list[DeviceSnapshot], expected: list[tuple[str, str]]) -> None:
    assert keys(rules.devices_down(snapshot, NOW, CFG)) == expected


def test_device_messages() -> None:
    offline, fault = rules.devices_down(
        [device("sc1", "offline", 600), device("pr1", "fault", 60, "paper out")], NOW, CFG
    )
    assert offline.severity == "critical" and "offline for 10 min" in offline.message
    assert fault.severity == "warning" and "paper out" in fault.message


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ({"pack-1": [False, False]}, []),
        ({"pack-1": [False, False, False]}, ["pack-1"]),
        ({"pack-1": [False, False, True, False, False]}, []),  # an ok breaks the streak
        ({"pack-1": [True, False, False, False]}, []),  # the newest is ok: cleared
        ({"pack-2": [False] * 3, "pack-1": [False] * 4}, ["pack-1", "pack-2"]),
    ],
)
def test_weight_streaks(weights: dict[str, list[bool]], expected: list[str]) -> None:
    found = rules.weight_streaks(weights, CFG)
    assert [f.subject for f in found] == expected
    assert all(f.code == "weight_mismatch_streak" for f in found)


@pytest.mark.parametrize(
    ("picks", "fires"),
    [
        (Ratio(0, 0), False),
        (Ratio(40, 49), False),  # too few picks to judge
        (Ratio(49, 50), False),  # exactly at the threshold
        (Ratio(48, 50), True),
        (Ratio(970, 1000), True),
    ],
)
def test_pick_accuracy_drop(picks: Ratio, fires: bool) -> None:
    found = rules.pick_accuracy_drop(picks, CFG)
    assert bool(found) is fires
    if fires:
        assert found[0].subject == "pick" and f"{picks.good} of {picks.total}" in found[0].message


@pytest.mark.parametrize(
    ("carriers", "expected"),
    [
        ({"dhl": [False, False]}, []),
        ({"dhl": [False, False, False, True]}, ["dhl"]),
        ({"dhl": [True, False, False, False]}, []),
    ],
)
def test_carrier_streaks(carriers: dict[str, list[bool]], expected: list[str]) -> None:
    assert [f.subject for f in rules.carrier_streaks(carriers, CFG)] == expected


def test_evaluate_combines_every_rule() -> None:
    snapshot = FloorSnapshot(
        orders=[order("o1", "picking", 90, sla_in_min=30), order("o2", "delayed", 5)],
        devices=[device("sc1", "offline", 120)],
        weights={"pack-1": [False] * 3},
        picks=Ratio(80, 100),
        carriers={"ups": [False] * 5},
    )
    assert keys(rules.evaluate(snapshot, NOW, CFG)) == [
        ("order_stuck", "o1"),
        ("sla_at_risk", "o1"),
        ("delivery_delayed", "o2"),
        ("device_offline", "sc1"),
        ("weight_mismatch_streak", "pack-1"),
        ("pick_accuracy_low", "pick"),
        ("carrier_failures", "ups"),
    ]
    assert rules.evaluate(FloorSnapshot(), NOW, CFG) == []


def f(code: str, subject: str) -> Finding:
    return Finding(code, subject, "m")


@pytest.mark.parametrize(
    ("findings", "unresolved", "to_raise", "to_resolve"),
    [
        # new condition: raise it
        ([f("order_stuck", "o1")], [], [("order_stuck", "o1")], []),
        # still holds and its alert is unresolved (open or acknowledged): nothing new
        ([f("order_stuck", "o1")], [OpenAlert(7, "order_stuck", "o1")], [], []),
        # condition gone: resolve the rule alert
        ([], [OpenAlert(7, "order_stuck", "o1")], [], [7]),
        # never resolve alerts ended by people, whatever the rules say
        ([], [OpenAlert(8, "order_invalid", "o1")], [], []),
        # the same subject under another code is another alert
        (
            [f("sla_missed", "o1")],
            [OpenAlert(9, "sla_at_risk", "o1")],
            [("sla_missed", "o1")],
            [9],
        ),
        # a finding repeated within one round raises once
        ([f("device_offline", "d"), f("device_offline", "d")], [], [("device_offline", "d")], []),
    ],
)
def test_plan(
    findings: list[Finding],
    unresolved: list[OpenAlert],
    to_raise: list[tuple[str, str]],
    to_resolve: list[int],
) -> None:
    decided = rules.plan(findings, unresolved)
    assert keys(list(decided.to_raise)) == to_raise
    assert list(decided.to_resolve) == to_resolve


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(seconds=45), "45 s"),
        (timedelta(minutes=5, seconds=59), "5 min"),
        (timedelta(hours=1), "1 h"),
        (timedelta(hours=2, minutes=3), "2 h 3 min"),
        (timedelta(days=3), "3 d"),
        (timedelta(days=3, hours=2, minutes=5), "3 d 2 h"),
        (timedelta(seconds=-5), "0 s"),
    ],
)
def test_duration_text(span: timedelta, text: str) -> None:
    assert rules.duration_text(span) == text


def test_every_default_limit_is_a_real_state() -> None:
    assert set(rules.DEFAULT_STUCK_AFTER) <= {s.value for s in OrderState}


def _raised_codes() -> list[tuple[str, str, str]]:
    """(code, severity, where) of every alert raised in the product's source.

    Three call shapes exist: ``raise_alert(conn, topics, code=..., severity=..., ...)``,
    the controller's ``ctx.alert(code, severity, message, subject)`` and the floor
    domain's effect ``Alert(code, severity, message, subject)``.
    """
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    found: list[tuple[str, str, str]] = []
    for package in ("wcs", "controller", "api", "drivers"):
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                where = f"{path.relative_to(root)}:{node.lineno}"
                if name == "raise_alert":
                    kw = {k.arg: k.value for k in node.keywords}
                    code, severity = kw.get("code"), kw.get("severity")
                elif name in ("alert", "Alert") and len(node.args) >= 2:
                    code, severity = node.args[0], node.args[1]
                else:
                    continue
                if isinstance(code, ast.Constant) and isinstance(severity, ast.Constant):
                    found.append((str(code.value), str(severity.value), where))
    return found


def test_every_alert_raised_in_the_product_is_catalogued() -> None:
    raised = _raised_codes()
    assert any(code == "order_invalid" for code, _, _ in raised)  # the scan sees intake
    # ... and the floor domain's alert effects (a count booked twice at one location)
    assert any(code == "location_adjusted_twice" for code, _, _ in raised)
    for code, severity, where in raised:
        assert code in ALERT_CATALOGUE, f"{where} raises {code!r}: add it to ALERT_CATALOGUE"
        expected = ALERT_CATALOGUE[code].severity
        assert severity == expected, f"{where} raises {code!r} as {severity}, catalogue: {expected}"


def test_settings_become_rule_config_and_bad_ones_fail_at_start() -> None:
    from wcs.errors import ConfigError
    from wcs.services.alerting import rule_config
    from wcs.settings import MonitoringSettings, PackSettings, Settings

    settings = Settings(
        pack=PackSettings(mismatch_streak_alert=5),
        monitoring=MonitoringSettings(
            stuck_after_min={"picking": 20}, sla_margin_min=30, device_grace_s=10
        ),
    )
    config = rule_config(settings)
    assert config.stuck_after["picking"] == timedelta(minutes=20)
    assert config.sla_margin == timedelta(minutes=30)
    assert config.device_grace == timedelta(seconds=10)
    assert config.weight_mismatch_streak == 5
    bad = Settings(monitoring=MonitoringSettings(stuck_after_min={"pikcing": 5}))
    with pytest.raises(ConfigError, match=r"STUCK_AFTER_MIN: .*pikcing"):
        rule_config(bad)
