"""Production (WCS_ENV=prod) refuses placeholder and short secrets at start, naming the
variable in one line; development keeps its convenient defaults."""

from __future__ import annotations

import os
import sys

import pytest
from pydantic import ValidationError

from wcs.children import run
from wcs.settings import Settings, describe_error

GOOD = "9f1c2b7e4d3a8c6f0e5b1a2d7c9e4f3b"  # 32 random hex characters
SECRET = "WCS_CARRIER_WEBHOOK_SECRET"
PROD = {
    "env": "prod",
    "carrier_webhook_secret": GOOD + "x",
    "admin_token": GOOD,
    "link_secret": GOOD + "y",
}


def refusal(**values: object) -> str:
    with pytest.raises(ValidationError) as caught:
        Settings(**values)  # type: ignore[arg-type]
    return describe_error(caught.value)


def test_development_keeps_its_defaults() -> None:
    settings = Settings(admin_token="dev-admin")
    assert settings.carrier_webhook_secret == "dev-webhook-secret"


def test_production_with_real_secrets_starts() -> None:
    settings = Settings(**PROD)  # type: ignore[arg-type]
    assert settings.env == "prod"
    assert Settings(**{**PROD, "env": "production"}).env == "prod"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "named", "why"),
    [
        ({"carrier_webhook_secret": "dev-webhook-secret"}, SECRET, "placeholder"),
        ({"carrier_webhook_secret": "short-but-random-4821"}, SECRET, "21 characters"),
        ({"admin_token": "a"}, "WCS_ADMIN_TOKEN", "1 characters"),
        ({"link_secret": "dev-link-secret"}, "WCS_LINK_SECRET", "15 characters"),
        ({"admin_token": "b" * 40}, "WCS_ADMIN_TOKEN", "distinct characters"),
        ({"admin_token": "please-changeme-" + GOOD}, "WCS_ADMIN_TOKEN", "placeholder"),
        ({"notify": {"smtp_password": "password"}}, "WCS_NOTIFY__SMTP_PASSWORD", "placeholder"),
        ({"mqtt_url": "mqtt://controller:changeme@broker:1883"}, "WCS_MQTT_URL", "placeholder"),
        ({"database_url": "postgresql+asyncpg://wcs:secret@db/wcs"}, "DATABASE_URL", "placeholder"),
    ],
)  # fmt: skip
def test_production_refuses_weak_secrets_naming_the_variable(
    values: dict[str, object], named: str, why: str
) -> None:
    line = refusal(**{**PROD, **values})
    assert named in line and why in line
    assert "\n" not in line


def test_a_placeholder_admin_token_is_refused_everywhere() -> None:
    assert "WCS_ADMIN_TOKEN" in refusal(admin_token="changeme")


def test_the_command_line_says_it_in_one_line_and_exits_2() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WCS_")}
    env |= {"WCS_ENV": "prod", "WCS_ADMIN_TOKEN": "a"}
    done = run(
        [sys.executable, "-m", "cli", "api", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("configuration error: ")
    assert "WCS_ADMIN_TOKEN" in lines[0] and "WCS_CARRIER_WEBHOOK_SECRET" in lines[0]
