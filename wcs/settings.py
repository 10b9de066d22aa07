"""Typed settings, read once from ``WCS_*`` environment variables and injected.

Nested groups use a double underscore: ``WCS_PACK__WEIGHT_TOLERANCE_PCT=3``.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wcs.tls import ClientTls

if TYPE_CHECKING:
    from wcs.domain.floor.counts import CountPolicy

DEFAULT_DATA_DIR = Path("var")
DEFAULT_DB_FILE = "wcs.db"
DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"
DEV_WEBHOOK_SECRET = "dev-webhook-secret"
# Secrets we ask operators to generate (``openssl rand -hex 32`` gives 64 characters).
MIN_SECRET_CHARS = 32
# Values that appear in examples, tutorials and defaults: never a real secret.
PLACEHOLDERS = frozenset(
    {
        "",
        "admin",
        "change-me",
        "changeme",
        "changethis",
        "default",
        "dev",
        "example",
        "pass",
        "password",
        "placeholder",
        "secret",
        "test",
        "token",
        DEV_WEBHOOK_SECRET,
    }
)


def weak_secret(value: str, *, min_chars: int = MIN_SECRET_CHARS) -> str | None:
    """Why ``value`` cannot be a production secret, or None when it can."""
    folded = value.strip().lower()
    if folded in PLACEHOLDERS or any(word in folded for word in ("changeme", "change-me")):
        return "is a placeholder"
    if len(value) < min_chars:
        return f"is {len(value)} characters long; at least {min_chars} are needed"
    if len(set(value)) < 8:
        return f"uses only {len(set(value))} distinct characters"
    return None


# The spellings people paste (from psql, libpq, other tools) -> the async drivers.
_ASYNC_SCHEMES = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
}


def async_database_url(url: str) -> str:
    """``postgresql://`` and ``sqlite:///`` as users write them, mapped to the async
    drivers the system runs on (asyncpg, aiosqlite); libpq's ``sslmode`` becomes
    asyncpg's ``ssl``. Anything else is returned as it is."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    target = _ASYNC_SCHEMES.get(scheme.lower())
    if target is None:
        return url
    if target.startswith("postgresql"):
        rest = re.sub(r"([?&])sslmode=", r"\1ssl=", rest)
    return f"{target}://{rest}"


class MqttEndpoint(BaseModel):
    """A broker address parsed from ``mqtt://[user:pass@]host:port`` (``mqtts://`` for TLS),
    with the TLS files of the settings: the CA that signs the broker's certificate (the
    system's trust store when None) and our own client certificate and key."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None

    @classmethod
    def parse(cls, url: str) -> MqttEndpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(
                f"MQTT URL {url!r} must start with mqtt:// or mqtts:// (e.g. mqtt://127.0.0.1:1883)"
            )
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8883 if tls else 1883),
            username=parts.username,
            password=parts.password,
            tls=tls,
        )


class PackSettings(BaseModel):
    weight_tolerance_pct: float = Field(default=5.0, ge=0, le=50)
    weight_tolerance_min_g: float = Field(default=20.0, ge=0)
    mismatch_streak_alert: int = Field(default=3, ge=1)
    gs1_company_prefix: str = Field(
        default="0614141",
        pattern=r"^[0-9]{6,12}$",
        description="the GS1 company prefix of the SSCCs on parcel labels (the default is "
        "GS1's example prefix: set your own)",
    )
    ship_from: list[str] = Field(
        default_factory=lambda: ["Fulfilment centre", "Warehouse address"],
        max_length=4,
        description="the ship-from block of the parcel labels, one line each (JSON list)",
    )


class ControllerSettings(BaseModel):
    # Names the controller process among those sharing the floor's stations (its
    # leases); distinct per process when several run side by side.
    instance: str = Field(default="c1", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    # A station's lease lasts this long without renewal: an instance that dies loses
    # its stations to the others within about this time.
    lease_ttl_s: float = Field(default=3.0, gt=0)
    lease_interval_s: float = Field(default=1.0, gt=0)
    # How long the API waits for a station's owner to apply a request (a cancel, a QC
    # verdict, a wave) before answering 202 with the request to follow.
    answer_wait_s: float = Field(default=5.0, ge=0)
    # How often an owner looks for requests on its own. On PostgreSQL a notification
    # wakes it as each request is written, so this only catches one sent while it was
    # not listening; SQLite has none, and there it looks every 0.1 s at least.
    request_poll_s: float = Field(default=1.0, gt=0)
    batch_max: int = Field(default=256, ge=1)
    batch_wait_ms: float = Field(default=0.0, ge=0)
    committers: int = Field(default=2, ge=1)
    tote_decision_timeout_s: float = Field(default=5.0, gt=0)
    tote_pattern: str = r"^T[0-9]{3,12}$"
    # QC passes on a complete count unless the operator records a failure; set true to
    # also wait for the operator's packaging/appearance result.
    qc_require_operator: bool = False
    wave_interval_s: float = Field(default=2.0, gt=0)
    auto_release: bool = True
    allocate_interval_s: float = Field(default=1.0, gt=0)
    min_shelf_life_days: int = Field(
        default=7,
        ge=0,
        le=3650,
        description="a unit with fewer days of life left (the expiry or best-before date "
        "on its GS1 label) is refused at pick; a SKU's own min_shelf_life_days wins",
    )


class InventorySettings(BaseModel):
    """Cycle counts and replenishment of pick faces (``WCS_INVENTORY__*``)."""

    counts: bool = Field(
        default=True,
        description="open counts by rule (short pick, wrong item, a face picked empty, the "
        "ABC schedule); off: only the counts supervisors ask for, and the reserve's after a "
        "move found it short",
    )
    recount_units: int = Field(
        default=2, ge=0, description="a counted difference above this many units is counted again"
    )
    recount_pct: float = Field(
        default=5.0,
        ge=0,
        le=100,
        description="... or above this share of the book, whichever is larger",
    )
    count_period_s: float = Field(
        default=7 * 24 * 3600.0,
        gt=0,
        description="the ABC schedule's period: every pile is counted at least once in it",
    )
    counts_a: int = Field(default=4, ge=1, description="counts per period of an A pile")
    counts_b: int = Field(default=2, ge=1, description="counts per period of a B pile")
    counts_c: int = Field(default=1, ge=1, description="counts per period of a C pile")
    counts_per_gap: int = Field(
        default=2,
        ge=0,
        description="counts a pick station makes between two batches while a batch waits",
    )
    adjusted_twice_s: float = Field(
        default=7 * 24 * 3600.0,
        gt=0,
        description="a pile whose book is adjusted twice within this raises an alert",
    )

    def policy(self) -> CountPolicy:
        from wcs.domain.floor.counts import CountPolicy

        return CountPolicy(
            recount_units=self.recount_units,
            recount_pct=self.recount_pct,
            period_s=self.count_period_s,
            per_period={"A": self.counts_a, "B": self.counts_b, "C": self.counts_c},
        )


class IntakeSettings(BaseModel):
    """Order intake: orders arriving together are committed together."""

    batch_max: int = Field(
        default=256, ge=1, description="most orders committed in one transaction"
    )
    shortage: Literal["backorder", "refuse"] = Field(
        default="backorder",
        description="an order the stock cannot cover: kept as backordered (and "
        "replenishment requested), or refused with 409 and not kept (a flash sale)",
    )


class MonitoringSettings(BaseModel):
    """Alert rules, live status page and KPI refresh (``WCS_MONITORING__*``)."""

    alert_interval_s: float = Field(default=15.0, gt=0)
    # Per-state overrides of the stuck-order limits, in minutes (0 switches a state off),
    # e.g. WCS_MONITORING__STUCK_AFTER_MIN='{"picking": 45}'.
    stuck_after_min: dict[str, float] = Field(default_factory=dict)
    sla_margin_min: float = Field(default=60.0, ge=0)
    device_grace_s: float = Field(default=30.0, ge=0)
    pick_accuracy_min: float = Field(default=0.98, ge=0, le=1)
    pick_accuracy_window_min: float = Field(default=60.0, gt=0)
    pick_accuracy_min_picks: int = Field(default=50, ge=1)
    carrier_failure_streak: int = Field(default=3, ge=1)
    per_order_max: int = Field(default=10, ge=1)
    refresh_s: float = Field(default=10.0, gt=0)
    sse_queue: int = Field(default=256, ge=8)
    # The status page and its event stream without a token (isolated floor network).
    status_public: bool = False
    # Forecasting: the site's IANA time zone sets the weekday/hour pattern of demand.
    timezone: str = "UTC"
    forecast_history_days: int = Field(default=112, ge=2)
    picks_per_picker_hour: float = Field(default=120.0, gt=0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name like Europe/Paris"
            ) from None
        return value


class NotifySettings(BaseModel):
    """Customer notifications (``WCS_NOTIFY__*``): SMTP, the SMS webhook, retries.

    A channel without its address (no ``smtp_host``, no ``webhook_url``) is off: its
    notifications wait as pending and go out once it is configured, never dropped.
    """

    # Run the notifier inside the API process (off when a separate `wcs notify` runs).
    enabled: bool = True
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "Warehouse <no-reply@localhost>"
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    # TLS (starttls, tls): a private CA for the server's certificate, a client certificate.
    smtp_ca_file: Path | None = None
    smtp_cert_file: Path | None = None
    smtp_key_file: Path | None = None
    # SMS gateway (or any HTTP receiver): JSON POST with an Idempotency-Key header.
    webhook_url: str | None = None
    webhook_token: str | None = None
    # TLS (https://): a private CA for the gateway's certificate, a client certificate.
    webhook_ca_file: Path | None = None
    webhook_cert_file: Path | None = None
    webhook_key_file: Path | None = None
    customer_service_email: str | None = None
    # BCP 47 tags of served languages (wcs.i18n): en, zh-CN.
    staff_lang: str = "en"
    default_lang: str = "en"
    # Where customers reach the API (tracking links, the backorder choice).
    public_url: str = "http://127.0.0.1:8000"
    max_attempts: int = Field(default=8, ge=1)
    backoff_base_s: float = Field(default=30.0, gt=0)
    backoff_cap_s: float = Field(default=3600.0, gt=0)
    poll_s: float = Field(default=2.0, gt=0)
    batch: int = Field(default=50, ge=1)
    concurrency: int = Field(default=4, ge=1)
    # A message claimed longer ago than this belongs to a notifier that died.
    claim_ttl_s: float = Field(default=120.0, gt=0)

    @field_validator("staff_lang", "default_lang")
    @classmethod
    def _served(cls, value: str) -> str:
        from wcs.i18n.catalogues import offered
        from wcs.i18n.negotiation import match

        served = match(value)
        if served is None:
            raise ValueError(
                f"{value!r} is not a served language; use one of {', '.join(offered())}"
            )
        return served

    @property
    def smtp_tls(self) -> ClientTls:
        return ClientTls(
            "WCS_NOTIFY__SMTP", self.smtp_ca_file, self.smtp_cert_file, self.smtp_key_file
        )

    @property
    def webhook_tls(self) -> ClientTls:
        return ClientTls(
            "WCS_NOTIFY__WEBHOOK",
            self.webhook_ca_file,
            self.webhook_cert_file,
            self.webhook_key_file,
        )

    @model_validator(mode="after")
    def _tls_files(self) -> NotifySettings:
        smtp, webhook = self.smtp_tls, self.webhook_tls
        if smtp.given and self.smtp_security == "none":
            raise ValueError(
                f"{', '.join(smtp.given)} need WCS_NOTIFY__SMTP_SECURITY=starttls or tls"
            )
        if webhook.given and self.webhook_url and not _is_https(self.webhook_url):
            raise ValueError(f"{', '.join(webhook.given)} need an https:// WCS_NOTIFY__WEBHOOK_URL")
        smtp.check()
        webhook.check()
        return self


def _is_https(url: str) -> bool:
    return urlsplit(url).scheme.lower() == "https"


class ReturnsSettings(BaseModel):
    """Where customers send returns (``WCS_RETURNS__*``): printed on every return label."""

    name: str = "Returns department"
    line1: str = "Warehouse 1, Gate 4"
    line2: str | None = None
    postal_code: str = "10115"
    city: str = "Berlin"
    country: str = Field(default="DE", pattern=r"^[A-Z]{2}$")

    def lines(self) -> list[str]:
        return [
            self.name,
            self.line1,
            *([self.line2] if self.line2 else []),
            f"{self.postal_code} {self.city}",
            self.country,
        ]


class FleetSettings(BaseModel):
    """Own-fleet route planning (``WCS_FLEET__*``)."""

    road_factor: float = Field(
        default=1.3, ge=1.0, le=3.0, description="street distance over straight-line distance"
    )
    speed_kmh: float = Field(
        default=25.0,
        gt=0,
        le=130,
        description="average van speed in town, stops at lights included",
    )
    service_min: float = Field(
        default=3.0, ge=0, le=60, description="minutes at the door per parcel"
    )
    solve_budget_s: float = Field(
        default=6.0, gt=0, le=600, description="time the route solver may take for one day"
    )
    solver_threads: int = Field(default=2, ge=1, le=64, description="threads of the route solver")
    part_size: int = Field(
        default=60, ge=10, description="stops per sector when a large day is solved in sectors"
    )
    replan_interval_s: float = Field(
        default=30.0, gt=0, description="how often planned days are checked for new parcels"
    )


class Settings(BaseSettings):
    """Everything configurable, one prefix: ``WCS_``."""

    model_config = SettingsConfigDict(
        env_prefix="WCS_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    env: Literal["dev", "test", "prod"] = "dev"
    site: str = Field(default="wh1", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    # Everything the system writes on its own (the default SQLite file, proof-of-delivery
    # images, reports) goes under this directory unless a setting names another place.
    data_dir: Path = DEFAULT_DATA_DIR
    # Default: sqlite+aiosqlite:///{data_dir}/wcs.db (filled in by _defaults_in_data_dir).
    database_url: str = ""
    # PostgreSQL only: vacuum and analyze our tables ourselves when the server's
    # autovacuum is off (auto), always (on) or never (off); wcs.persistence.vacuum.
    vacuum: Literal["auto", "on", "off"] = "auto"
    mqtt_url: str = DEFAULT_MQTT_URL
    # TLS (mqtts://): a private CA for the broker's certificate, a client certificate.
    mqtt_ca_file: Path | None = None
    mqtt_cert_file: Path | None = None
    mqtt_key_file: Path | None = None
    # Start an in-process broker when nothing answers at mqtt_url (laptops, demos).
    embedded_broker: bool = True
    admin_token: str | None = None
    # Bearer token of the Prometheus scraper for /metrics (supervisors' tokens work too).
    metrics_token: str | None = None
    # Lifetime of a token `wcs users create` or `rotate` issues unless told otherwise.
    token_ttl_days: int = Field(default=90, ge=1, le=3650)
    log_level: str = "INFO"
    log_json: bool = False
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    # The floor file (devices, stations); the API uses it to assign waves to stations.
    floor_file: Path | None = None
    # Default: {data_dir}/pod.
    pod_dir: Path = Path()
    pod_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    carrier_url: str = "http://127.0.0.1:8765"
    # TLS (https://): a private CA for the carrier's certificate, a client certificate.
    carrier_ca_file: Path | None = None
    carrier_cert_file: Path | None = None
    carrier_key_file: Path | None = None
    carrier_webhook_secret: str = "dev-webhook-secret"
    # Signs the customers' self-service links (e-mail, SMS): changing it voids them all.
    link_secret: str = "dev-link-secret"
    # Carrier/service rules (YAML); None uses the rules shipped in wcs/carriers/rules.yaml.
    carrier_rules_path: Path | None = None
    auto_close_days: int = Field(default=7, ge=1)
    pack: PackSettings = PackSettings()
    controller: ControllerSettings = ControllerSettings()
    intake: IntakeSettings = IntakeSettings()
    inventory: InventorySettings = InventorySettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    notify: NotifySettings = NotifySettings()
    fleet: FleetSettings = FleetSettings()
    returns: ReturnsSettings = ReturnsSettings()

    @field_validator("env", mode="before")
    @classmethod
    def _env_alias(cls, value: object) -> object:
        return "prod" if isinstance(value, str) and value.lower() == "production" else value

    @field_validator("admin_token")
    @classmethod
    def _token_is_not_a_placeholder(cls, value: str | None) -> str | None:
        if value is not None and value.strip().lower() in PLACEHOLDERS:
            raise ValueError("is a placeholder; set a real random token")
        return value

    @model_validator(mode="after")
    def _production_secrets(self) -> Settings:
        if self.env == "prod":
            problems = production_problems(self)
            if problems:
                raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="before")
    @classmethod
    def _defaults_in_data_dir(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        base = Path(data.get("data_dir") or DEFAULT_DATA_DIR)
        if not data.get("database_url"):
            data["database_url"] = f"sqlite+aiosqlite:///{base / DEFAULT_DB_FILE}"
        if not data.get("pod_dir"):
            data["pod_dir"] = base / "pod"
        return data

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return async_database_url(value.strip())

    @field_validator("database_url")
    @classmethod
    def _database_tls_files(cls, value: str) -> str:
        # libpq's TLS files in a PostgreSQL URL (wcs.persistence.db.postgres_tls).
        query = dict(parse_qsl(urlsplit(value).query))
        files = {k: query[k] for k in ("sslrootcert", "sslcert", "sslkey") if k in query}
        if ("sslcert" in files) != ("sslkey" in files):
            raise ValueError("sslcert and sslkey go together in WCS_DATABASE_URL")
        for name, path in files.items():
            if not Path(path).is_file():
                raise ValueError(f"{name}={path} in WCS_DATABASE_URL is not a readable file")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url_parses(cls, value: str) -> str:
        MqttEndpoint.parse(value)
        return value

    @model_validator(mode="after")
    def _mqtt_tls_files(self) -> Settings:
        tls = ClientTls("WCS_MQTT", self.mqtt_ca_file, self.mqtt_cert_file, self.mqtt_key_file)
        if tls.given and not MqttEndpoint.parse(self.mqtt_url).tls:
            raise ValueError(f"{', '.join(tls.given)} need a mqtts:// WCS_MQTT_URL")
        tls.check()
        return self

    @model_validator(mode="after")
    def _carrier_tls_files(self) -> Settings:
        tls = self.carrier_tls
        if tls.given and not _is_https(self.carrier_url):
            raise ValueError(f"{', '.join(tls.given)} need an https:// WCS_CARRIER_URL")
        tls.check()
        return self

    @property
    def carrier_tls(self) -> ClientTls:
        return ClientTls(
            "WCS_CARRIER", self.carrier_ca_file, self.carrier_cert_file, self.carrier_key_file
        )

    @cached_property
    def mqtt(self) -> MqttEndpoint:
        return MqttEndpoint.parse(self.mqtt_url).model_copy(
            update={
                "cafile": self.mqtt_ca_file,
                "certfile": self.mqtt_cert_file,
                "keyfile": self.mqtt_key_file,
            }
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def production_problems(settings: Settings) -> list[str]:
    """Every secret production refuses, each naming its variable (WCS_ENV=prod).

    Secrets the system itself checks (bearer tokens, webhook signatures) must be long
    and random; passwords other services choose (SMTP, the SMS gateway, the broker,
    the database) only must not be a placeholder."""
    problems: list[str] = []
    generated = {
        "WCS_ADMIN_TOKEN": settings.admin_token,
        "WCS_METRICS_TOKEN": settings.metrics_token,
        "WCS_CARRIER_WEBHOOK_SECRET": settings.carrier_webhook_secret,
        "WCS_LINK_SECRET": settings.link_secret,
    }
    for name, value in generated.items():
        why = weak_secret(value) if value is not None else None
        if why:
            problems.append(f"{name} {why} (production needs a random value: openssl rand -hex 32)")
    chosen = {
        "WCS_NOTIFY__SMTP_PASSWORD": settings.notify.smtp_password,
        "WCS_NOTIFY__WEBHOOK_TOKEN": settings.notify.webhook_token,
        "the password in WCS_MQTT_URL": settings.mqtt.password,
        "the password in WCS_DATABASE_URL": urlsplit(settings.database_url).password,
    }
    for name, value in chosen.items():
        if value is not None and value.strip().lower() in PLACEHOLDERS:
            problems.append(f"{name} is a placeholder")
    return problems


def secret_values(settings: Settings) -> list[str | None]:
    """Every secret the settings hold: the log writes none of them."""
    return [
        settings.admin_token,
        settings.metrics_token,
        settings.carrier_webhook_secret,
        settings.link_secret,
        settings.notify.smtp_password,
        settings.notify.webhook_token,
        settings.mqtt.password,
        urlsplit(settings.database_url).password,
    ]


def describe_error(exc: ValidationError) -> str:
    """A settings error as one line naming each variable, for a person to act on."""
    parts = []
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ()) if p != "__root__"]
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        name = "WCS_" + "__".join(loc).upper() if loc else ""
        if message.startswith("WCS_"):  # a group's own check names its variables
            name = ""
        parts.append(f"{name}: {message}" if name else message)
    return "; ".join(parts)


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides winning."""
    return Settings(**overrides)  # type: ignore[arg-type]
