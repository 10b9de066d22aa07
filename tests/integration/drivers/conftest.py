from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.integration.drivers.support import Pty, Watch
from wcs.settings import MqttEndpoint


@pytest.fixture
def pty(tmp_path: Path) -> Iterator[Pty]:
    device = Pty(tmp_path, "ttyDEV0")
    try:
        yield device
    finally:
        device.close()


@pytest.fixture
async def watch(mqtt_endpoint: MqttEndpoint, site: str) -> AsyncIterator[Watch]:
    async with Watch(mqtt_endpoint, site) as w:
        yield w
