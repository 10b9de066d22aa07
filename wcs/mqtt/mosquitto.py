"""A private Mosquitto for tests, benchmarks and fault drills.

It runs the real broker binary on a free loopback port with a generated config
(anonymous, TCP_NODELAY, no persistence unless asked) in a temporary directory, and
can be stopped and started again on the same port - which is how the fault tests cut
the broker away from running drivers::

    with PrivateMosquitto() as broker:
        settings = load_settings(mqtt_url=broker.url)
        ...
        broker.stop()      # drivers buffer
        broker.start()     # drivers reconnect and replay

It can also run a configuration written elsewhere (``wcs broker-config``), to test
that configuration for real: ``PrivateMosquitto(config_file=path, port=port)`` with
the port that file's listener uses.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from wcs.children import forget, spawn
from wcs.errors import ConfigError, WcsError
from wcs.settings import MqttEndpoint

DEFAULT_BINARY = "/usr/sbin/mosquitto"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def find_mosquitto(binary: str | None = None) -> str:
    """The broker binary, or a ConfigError that says how to get it."""
    for candidate in (binary, shutil.which("mosquitto"), DEFAULT_BINARY):
        if candidate and Path(candidate).is_file():
            return candidate
    raise ConfigError(
        "mosquitto is not installed (looked on PATH and at /usr/sbin/mosquitto); "
        "install it with `apt-get install mosquitto`"
    )


class PrivateMosquitto:
    """A Mosquitto process of our own; a context manager that cleans up after itself."""

    name = "mosquitto"

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        binary: str | None = None,
        persistence: bool = False,
        start_timeout_s: float = 10.0,
        config_file: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.binary = self._find(binary)
        self.persistence = persistence
        self.start_timeout_s = start_timeout_s
        self.config_file = config_file
        if config_file is not None and port is None:
            raise ConfigError("a given config file needs the port its listener uses")
        self._dir = Path(tempfile.mkdtemp(prefix="wcs-mosquitto-"))
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def _find(binary: str | None) -> str:
        return find_mosquitto(binary)

    @property
    def endpoint(self) -> MqttEndpoint:
        return MqttEndpoint(host=self.host, port=self.port)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path:
        return self._dir / "mosquitto.log"

    def _private_lines(self) -> list[str]:
        lines = [f"log_dest file {self.log_path}"]
        if os.geteuid() == 0:
            # Started as root, mosquitto drops to user "mosquitto", which cannot write
            # its log or database into our private (0700) directory.
            lines.append("user root")
        return lines

    def _write_config(self) -> Path:
        if self.config_file is not None:
            given = self.config_file.read_text(encoding="utf-8")
            config = self._dir / "mosquitto.conf"
            config.write_text(given + "\n" + "\n".join(self._private_lines()) + "\n")
            return config
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            "set_tcp_nodelay true",
            # A private broker serves tests and benchmarks that burst thousands of
            # QoS 1 messages: never drop them for a slow subscriber.
            "max_queued_messages 0",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
        ]
        if os.geteuid() == 0:
            # Started as root, mosquitto drops to user "mosquitto", which cannot write
            # its log or database into our private (0700) directory.
            lines.append("user root")
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self._dir}/"]
        else:
            lines.append("persistence false")
        config = self._dir / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return config

    def start(self) -> None:
        """Start the broker (on the same port as before) and wait until it answers."""
        if self.running:
            return
        config = self._write_config()
        self._process = spawn(
            [self.binary, "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if _answers(self.host, self.port):
                return
            time.sleep(0.02)
        error = self._failure()
        self.stop()
        raise WcsError(f"{self.name} did not start on {self.host}:{self.port}: {error}")

    def _failure(self) -> str:
        process = self._process
        stderr = b""
        if process is not None and process.poll() is not None and process.stderr is not None:
            stderr = process.stderr.read()
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        text = (stderr.decode(errors="replace") + log).strip()
        return text[-500:] or "no answer on the port"

    def stop(self) -> None:
        """Stop the broker gracefully (persistence is written), kill it if it hangs."""
        process = self._process
        if process is None:
            return
        self._process = None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        forget(process.pid)
        if process.stderr is not None:
            process.stderr.close()
        # Wait for the port to be released so start() can bind it again.
        deadline = time.monotonic() + 5
        while _answers(self.host, self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> PrivateMosquitto:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            if self._process is not None and self._process.poll() is None:
                self._process.kill()
