"""mqtt_topics.md and wcs.contract must describe the same topics and fields."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wcs.contract import payloads
from wcs.contract.topics import COMMAND_NAMES, EVENT_KINDS, Topics

DOC = Path(__file__).resolve().parents[2] / "mqtt_topics.md"

MODELS: dict[str, type[payloads.Payload]] = {
    "dev/{device_id}/status": payloads.DeviceStatus,
    "dev/{device_id}/ack": payloads.Ack,
    "order/{order_id}/state": payloads.OrderStateChange,
    "alert/{severity}": payloads.Alert,
    "dlq": payloads.DlqMessage,
    "controller/{instance}/status": payloads.ControllerStatus,
    **{f"dev/{{device_id}}/evt/{k}": payloads.EVENT_MODELS[k] for k in EVENT_KINDS},
    **{f"dev/{{device_id}}/cmd/{n}": payloads.COMMAND_MODELS[n] for n in COMMAND_NAMES},
}


def documented_sections() -> dict[str, set[str]]:
    """Each ``### `topic` `` heading with the field names of the table under it."""
    sections: dict[str, set[str]] = {}
    current: str | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^### `([^`]+)`", line)
        if heading:
            current = heading.group(1)
            sections[current] = set()
            continue
        if line.startswith("## "):
            current = None
        row = re.match(r"^\| `([a-z_]+)` \|", line)
        if current is not None and row:
            sections[current].add(row.group(1))
    return sections


def documented_topics_in_summary() -> set[str]:
    text = DOC.read_text(encoding="utf-8")
    return set(re.findall(r"^\| `((?:dev/|order/|alert/|dlq|controller/)[^`]*)` \|", text, re.M))


def model_fields(model: type[payloads.Payload]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def test_every_topic_is_documented_and_implemented() -> None:
    sections = documented_sections()
    assert set(sections) == set(MODELS), (
        f"only in doc: {set(sections) - set(MODELS)}; only in code: {set(MODELS) - set(sections)}"
    )
    assert documented_topics_in_summary() == set(MODELS)


@pytest.mark.parametrize("topic", sorted(MODELS))
def test_fields_match(topic: str) -> None:
    documented = documented_sections()[topic]
    implemented = model_fields(MODELS[topic])
    assert documented == implemented, (
        f"{topic}: only in doc {documented - implemented}, only in code {implemented - documented}"
    )


def test_documented_topics_parse_with_the_builders() -> None:
    topics = Topics("wh1")
    for pattern in MODELS:
        concrete = pattern.replace("{device_id}", "dev-1").replace("{order_id}", "o1")
        concrete = concrete.replace("{severity}", "warning").replace("{instance}", "c1")
        assert topics.parse(f"{topics.root}/{concrete}") is not None


def test_examples_in_doc_validate() -> None:
    """Every JSON example directly under a topic heading parses with that topic's model."""
    current: str | None = None
    in_block = False
    checked = 0
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^### `([^`]+)`", line)
        if heading:
            current = heading.group(1)
        elif line.startswith("```json"):
            in_block = True
        elif line.startswith("```"):
            in_block = False
        elif in_block and current in MODELS:
            MODELS[current].model_validate_json(line)
            checked += 1
    assert checked >= 8
