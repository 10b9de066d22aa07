"""Topic builders and the parser that turns a topic back into its parts.

Root: ``wcs/v1/{site}``. Device ids, order ids and command names are single topic
levels, so they may not contain ``/``, ``+`` or ``#``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from wcs.errors import ValidationFailed

EVENT_KINDS = ("scan", "weight", "confirm", "arrival")
COMMAND_NAMES = ("light", "clear", "route", "print", "tare", "zero", "weigh", "reset")
SEVERITIES = ("info", "warning", "critical")

_LEVEL = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

TopicKind = Literal[
    "status", "evt", "cmd", "ack", "order_state", "alert", "dlq", "controller_status"
]


def _level(value: str, what: str) -> str:
    if not _LEVEL.fullmatch(value):
        raise ValidationFailed(
            f"{what} {value!r} is not a valid topic level "
            "(1-64 of letters, digits, '_', '-', '.', ':')"
        )
    return value


@dataclass(frozen=True, slots=True)
class TopicInfo:
    kind: TopicKind
    device_id: str | None = None
    name: str | None = None  # event kind, command name, alert severity or controller
    order_id: str | None = None


@dataclass(frozen=True, slots=True)
class Topics:
    site: str = "wh1"

    @property
    def root(self) -> str:
        return f"wcs/v1/{self.site}"

    # --- devices -----------------------------------------------------------
    def dev_status(self, device_id: str) -> str:
        return f"{self.root}/dev/{_level(device_id, 'device id')}/status"

    def dev_evt(self, device_id: str, kind: str) -> str:
        if kind not in EVENT_KINDS:
            raise ValidationFailed(f"unknown event kind {kind!r}; expected one of {EVENT_KINDS}")
        return f"{self.root}/dev/{_level(device_id, 'device id')}/evt/{kind}"

    def dev_cmd(self, device_id: str, name: str) -> str:
        if name not in COMMAND_NAMES:
            raise ValidationFailed(f"unknown command {name!r}; expected one of {COMMAND_NAMES}")
        return f"{self.root}/dev/{_level(device_id, 'device id')}/cmd/{name}"

    def dev_ack(self, device_id: str) -> str:
        return f"{self.root}/dev/{_level(device_id, 'device id')}/ack"

    # --- controllers -------------------------------------------------------
    def controller_status(self, instance: str) -> str:
        return f"{self.root}/controller/{_level(instance, 'controller instance')}/status"

    def all_controller_statuses(self) -> str:
        return f"{self.root}/controller/+/status"

    # --- orders, alerts, dead letters ------------------------------------
    def order_state(self, order_id: str) -> str:
        return f"{self.root}/order/{_level(order_id, 'order id')}/state"

    def alert(self, severity: str) -> str:
        if severity not in SEVERITIES:
            raise ValidationFailed(f"unknown severity {severity!r}; expected one of {SEVERITIES}")
        return f"{self.root}/alert/{severity}"

    def dlq(self) -> str:
        return f"{self.root}/dlq"

    # --- subscription filters --------------------------------------------
    def all_events(self) -> str:
        return f"{self.root}/dev/+/evt/+"

    def all_statuses(self) -> str:
        return f"{self.root}/dev/+/status"

    def all_acks(self) -> str:
        return f"{self.root}/dev/+/ack"

    def device_commands(self, device_id: str) -> str:
        return f"{self.root}/dev/{_level(device_id, 'device id')}/cmd/+"

    def all_order_states(self) -> str:
        return f"{self.root}/order/+/state"

    def all_alerts(self) -> str:
        return f"{self.root}/alert/+"

    @staticmethod
    def shared(group: str, topic_filter: str) -> str:
        """MQTT 5 shared subscription: one member of ``group`` receives each message."""
        return f"$share/{_level(group, 'share group')}/{topic_filter}"

    # --- parsing -----------------------------------------------------------
    def parse(self, topic: str) -> TopicInfo:
        prefix = self.root + "/"
        if not topic.startswith(prefix):
            raise ValidationFailed(f"topic {topic!r} is outside {self.root}/")
        parts = topic[len(prefix) :].split("/")
        match parts:
            case ["dev", device_id, "status"]:
                return TopicInfo("status", device_id=device_id)
            case ["dev", device_id, "evt", kind] if kind in EVENT_KINDS:
                return TopicInfo("evt", device_id=device_id, name=kind)
            case ["dev", device_id, "cmd", name] if name in COMMAND_NAMES:
                return TopicInfo("cmd", device_id=device_id, name=name)
            case ["dev", device_id, "ack"]:
                return TopicInfo("ack", device_id=device_id)
            case ["order", order_id, "state"]:
                return TopicInfo("order_state", order_id=order_id)
            case ["alert", severity] if severity in SEVERITIES:
                return TopicInfo("alert", name=severity)
            case ["dlq"]:
                return TopicInfo("dlq")
            case ["controller", instance, "status"]:
                return TopicInfo("controller_status", name=instance)
        raise ValidationFailed(f"topic {topic!r} is not part of the contract")
