"""A private NATS server with its MQTT gateway, for tests that must hold on another
broker than Mosquitto.

NATS speaks MQTT 3.1.1 through JetStream (sessions, QoS 1 and retained messages live
in streams), so persistent sessions, manual acknowledgements and session take-over
behave as any broker's, by another implementation::

    with PrivateNats() as broker:
        settings = load_settings(mqtt_url=broker.url)
"""

from __future__ import annotations

import shutil
from pathlib import Path

from wcs.errors import ConfigError
from wcs.mqtt.mosquitto import PrivateMosquitto, free_port

DEFAULT_BINARY = "/usr/sbin/nats-server"


def find_nats(binary: str | None = None) -> str:
    for candidate in (binary, shutil.which("nats-server"), DEFAULT_BINARY):
        if candidate and Path(candidate).is_file():
            return candidate
    raise ConfigError(
        "nats-server is not installed (looked on PATH and at /usr/sbin/nats-server); "
        "install it with `apt-get install nats-server`"
    )


class PrivateNats(PrivateMosquitto):
    """``port`` is the MQTT gateway's; the NATS client port is another free one."""

    name = "nats-server"

    def __init__(self, *, host: str = "127.0.0.1", binary: str | None = None) -> None:
        super().__init__(host=host, binary=binary, persistence=True)
        self.nats_port = free_port(host)

    @staticmethod
    def _find(binary: str | None) -> str:
        return find_nats(binary)

    @property
    def log_path(self) -> Path:
        return self._dir / "nats.log"

    def _write_config(self) -> Path:
        config = self._dir / "nats.conf"
        config.write_text(
            "\n".join(
                [
                    f"listen: {self.host}:{self.nats_port}",
                    # The MQTT gateway needs a named server with JetStream.
                    "server_name: wcs-private",
                    f'jetstream {{ store_dir: "{self._dir}/js" }}',
                    f"mqtt {{ listen: {self.host}:{self.port} }}",
                    f'log_file: "{self.log_path}"',
                ]
            )
            + "\n",
            encoding="utf-8",
        )
        return config
