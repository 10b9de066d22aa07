"""Carrier and service choice: destination zone, parcel, SLA and cost -> one option.

Rules come from a YAML document (``wcs/carriers/rules.yaml`` is the shipped default;
``WCS_CARRIER_RULES_PATH`` points at another). This module only parses and decides;
reading the file is the caller's job.

How an option is judged:

- The destination (country + postal code) belongs to every zone it matches; zones
  are listed most specific first (``local`` before ``domestic`` before ``eu``).
- A service meets the requested SLA when it is at least as fast
  (``same_day`` > ``express`` > ``standard``): an express van that happens to be
  cheaper may carry a standard parcel.
- Weight and size limits are the carrier's, tightened per service where given.
  Size is checked the way parcel carriers publish it: the longest side, and the
  girth (longest side + 2 x the other two).
- Carriers bill the larger of actual and volumetric weight (``L x W x H / divisor``,
  divisor in cm³/kg as carriers quote it), rounded up to whole kilograms.
- Cost = (base + per_kg x billable kg) x (1 + fuel surcharge). The cheapest eligible
  option wins; ties go to the faster service, then the own fleet, then file order.

Every rejected option keeps its reasons, so a dispatcher reading "no carrier fits"
sees exactly which limit each candidate broke.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from wcs.errors import ConfigError, NoCarrierAvailable, ValidationFailed

Service = Literal["standard", "express", "same_day"]
SERVICE_SPEED: Mapping[str, int] = {"standard": 0, "express": 1, "same_day": 2}
OWN_FLEET = "own_fleet"

_CENT = Decimal("0.01")
_COUNTRY = re.compile(r"^(?:[A-Z]{2}|\*)$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ZoneRule(_Frozen):
    id: str = Field(pattern=r"^[a-z0-9_]{1,32}$")
    countries: tuple[str, ...] = Field(min_length=1)
    # Empty: the whole of each country. Matched against the postal code with spaces
    # and dashes removed, upper case ("SW1A 1AA" -> "SW1A1AA").
    postal_prefixes: tuple[str, ...] = ()

    @field_validator("countries")
    @classmethod
    def _iso_codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [c for c in value if not _COUNTRY.match(c)]
        if bad:
            raise ValueError(f"country codes must be ISO 3166 alpha-2 upper case or '*': {bad}")
        return value

    @field_validator("postal_prefixes")
    @classmethod
    def _normalised(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(normalise_postal_code(p) for p in value)

    def matches(self, country: str, postal_code: str) -> bool:
        if "*" not in self.countries and country not in self.countries:
            return False
        return not self.postal_prefixes or postal_code.startswith(self.postal_prefixes)


class ServiceRate(_Frozen):
    service: Service
    zones: tuple[str, ...] = Field(min_length=1)
    base: Decimal = Field(ge=0)
    per_kg: Decimal = Field(ge=0)
    max_weight_g: int | None = Field(default=None, gt=0)


class CarrierRule(_Frozen):
    id: str = Field(pattern=r"^[a-z0-9_]{1,32}$")
    name: str
    own_fleet: bool = False
    enabled: bool = True
    max_weight_g: int = Field(gt=0)
    max_length_mm: int = Field(gt=0)
    max_girth_mm: int | None = Field(default=None, gt=0)
    # cm³ per kg; None for carriers (like our own vans) that bill actual weight only.
    volumetric_divisor: int | None = Field(default=None, gt=0)
    fuel_surcharge_pct: Decimal = Field(default=Decimal(0), ge=0, le=100)
    services: tuple[ServiceRate, ...] = Field(min_length=1)


class CarrierRules(_Frozen):
    version: Literal[1] = 1
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    zones: tuple[ZoneRule, ...] = Field(min_length=1)
    carriers: tuple[CarrierRule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _references_resolve(self) -> CarrierRules:
        zone_ids = [z.id for z in self.zones]
        if len(set(zone_ids)) != len(zone_ids):
            raise ValueError(f"zone ids must be unique: {zone_ids}")
        carrier_ids = [c.id for c in self.carriers]
        if len(set(carrier_ids)) != len(carrier_ids):
            raise ValueError(f"carrier ids must be unique: {carrier_ids}")
        for carrier in self.carriers:
            for rate in carrier.services:
                unknown = sorted(set(rate.zones) - set(zone_ids))
                if unknown:
                    raise ValueError(
                        f"carrier {carrier.id!r} service {rate.service!r} names unknown "
                        f"zones {unknown}; known: {zone_ids}"
                    )
        return self


def parse_rules(data: object) -> CarrierRules:
    """Validate a rules mapping (as loaded from YAML); ConfigError names the bad field."""
    try:
        return CarrierRules.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"carrier rules are invalid: {problems}") from None


def rules_from_yaml(text: str) -> CarrierRules:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"carrier rules are not valid YAML: {exc}") from None
    return parse_rules(data)


def normalise_postal_code(code: str) -> str:
    return re.sub(r"[\s-]", "", code).upper()


@dataclass(frozen=True, slots=True)
class Destination:
    country: str
    postal_code: str

    @property
    def label(self) -> str:
        return f"{self.country} {self.postal_code}"


@dataclass(frozen=True, slots=True)
class Parcel:
    weight_g: float
    dims_mm: tuple[float, float, float]

    def __post_init__(self) -> None:
        if not self.weight_g > 0:
            raise ValidationFailed(f"parcel weight must be positive, got {self.weight_g} g")
        if len(self.dims_mm) != 3 or not all(d > 0 for d in self.dims_mm):
            raise ValidationFailed(f"parcel needs three positive dimensions, got {self.dims_mm}")

    @property
    def sorted_dims(self) -> tuple[float, float, float]:
        a, b, c = sorted(self.dims_mm, reverse=True)
        return a, b, c

    @property
    def girth_mm(self) -> float:
        a, b, c = self.sorted_dims
        return a + 2 * (b + c)

    @property
    def label(self) -> str:
        a, b, c = self.sorted_dims
        return f"{self.weight_g / 1000:.1f} kg, {a:.0f}x{b:.0f}x{c:.0f} mm"


@dataclass(frozen=True, slots=True)
class CarrierOption:
    carrier: str
    carrier_name: str
    service: Service
    zone: str
    cost: Decimal
    currency: str
    billable_weight_g: int
    own_fleet: bool

    def describe(self) -> str:
        return (
            f"{self.carrier} {self.service} ({self.zone}): {self.cost} {self.currency} "
            f"for {self.billable_weight_g / 1000:.0f} kg billable"
        )


@dataclass(frozen=True, slots=True)
class Rejection:
    carrier: str
    service: str | None  # None when the whole carrier was ruled out
    reasons: tuple[str, ...]

    def describe(self) -> str:
        who = self.carrier if self.service is None else f"{self.carrier} {self.service}"
        return f"{who}: {', '.join(self.reasons)}"


@dataclass(frozen=True, slots=True)
class CarrierChoice:
    chosen: CarrierOption
    # Every eligible option, cheapest first (``chosen`` is the first): the fallbacks
    # when booking with the chosen carrier fails.
    eligible: tuple[CarrierOption, ...]
    rejected: tuple[Rejection, ...]
    reasons: tuple[str, ...]


def zones_of(rules: CarrierRules, destination: Destination) -> tuple[str, ...]:
    country = destination.country.strip().upper()
    postal = normalise_postal_code(destination.postal_code)
    return tuple(z.id for z in rules.zones if z.matches(country, postal))


def billable_weight_g(carrier: CarrierRule, parcel: Parcel) -> int:
    """Whole kilograms, rounded up, of max(actual, volumetric) weight, in grams."""
    weight = parcel.weight_g
    if carrier.volumetric_divisor is not None:
        a, b, c = parcel.dims_mm
        volume_cm3 = a * b * c / 1000
        weight = max(weight, volume_cm3 / carrier.volumetric_divisor * 1000)
    return max(1, math.ceil(weight / 1000 - 1e-9)) * 1000


def _price(carrier: CarrierRule, rate: ServiceRate, billable_g: int) -> Decimal:
    net = rate.base + rate.per_kg * Decimal(billable_g // 1000)
    gross = net * (1 + carrier.fuel_surcharge_pct / 100)
    return gross.quantize(_CENT, rounding=ROUND_HALF_UP)


def _limit_reasons(carrier: CarrierRule, rate: ServiceRate, parcel: Parcel) -> list[str]:
    reasons: list[str] = []
    max_weight = min(carrier.max_weight_g, rate.max_weight_g or carrier.max_weight_g)
    if parcel.weight_g > max_weight:
        reasons.append(f"weight {parcel.weight_g / 1000:.1f} kg over {max_weight / 1000:.1f} kg")
    longest = parcel.sorted_dims[0]
    if longest > carrier.max_length_mm:
        reasons.append(f"longest side {longest:.0f} mm over {carrier.max_length_mm} mm")
    if carrier.max_girth_mm is not None and parcel.girth_mm > carrier.max_girth_mm:
        reasons.append(f"girth {parcel.girth_mm:.0f} mm over {carrier.max_girth_mm} mm")
    return reasons


def _rate_for(rates: list[ServiceRate], zones: tuple[str, ...]) -> tuple[ServiceRate, str | None]:
    for zone in zones:
        for rate in rates:
            if zone in rate.zones:
                return rate, zone
    # Unserved: judge the limits of the first rate anyway so the dispatcher sees them all.
    return rates[0], None


def evaluate(
    rules: CarrierRules,
    destination: Destination,
    parcel: Parcel,
    service: Service,
    *,
    exclude: Collection[str] = (),
) -> tuple[list[CarrierOption], list[Rejection]]:
    """Every option that fits (unsorted) and every one that does not, with reasons."""
    if service not in SERVICE_SPEED:
        raise ValidationFailed(f"unknown service {service!r}; use one of {list(SERVICE_SPEED)}")
    zones = zones_of(rules, destination)
    wanted_speed = SERVICE_SPEED[service]
    options: list[CarrierOption] = []
    rejected: list[Rejection] = []
    for carrier in rules.carriers:
        if not carrier.enabled:
            rejected.append(Rejection(carrier.id, None, ("disabled in the carrier rules",)))
            continue
        if carrier.id in exclude:
            rejected.append(Rejection(carrier.id, None, ("excluded by the dispatcher",)))
            continue
        fast_enough = [r for r in carrier.services if SERVICE_SPEED[r.service] >= wanted_speed]
        if not fast_enough:
            offered = sorted({r.service for r in carrier.services}, key=SERVICE_SPEED.__getitem__)
            rejected.append(Rejection(carrier.id, None, (f"offers only {', '.join(offered)}",)))
            continue
        # A carrier may price one service differently per zone; the rate for the most
        # specific zone the destination is in applies.
        by_service: dict[str, list[ServiceRate]] = {}
        for rate in fast_enough:
            by_service.setdefault(rate.service, []).append(rate)
        for rates in by_service.values():
            rate, zone = _rate_for(rates, zones)
            reasons = _limit_reasons(carrier, rate, parcel)
            if zone is None:
                reasons.insert(0, f"does not serve {destination.label}")
            if zone is None or reasons:
                rejected.append(Rejection(carrier.id, rate.service, tuple(reasons)))
                continue
            billable = billable_weight_g(carrier, parcel)
            options.append(
                CarrierOption(
                    carrier=carrier.id,
                    carrier_name=carrier.name,
                    service=rate.service,
                    zone=zone,
                    cost=_price(carrier, rate, billable),
                    currency=rules.currency,
                    billable_weight_g=billable,
                    own_fleet=carrier.own_fleet,
                )
            )
    return options, rejected


def choose_carrier(
    rules: CarrierRules,
    destination: Destination,
    parcel: Parcel,
    service: Service,
    *,
    exclude: Collection[str] = (),
) -> CarrierChoice:
    """The cheapest option meeting the SLA; NoCarrierAvailable lists why none fits.

    ``exclude`` names carriers to leave out, e.g. one that just answered
    CarrierUnavailable, so the dispatcher can fall back to the next cheapest.
    """
    options, rejected = evaluate(rules, destination, parcel, service, exclude=exclude)
    file_order = {c.id: i for i, c in enumerate(rules.carriers)}
    options.sort(
        key=lambda o: (
            o.cost,
            -SERVICE_SPEED[o.service],
            not o.own_fleet,
            file_order[o.carrier],
        )
    )
    if not options:
        zones = zones_of(rules, destination)
        where = f"zones {', '.join(zones)}" if zones else "no configured zone"
        raise NoCarrierAvailable(
            f"no carrier fits {service} to {destination.label} ({where}) for a parcel of "
            f"{parcel.label}: " + "; ".join(r.describe() for r in rejected),
            service=service,
            destination=destination.label,
            rejected=[r.describe() for r in rejected],
        )
    chosen = options[0]
    reasons = [f"chose {chosen.describe()}"]
    if len(options) > 1:
        runner_up = options[1]
        reasons.append(f"cheapest of {len(options)} eligible; next is {runner_up.describe()}")
    else:
        reasons.append("the only eligible option")
    if chosen.service != service:
        reasons.append(f"{chosen.service} is faster than the requested {service} and cheapest")
    if rejected:
        reasons.append(f"{len(rejected)} other options ruled out (see rejected)")
    return CarrierChoice(
        chosen=chosen, eligible=tuple(options), rejected=tuple(rejected), reasons=tuple(reasons)
    )
