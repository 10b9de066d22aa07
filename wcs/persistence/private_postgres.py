"""A private PostgreSQL server for tests, fault drills and benchmarks.

``initdb`` in a temporary directory, then the server itself on a free loopback port
(its socket in that directory too), trust authentication, small settings - so a test
that stops, restarts or kills its database cuts no one else's connections::

    with PrivatePostgres() as pg:
        url = pg.url              # postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres
        pg.restart()              # a clean shutdown and start
        pg.kill()                 # SIGKILL to the whole server: a crash
        pg.start()                # crash recovery, then it answers again

The server runs in a process group of its own that dies with the process that
started it (``wcs.children``). Run as root, it runs as the ``postgres`` user (the
server refuses root). ``standby=True`` starts it as a standby with no primary and no
hot standby: it answers every connection with SQLSTATE 57P03 ("cannot connect now"),
which a restarting server answers for a moment.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from wcs.children import forget, run, spawn
from wcs.errors import ConfigError, WcsError
from wcs.mqtt.mosquitto import free_port

SUPERUSER = "postgres"


def find_bin_dir() -> Path:
    """The directory of ``initdb`` and ``postgres`` (Debian keeps them off PATH)."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts)
    if versions:
        return versions[-1].parent
    raise ConfigError(
        "PostgreSQL server binaries not found (initdb on PATH or /usr/lib/postgresql/*/bin); "
        "install them with `apt-get install postgresql`"
    )


@dataclass(frozen=True)
class ServerTls:
    """TLS for a private server: its certificate and key, the CA whose client
    certificates it accepts. With ``client_certificates`` a connection must be TLS and
    present a certificate of that CA naming its user (``cert`` authentication);
    without, it must be TLS."""

    cert: Path
    key: Path
    ca: Path
    client_certificates: bool = True


class PrivatePostgres:
    """A PostgreSQL server of our own; a context manager that removes it afterwards."""

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        standby: bool = False,
        start_timeout_s: float = 60.0,
        tls: ServerTls | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.standby = standby
        self.tls = tls
        self.start_timeout_s = start_timeout_s
        self.bin = find_bin_dir()
        self._dir = Path(tempfile.mkdtemp(prefix="wcs-postgres-"))
        self._user = pwd.getpwnam(SUPERUSER) if os.geteuid() == 0 else None
        if self._user is not None:
            os.chown(self._dir, self._user.pw_uid, self._user.pw_gid)
        self._process: subprocess.Popen[bytes] | None = None
        self._initialised = False

    @property
    def data_dir(self) -> Path:
        return self._dir / "data"

    @property
    def log_path(self) -> Path:
        return self._dir / "postgres.log"

    @property
    def dsn(self) -> str:
        """For asyncpg and psql."""
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/postgres"

    @property
    def url(self) -> str:
        """For WCS_DATABASE_URL."""
        return f"postgresql+asyncpg://{SUPERUSER}@{self.host}:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql+asyncpg://{SUPERUSER}@{self.host}:{self.port}/{name}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process else None

    def _as_owner(self) -> dict[str, Any]:
        if self._user is None:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}

    def _initdb(self) -> None:
        done = run(
            [str(self.bin / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
             "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
            capture_output=True,
            timeout=120,
            **self._as_owner(),
        )  # fmt: skip
        if done.returncode != 0:
            raise WcsError(f"initdb failed: {done.stderr.decode(errors='replace')[-500:]}")
        settings = [
            f"port = {self.port}",
            f"listen_addresses = '{self.host}'",
            f"unix_socket_directories = '{self._dir}'",
            "max_connections = 200",
            "shared_buffers = 32MB",
            "fsync = on",
            "logging_collector = off",
        ]
        if self.standby:
            settings.append("hot_standby = off")
            (self.data_dir / "standby.signal").touch()
        if self.tls is not None:
            settings += self._tls_files(self.tls)
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n".join(settings) + "\n")
        if self._user is not None:
            for path in (self.data_dir / "postgresql.conf", self.data_dir / "standby.signal"):
                if path.exists():
                    os.chown(path, self._user.pw_uid, self._user.pw_gid)
        self._initialised = True

    def _tls_files(self, tls: ServerTls) -> list[str]:
        """Copy the TLS files beside the data (the key readable by the server's user
        only, as it insists) and let only TLS connections in."""
        for source, name in ((tls.cert, "server.crt"), (tls.key, "server.key"), (tls.ca, "ca.crt")):
            target = self.data_dir / name
            shutil.copyfile(source, target)
            target.chmod(0o600)
            if self._user is not None:
                os.chown(target, self._user.pw_uid, self._user.pw_gid)
        method = "cert" if tls.client_certificates else "trust"
        (self.data_dir / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"hostssl all all {self.host}/32 {method}\n"
            "hostnossl all all 0.0.0.0/0 reject\n",
            encoding="utf-8",
        )
        return [
            "ssl = on",
            "ssl_cert_file = 'server.crt'",
            "ssl_key_file = 'server.key'",
            "ssl_ca_file = 'ca.crt'",
        ]

    def start(self) -> None:
        """Start the server (initialising it the first time) and wait until it answers
        (or, as a standby, until it refuses with 57P03)."""
        if self.running:
            return
        if not self._initialised:
            self._initdb()
        with self.log_path.open("ab") as log:
            if self._user is not None:
                os.chown(self.log_path, self._user.pw_uid, self._user.pw_gid)
            self._process = spawn(
                [str(self.bin / "postgres"), "-D", str(self.data_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                **self._as_owner(),
            )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if self._answers():
                return
            time.sleep(0.05)
        tail = self.log_path.read_text(errors="replace")[-800:]
        self.kill()
        raise WcsError(f"PostgreSQL did not start on {self.host}:{self.port}: {tail}")

    def _answers(self) -> bool:
        """Ready for queries - or, as a standby, up and refusing them."""
        done = run(
            [
                str(self.bin / "pg_isready"),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-t",
                "1",
            ],
            capture_output=True,
            timeout=10,
        )
        # 0: accepting connections; 1: rejecting them (starting up, or a standby).
        if self.standby:
            return done.returncode in (0, 1) and b"rejecting" in done.stdout
        return done.returncode == 0

    def _wait(self, process: subprocess.Popen[bytes], within: float) -> bool:
        try:
            process.wait(within)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self, mode: str = "fast") -> None:
        """Shut down: ``fast`` (SIGINT: clients cut, a checkpoint written) or
        ``immediate`` (SIGQUIT: no checkpoint; the next start recovers). (SIGTERM
        would be a "smart" shutdown, waiting for every client to leave.)"""
        process = self._process
        if process is None:
            return
        self._process = None
        sig = signal.SIGQUIT if mode == "immediate" else signal.SIGINT
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            if not self._wait(process, 30):
                self._killpg(process)
        # Backends end with the postmaster; anything left in the group goes too.
        self._killpg(process)
        forget(process.pid)

    def kill(self) -> None:
        """SIGKILL the whole server at once, the way a crash or an OOM kill would."""
        process = self._process
        if process is None:
            return
        self._process = None
        self._killpg(process)
        forget(process.pid)

    def _killpg(self, process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        self._wait(process, 10)
        # Backends are reparented when the postmaster dies first: wait until none holds
        # the port, or the next start finds it taken.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.02)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
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
