"""Prometheus metrics of the API process (served at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

API_ERRORS = Counter("wcs_api_errors_total", "Error responses by status", ["status"])
ORDERS_SUBMITTED = Counter(
    "wcs_orders_submitted_total", "Orders accepted at intake by resulting state", ["state"]
)
REQUEST_SECONDS = Histogram(
    "wcs_api_request_seconds",
    "API request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
