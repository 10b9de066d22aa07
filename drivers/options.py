"""Tunables of the driver runtime, with defaults fit for a real floor."""

from __future__ import annotations

from dataclasses import dataclass

from wcs.retry import Backoff


@dataclass(frozen=True)
class DriverOptions:
    # Offline buffer: events, acks and dead letters waiting for the broker.
    buffer_capacity: int = 10_000
    # QoS 1 messages handed to the broker and not yet acknowledged, per driver.
    inflight_window: int = 64
    # cmd_ids remembered so a redelivered command is acked again, not run again.
    recent_commands: int = 1024
    command_queue: int = 256
    command_timeout_s: float = 15.0
    # Reconnect backoff (device links and broker alike): the system's one policy
    # (wcs.retry: capped exponential, full jitter), with these bounds.
    backoff_base_s: float = 0.1
    backoff_cap_s: float = 5.0
    mqtt_keepalive_s: int = 15
    # On stop: how long to keep publishing buffered messages before giving up.
    shutdown_grace_s: float = 3.0
    # Device links.
    open_timeout_s: float = 5.0
    # Scales (MT-SICS): S waits for stability on the scale side, hence the long wait.
    scale_reply_timeout_s: float = 5.0
    scale_busy_retries: int = 3
    scale_retry_delay_s: float = 0.3
    scale_poll_s: float = 2.0
    # Printers.
    printer_write_timeout_s: float = 10.0
    # PTL and diverters.
    heartbeat_s: float = 1.0
    route_timeout_s: float = 3.0

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.backoff_base_s, self.backoff_cap_s)
