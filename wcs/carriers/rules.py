"""Loading the carrier rules file: the shipped default, or the one settings name."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from wcs.domain.carriers import CarrierRules, rules_from_yaml
from wcs.errors import ConfigError

DEFAULT_RULES_RESOURCE = "rules.yaml"


def default_rules_text() -> str:
    return resources.files("wcs.carriers").joinpath(DEFAULT_RULES_RESOURCE).read_text("utf-8")


def load_rules(path: Path | None = None) -> CarrierRules:
    """Parse the rules at ``path`` (``WCS_CARRIER_RULES_PATH``), else the shipped default."""
    if path is None:
        return rules_from_yaml(default_rules_text())
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read carrier rules {path}: {exc.strerror or exc}; "
            "fix WCS_CARRIER_RULES_PATH or unset it to use the shipped rules"
        ) from None
    try:
        return rules_from_yaml(text)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}") from None
