"""Prometheus metrics of the API process (served at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

API_ERRORS = Counter("wcs_api_errors_total", "Error responses by status", ["status"])
ORDERS_SUBMITTED = Counter(
    "wcs_orders_submitted_total", "Orders accepted at intake by resulting state", ["state"]
)
INTAKE_BATCH = Histogram(
    "wcs_intake_batch_orders",
    "Orders committed together in one intake transaction (group commit)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
REQUEST_SECONDS = Histogram(
    "wcs_api_request_seconds",
    "API request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

# --- monitoring (read from the database when scraped, at most every WCS_MONITORING__REFRESH_S) ---
ORDERS_BY_STATE = Gauge("wcs_orders_by_state", "Orders currently in each state", ["state"])
OPEN_ALERTS = Gauge(
    "wcs_alerts_open", "Alerts neither acknowledged nor resolved, by severity", ["severity"]
)
NOTIFICATIONS_UNDELIVERED = Gauge(
    "wcs_notifications_undelivered",
    "Notifications not delivered (yet), by state: dead and unconfirmed wait for a person",
    ["state"],
)
SSE_CLIENTS = Gauge("wcs_sse_clients", "Connected live event stream (SSE) clients")
SSE_DROPPED = Counter(
    "wcs_sse_clients_dropped_total", "Live clients dropped for falling behind (queue full)"
)
LIVE_MESSAGES = Counter(
    "wcs_live_messages_total", "MQTT messages taken in by the live feed, by kind", ["kind"]
)
