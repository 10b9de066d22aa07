"""Per-driver counters: what a supervisor asks first when a device misbehaves."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class DriverCounters:
    frames: int = 0  # frames accepted from the device
    bad_frames: int = 0  # frames refused (each one published to dlq)
    events: int = 0  # events queued for the broker
    commands: int = 0  # commands accepted for execution
    commands_failed: int = 0  # commands acked ok=false
    commands_invalid: int = 0  # commands refused to dlq (bad JSON or schema)
    commands_duplicate: int = 0  # redelivered cmd_ids acked again without running
    device_connects: int = 0
    device_failures: int = 0
    mqtt_connects: int = 0
    mqtt_failures: int = 0
    events_dropped: int = 0  # oldest buffered messages dropped while the broker was away

    def snapshot(self) -> dict[str, int]:
        return asdict(self)
