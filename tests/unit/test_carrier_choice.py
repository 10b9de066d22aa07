"""Carrier and service choice from the rules: zone, SLA, limits, billable weight, cost."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wcs.carriers.rules import load_rules
from wcs.domain.carriers import (
    SERVICE_SPEED,
    CarrierRules,
    Destination,
    Parcel,
    Service,
    billable_weight_g,
    choose_carrier,
    evaluate,
    rules_from_yaml,
    zones_of,
)
from wcs.errors import ConfigError, NoCarrierAvailable, ValidationFailed

RULES_YAML = """
version: 1
currency: EUR
zones:
  - {id: local, countries: [DE], postal_prefixes: ["10", "12"]}
  - {id: domestic, countries: [DE]}
  - {id: eu, countries: [FR, NL]}
carriers:
  - id: own_fleet
    name: Own vans
    own_fleet: true
    max_weight_g: 30000
    max_length_mm: 1500
    services:
      - {service: same_day, zones: [local], base: "6.00", per_kg: "0"}
      - {service: standard, zones: [local], base: "3.00", per_kg: "0"}
  - id: cheapo
    name: Cheapo Parcels
    max_weight_g: 20000
    max_length_mm: 1000
    max_girth_mm: 2000
    volumetric_divisor: 5000
    services:
      - {service: standard, zones: [local], base: "2.00", per_kg: "0.50"}
      - {service: standard, zones: [domestic], base: "4.00", per_kg: "0.50"}
      - {service: express, zones: [domestic, eu], base: "9.00", per_kg: "1.00",
         max_weight_g: 5000}
  - id: heavy
    name: Heavy Freight
    max_weight_g: 70000
    max_length_mm: 2400
    volumetric_divisor: 6000
    fuel_surcharge_pct: "10"
    services:
      - {service: standard, zones: [domestic, eu], base: "15.00", per_kg: "0.20"}
"""

BERLIN = Destination("DE", "10115")
MUNICH = Destination("DE", "80331")
PARIS = Destination("FR", "75001")
SMALL = Parcel(1200, (300, 200, 100))  # 6 000 cm³ -> 1.2 kg volumetric at /5000


@pytest.fixture(scope="module")
def rules() -> CarrierRules:
    return rules_from_yaml(RULES_YAML)


def test_destination_is_in_every_zone_it_matches_most_specific_first(rules: CarrierRules) -> None:
    assert zones_of(rules, BERLIN) == ("local", "domestic")
    assert zones_of(rules, MUNICH) == ("domestic",)
    assert zones_of(rules, Destination("fr", "75001")) == ("eu",)
    assert zones_of(rules, Destination("US", "10001")) == ()


def test_cheapest_eligible_option_wins_with_reasons(rules: CarrierRules) -> None:
    choice = choose_carrier(rules, MUNICH, SMALL, "standard")
    # cheapo standard domestic: 4.00 + 2 kg x 0.50 = 5.00; heavy: (15 + 0.4) x 1.1 = 16.94;
    # cheapo express: 9 + 2 = 11.00; own fleet does not serve Munich.
    assert (choice.chosen.carrier, choice.chosen.service) == ("cheapo", "standard")
    assert choice.chosen.cost == Decimal("5.00")
    assert choice.chosen.zone == "domestic"
    assert [o.cost for o in choice.eligible] == sorted(o.cost for o in choice.eligible)
    assert {(o.carrier, o.cost) for o in choice.eligible} == {
        ("cheapo", Decimal("5.00")),
        ("cheapo", Decimal("11.00")),
        ("heavy", Decimal("16.94")),
    }
    assert "cheapo standard" in choice.reasons[0]
    assert "cheapest of 3" in choice.reasons[1]
    own = [r for r in choice.rejected if r.carrier == "own_fleet"]
    assert own
    assert all("does not serve" in r.reasons[0] for r in own)


def test_rate_of_the_most_specific_zone_applies(rules: CarrierRules) -> None:
    # Berlin is local and domestic: cheapo's local rate (2.00 base) beats its domestic one.
    options, _ = evaluate(rules, BERLIN, SMALL, "standard")
    cheapo = next(o for o in options if o.carrier == "cheapo" and o.service == "standard")
    assert cheapo.zone == "local"
    assert cheapo.cost == Decimal("3.00")


def test_own_fleet_serves_local_postal_codes_and_wins_ties(rules: CarrierRules) -> None:
    # own_fleet standard 3.00 and cheapo local standard 2.00 + 2 x 0.50 = 3.00: equal cost,
    # the own fleet is preferred.
    choice = choose_carrier(rules, BERLIN, SMALL, "standard")
    assert choice.chosen.carrier == "own_fleet"
    assert choice.chosen.own_fleet
    assert choice.eligible[1].carrier == "cheapo"
    assert choice.eligible[1].cost == choice.chosen.cost


def test_same_day_only_where_someone_offers_it(rules: CarrierRules) -> None:
    assert choose_carrier(rules, BERLIN, SMALL, "same_day").chosen.carrier == "own_fleet"
    with pytest.raises(NoCarrierAvailable) as caught:
        choose_carrier(rules, MUNICH, SMALL, "same_day")
    message = caught.value.message
    assert "same_day to DE 80331" in message
    assert "own_fleet same_day: does not serve DE 80331" in message
    assert "cheapo: offers only standard, express" in message
    assert "heavy: offers only standard" in message


def test_faster_service_may_carry_a_slower_sla_never_the_reverse(rules: CarrierRules) -> None:
    choice = choose_carrier(rules, PARIS, SMALL, "standard")
    services = {(o.carrier, o.service) for o in choice.eligible}
    assert ("cheapo", "express") in services  # express meets a standard SLA
    assert choice.chosen.carrier == "cheapo"  # 11.00 beats heavy's 16.94
    assert choice.chosen.service == "express"
    assert any("faster than the requested standard" in r for r in choice.reasons)
    express = choose_carrier(rules, PARIS, SMALL, "express")
    assert all(SERVICE_SPEED[o.service] >= SERVICE_SPEED["express"] for o in express.eligible)


@pytest.mark.parametrize(
    ("parcel", "reason"),
    [
        (Parcel(21_000, (300, 200, 100)), "weight 21.0 kg over 20.0 kg"),
        (Parcel(1000, (1100, 100, 100)), "longest side 1100 mm over 1000 mm"),
        (Parcel(1000, (900, 300, 300)), "girth 2100 mm over 2000 mm"),
    ],
)
def test_carrier_limits_rule_options_out_with_the_reason(
    rules: CarrierRules, parcel: Parcel, reason: str
) -> None:
    choice = choose_carrier(rules, MUNICH, parcel, "standard")
    assert choice.chosen.carrier == "heavy"
    cheapo = next(r for r in choice.rejected if (r.carrier, r.service) == ("cheapo", "standard"))
    assert reason in cheapo.reasons


def test_service_weight_limit_tightens_the_carriers(rules: CarrierRules) -> None:
    parcel = Parcel(6000, (300, 200, 100))
    _, rejected = evaluate(rules, PARIS, parcel, "express")
    [express] = [r for r in rejected if r.carrier == "cheapo"]
    assert express.reasons == ("weight 6.0 kg over 5.0 kg",)


def test_bulky_light_parcel_is_billed_by_volume(rules: CarrierRules) -> None:
    bulky = Parcel(800, (600, 400, 400))  # 96 000 cm³: 19.2 kg at /5000, 16 kg at /6000
    by_id = {c.id: c for c in rules.carriers}
    assert billable_weight_g(by_id["cheapo"], bulky) == 20_000
    assert billable_weight_g(by_id["heavy"], bulky) == 16_000
    assert billable_weight_g(by_id["own_fleet"], bulky) == 1000  # our vans bill actual weight
    assert billable_weight_g(by_id["heavy"], Parcel(1000, (10, 10, 10))) == 1000
    assert billable_weight_g(by_id["heavy"], Parcel(2001, (10, 10, 10))) == 3000


def test_fuel_surcharge_is_applied_and_rounded_to_cents(rules: CarrierRules) -> None:
    options, _ = evaluate(rules, MUNICH, Parcel(3500, (100, 100, 100)), "standard")
    heavy = next(o for o in options if o.carrier == "heavy")
    assert heavy.billable_weight_g == 4000
    assert heavy.cost == Decimal("17.38")  # (15.00 + 4 x 0.20) x 1.10 = 17.38


def test_excluded_carrier_falls_back_to_the_next_cheapest(rules: CarrierRules) -> None:
    choice = choose_carrier(rules, MUNICH, SMALL, "standard", exclude={"cheapo"})
    assert choice.chosen.carrier == "heavy"
    assert any(
        r.carrier == "cheapo" and r.reasons == ("excluded by the dispatcher",)
        for r in choice.rejected
    )


def test_disabled_carrier_is_never_chosen() -> None:
    disabled = RULES_YAML.replace("name: Cheapo Parcels", "name: C\n    enabled: false")
    rules = rules_from_yaml(disabled)
    choice = choose_carrier(rules, MUNICH, SMALL, "standard")
    assert choice.chosen.carrier == "heavy"
    assert any("disabled" in r.describe() for r in choice.rejected)


def test_nowhere_to_ship_names_the_destination_and_every_rejection(rules: CarrierRules) -> None:
    with pytest.raises(NoCarrierAvailable, match=r"US 10001 \(no configured zone\)") as caught:
        choose_carrier(rules, Destination("US", "10001"), SMALL, "standard")
    assert len(caught.value.context["rejected"]) == 5  # type: ignore[arg-type]


def test_bad_parcel_and_service_are_refused(rules: CarrierRules) -> None:
    with pytest.raises(ValidationFailed):
        Parcel(0, (1, 1, 1))
    with pytest.raises(ValidationFailed):
        Parcel(10, (1, 0, 1))
    with pytest.raises(ValidationFailed, match="unknown service"):
        choose_carrier(rules, MUNICH, SMALL, "overnight")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("zones: [local]", "zones: [moon]"), "unknown zones ['moon']"),
        (("id: heavy", "id: cheapo"), "carrier ids must be unique"),
        (("countries: [FR, NL]", "countries: [FR, NO]"), "zones.2.countries.1"),
        (("countries: [FR, NL]", "countries: [fr]"), "ISO 3166"),
        (('base: "3.00"', 'base: "-1"'), "base"),
        (("version: 1", "version: 2"), "version"),
    ],
)
def test_invalid_rules_are_a_config_error_naming_the_field(
    change: tuple[str, str], expected: str
) -> None:
    old, new = change
    assert old in RULES_YAML
    with pytest.raises(ConfigError, match="carrier rules are invalid") as caught:
        rules_from_yaml(RULES_YAML.replace(old, new, 1))
    assert expected in caught.value.message


def test_not_yaml_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        rules_from_yaml("zones: [unclosed")


def test_postal_codes_are_compared_without_spaces_and_case() -> None:
    rules = rules_from_yaml(
        RULES_YAML.replace('postal_prefixes: ["10", "12"]', 'postal_prefixes: ["sw1a "]')
    )
    assert zones_of(rules, Destination("DE", "SW1A 1AA")) == ("local", "domestic")
    assert zones_of(rules, Destination("DE", "SW1B 1AA")) == ("domestic",)


def test_rules_load_from_a_file_and_report_the_path(tmp_path: Path) -> None:
    good = tmp_path / "rules.yaml"
    good.write_text(RULES_YAML)
    assert load_rules(good).carriers[0].id == "own_fleet"
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULES_YAML.replace("zones: [local]", "zones: [moon]", 1))
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        load_rules(bad)
    with pytest.raises(ConfigError, match="WCS_CARRIER_RULES_PATH"):
        load_rules(tmp_path / "missing.yaml")


def test_shipped_rules_load_and_send_local_parcels_with_the_own_fleet() -> None:
    rules = load_rules()
    assert any(c.own_fleet for c in rules.carriers)
    local = choose_carrier(rules, Destination("DE", "10115"), SMALL, "same_day")
    assert local.chosen.own_fleet
    # Norway must stay a country code, not YAML's boolean false.
    assert "europe_other" in zones_of(rules, Destination("NO", "0150"))
    far = choose_carrier(rules, Destination("JP", "100-0001"), SMALL, "express")
    assert far.chosen.zone == "world"


SERVICES: list[Service] = ["standard", "express", "same_day"]


@settings(max_examples=200, deadline=None)
@given(
    country=st.sampled_from(["DE", "FR", "NL", "US"]),
    postal=st.sampled_from(["10115", "12045", "80331", "75001"]),
    weight=st.integers(min_value=1, max_value=80_000),
    dims=st.tuples(*[st.integers(min_value=10, max_value=2500)] * 3),
    service=st.sampled_from(SERVICES),
)
def test_choice_is_the_cheapest_option_meeting_sla_and_limits(
    country: str, postal: str, weight: int, dims: tuple[int, int, int], service: Service
) -> None:
    rules = rules_from_yaml(RULES_YAML)
    parcel = Parcel(weight, (float(dims[0]), float(dims[1]), float(dims[2])))
    destination = Destination(country, postal)
    try:
        choice = choose_carrier(rules, destination, parcel, service)
    except NoCarrierAvailable:
        options, rejected = evaluate(rules, destination, parcel, service)
        assert options == []
        assert rejected
        return
    by_id = {c.id: c for c in rules.carriers}
    for option in choice.eligible:
        carrier = by_id[option.carrier]
        assert SERVICE_SPEED[option.service] >= SERVICE_SPEED[service]
        assert parcel.weight_g <= carrier.max_weight_g
        assert max(dims) <= carrier.max_length_mm
        assert carrier.max_girth_mm is None or parcel.girth_mm <= carrier.max_girth_mm
        assert option.zone in zones_of(rules, destination)
        assert option.billable_weight_g >= parcel.weight_g
    assert choice.chosen.cost == min(o.cost for o in choice.eligible)
