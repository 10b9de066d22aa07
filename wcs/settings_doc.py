"""The configuration reference (docs/configuration.md), generated from ``Settings``.

Every environment variable the system reads appears here with its default; a test
regenerates the page and fails when it differs from the committed file, or when a
setting has no description.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from wcs.settings import Settings

DESCRIPTIONS: dict[str, str] = {
    "WCS_ENV": "dev, test or prod; prod refuses to start with a placeholder or short "
    "secret, naming the variable (docs/operations/security.md)",
    "WCS_SITE": "site id, the MQTT root is wcs/v1/{site}",
    "WCS_DATA_DIR": "where the system writes its own files (default database, proof of "
    "delivery, reports)",
    "WCS_DATABASE_URL": "sqlite:///file.db or postgresql://user@host/db (mapped to the async "
    "drivers aiosqlite and asyncpg); TLS to PostgreSQL with libpq's parameters: "
    "?sslmode=verify-full&sslrootcert=ca.pem (a private CA; default the system's trust "
    "store)&sslcert=client.pem&sslkey=client.key (a client certificate)",
    "WCS_VACUUM": "PostgreSQL: auto vacuums and analyzes the WCS tables itself when the "
    "server's autovacuum is off (plans and dead rows otherwise go stale), on always, off "
    "never (the database's administrator does)",
    "WCS_MQTT_URL": "broker: mqtt://[user:pass@]host:port (mqtts:// for TLS)",
    "WCS_MQTT_CA_FILE": "CA certificate(s), PEM, that sign the broker's certificate "
    "(mqtts://; default the system's trust store)",
    "WCS_MQTT_CERT_FILE": "our client certificate, PEM, for brokers that require one",
    "WCS_MQTT_KEY_FILE": "the private key of WCS_MQTT_CERT_FILE, PEM",
    "WCS_EMBEDDED_BROKER": "start an in-process MQTT broker when none answers (laptops, demo)",
    "WCS_ADMIN_TOKEN": "bootstrap bearer token holding every role",
    "WCS_TOKEN_TTL_DAYS": "days an issued API token works unless `wcs users create "
    "--expires-days` says otherwise (rotate with `wcs users rotate`)",
    "WCS_METRICS_TOKEN": "bearer token that may read /metrics (for the Prometheus scraper; "
    "supervisors' tokens may too); unset: supervisors only",
    "WCS_LOG_LEVEL": "DEBUG, INFO, WARNING, ERROR",
    "WCS_LOG_JSON": "log JSON lines instead of key=value",
    "WCS_MAX_BODY_BYTES": "largest JSON request body the API reads",
    "WCS_FLOOR_FILE": "floor file for the API (assigns waves to pick stations)",
    "WCS_POD_DIR": "where proof-of-delivery images are stored",
    "WCS_POD_MAX_BYTES": "largest proof-of-delivery upload",
    "WCS_CARRIER_URL": "base URL of the carrier's booking API",
    "WCS_CARRIER_CA_FILE": "CA certificate(s), PEM, that sign the carrier's certificate "
    "(https://; default the system's trust store)",
    "WCS_CARRIER_CERT_FILE": "our client certificate, PEM, for a carrier API that requires one",
    "WCS_CARRIER_KEY_FILE": "the private key of WCS_CARRIER_CERT_FILE, PEM",
    "WCS_CARRIER_WEBHOOK_SECRET": "HMAC secret of the carrier's tracking webhook (the "
    "default is for development only; prod needs 32+ random characters)",
    "WCS_LINK_SECRET": "signs customers' self-service links; changing it voids them (prod "
    "needs 32+ random characters)",
    "WCS_RETURNS__NAME": "return labels: who receives returns",
    "WCS_RETURNS__LINE1": "return labels: street and number",
    "WCS_RETURNS__LINE2": "return labels: second address line",
    "WCS_RETURNS__POSTAL_CODE": "return labels: postal code",
    "WCS_RETURNS__CITY": "return labels: city",
    "WCS_RETURNS__COUNTRY": "return labels: ISO country code",
    "WCS_CARRIER_RULES_PATH": "carrier/service rules YAML (default: the shipped rules)",
    "WCS_AUTO_CLOSE_DAYS": "days after delivery without complaint before an order closes",
    "WCS_PACK__WEIGHT_TOLERANCE_PCT": "allowed scale deviation, percent of expected weight",
    "WCS_PACK__WEIGHT_TOLERANCE_MIN_G": "allowed scale deviation never below this many grams",
    "WCS_PACK__MISMATCH_STREAK_ALERT": "weight mismatches in a row at a station that alert",
    "WCS_CONTROLLER__INSTANCE": "this controller's name among those sharing the floor's "
    "stations (unique per process)",
    "WCS_CONTROLLER__LEASE_TTL_S": "a station's lease lasts this long unrenewed: a dead "
    "instance's stations move to the others within about this time",
    "WCS_CONTROLLER__LEASE_INTERVAL_S": "how often an instance renews its leases and takes "
    "or hands over stations toward a fair share",
    "WCS_CONTROLLER__ANSWER_WAIT_S": "how long the API waits for a station's owner to apply "
    "a request before answering 202",
    "WCS_CONTROLLER__REQUEST_POLL_S": "how often an owner looks for requests on its own; on "
    "PostgreSQL each request also wakes it as it is written, so this only catches one sent "
    "while it was not listening (SQLite: every 0.1 s at least)",
    "WCS_CONTROLLER__BATCH_MAX": "most events committed in one transaction",
    "WCS_CONTROLLER__BATCH_WAIT_MS": (
        "wait for more events before committing a lone one (0: batches form only while "
        "every committer is busy, the lowest latency)"
    ),
    "WCS_CONTROLLER__COMMITTERS": "parallel committers (events of one device stay in order)",
    "WCS_CONTROLLER__TOTE_DECISION_TIMEOUT_S": "diverter decision window the PLC is set to",
    "WCS_CONTROLLER__TOTE_PATTERN": "regular expression of tote barcodes",
    "WCS_CONTROLLER__QC_REQUIRE_OPERATOR": "QC also waits for the operator's verdict",
    "WCS_CONTROLLER__WAVE_INTERVAL_S": "how often waves are released and idle stations fed",
    "WCS_CONTROLLER__AUTO_RELEASE": "release waves automatically",
    "WCS_CONTROLLER__ALLOCATE_INTERVAL_S": "how often packed orders are allocated to carriers",
    "WCS_MONITORING__ALERT_INTERVAL_S": "how often alert rules are evaluated",
    "WCS_MONITORING__STUCK_AFTER_MIN": 'per-state stuck limits in minutes, JSON: {"picking": 45}',
    "WCS_MONITORING__SLA_MARGIN_MIN": "SLA at risk when the deadline is this close",
    "WCS_MONITORING__DEVICE_GRACE_S": "device offline this long before it alerts",
    "WCS_MONITORING__PICK_ACCURACY_MIN": "pick accuracy below this alerts",
    "WCS_MONITORING__PICK_ACCURACY_WINDOW_MIN": "window of the pick accuracy rule",
    "WCS_MONITORING__PICK_ACCURACY_MIN_PICKS": "picks needed in the window before it can alert",
    "WCS_MONITORING__CARRIER_FAILURE_STREAK": "carrier failures in a row that alert",
    "WCS_MONITORING__PER_ORDER_MAX": "beyond this many orders a rule raises one summary alert",
    "WCS_MONITORING__REFRESH_S": "status page summary refresh interval while a page "
    "watches; the /metrics gauges read from the database at most this often",
    "WCS_MONITORING__SSE_QUEUE": "events buffered per status-page client before it is dropped",
    "WCS_MONITORING__STATUS_PUBLIC": "status page without a token (isolated floor network)",
    "WCS_MONITORING__TIMEZONE": "IANA time zone of the site (forecast patterns)",
    "WCS_MONITORING__FORECAST_HISTORY_DAYS": "days of order history the forecast learns from",
    "WCS_MONITORING__PICKS_PER_PICKER_HOUR": "picker productivity for staffing suggestions",
    "WCS_NOTIFY__ENABLED": "run the notifier inside the API process (off when `wcs notify` runs)",
    "WCS_NOTIFY__SMTP_HOST": "SMTP server for e-mail; unset keeps e-mails waiting",
    "WCS_NOTIFY__SMTP_PORT": "SMTP port",
    "WCS_NOTIFY__SMTP_SECURITY": "none, starttls or tls",
    "WCS_NOTIFY__SMTP_CA_FILE": "CA certificate(s), PEM, that sign the SMTP server's "
    "certificate (starttls, tls; default the system's trust store)",
    "WCS_NOTIFY__SMTP_CERT_FILE": "our client certificate, PEM, for an SMTP server that "
    "requires one",
    "WCS_NOTIFY__SMTP_KEY_FILE": "the private key of WCS_NOTIFY__SMTP_CERT_FILE, PEM",
    "WCS_NOTIFY__SMTP_USERNAME": "SMTP login",
    "WCS_NOTIFY__SMTP_PASSWORD": "SMTP password",
    "WCS_NOTIFY__SMTP_FROM": "sender of customer e-mails",
    "WCS_NOTIFY__SMTP_TIMEOUT_S": "SMTP conversation timeout",
    "WCS_NOTIFY__WEBHOOK_URL": "SMS gateway or HTTP receiver; unset keeps SMS waiting",
    "WCS_NOTIFY__WEBHOOK_TOKEN": "bearer token sent to the webhook",
    "WCS_NOTIFY__WEBHOOK_CA_FILE": "CA certificate(s), PEM, that sign the webhook's "
    "certificate (https://; default the system's trust store)",
    "WCS_NOTIFY__WEBHOOK_CERT_FILE": "our client certificate, PEM, for a webhook that requires one",
    "WCS_NOTIFY__WEBHOOK_KEY_FILE": "the private key of WCS_NOTIFY__WEBHOOK_CERT_FILE, PEM",
    "WCS_NOTIFY__CUSTOMER_SERVICE_EMAIL": "where invalid-order notices go",
    "WCS_NOTIFY__STAFF_LANG": "language of staff e-mails (BCP 47, a served one: en, zh-CN)",
    "WCS_NOTIFY__DEFAULT_LANG": "customer language when nothing else decides (en, zh-CN)",
    "WCS_NOTIFY__PUBLIC_URL": "where customers reach the API (tracking links, backorder choice)",
    "WCS_NOTIFY__MAX_ATTEMPTS": "temporary failures before a notification is dead-lettered",
    "WCS_NOTIFY__BACKOFF_BASE_S": "first retry delay",
    "WCS_NOTIFY__BACKOFF_CAP_S": "longest retry delay",
    "WCS_NOTIFY__POLL_S": "how often the notifier looks for work",
    "WCS_NOTIFY__BATCH": "notifications claimed per round",
    "WCS_NOTIFY__CONCURRENCY": "notifications sent at once",
    "WCS_NOTIFY__CLAIM_TTL_S": "a claim older than this belongs to a notifier that died",
}


# Defaults computed from another setting, shown as the rule that computes them.
DERIVED_DEFAULTS: dict[str, str] = {
    "WCS_DATABASE_URL": "sqlite+aiosqlite:///{data_dir}/wcs.db",
    "WCS_POD_DIR": "{data_dir}/pod",
}


def variables(
    model: type[BaseModel] = Settings, prefix: str = "WCS_"
) -> Iterator[tuple[str, Any, str]]:
    """(variable, default, description) for every setting, nested groups flattened."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from variables(annotation, f"{prefix}{name.upper()}__")
            continue
        var = f"{prefix}{name.upper()}"
        if field.default is not PydanticUndefined:
            default: Any = field.default
        elif field.default_factory is not None:
            default = field.default_factory()  # type: ignore[call-arg]
        else:
            default = None
        default = DERIVED_DEFAULTS.get(var, default)
        description = field.description or DESCRIPTIONS.get(var, "")
        yield var, default, description


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value in ({}, []):
        return "(empty)"
    return f"`{value}`"


def render() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from `wcs/settings.py` by `wcs config-reference`; do not edit by hand.",
        "Every process reads the same variables (prefix `WCS_`; nested groups use `__`).",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    for var, default, description in variables():
        lines.append(f"| `{var}` | {_show(default)} | {description.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
