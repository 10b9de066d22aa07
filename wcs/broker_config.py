"""Mosquitto configuration for a floor: listeners, accounts and per-account ACLs.

``wcs broker-config --floor FILE --out DIR`` writes five files:

- ``mosquitto.conf``: two listeners, ``allow_anonymous false`` on both,
  ``set_tcp_nodelay true``, persistence, queue limits, and the files below;
- ``passwd-services`` and ``passwd-devices``: one ``user:$7$...`` line per account,
  the PBKDF2-SHA512 format Mosquitto 2 reads (and ``mosquitto_passwd`` writes): 101
  iterations, 12-byte salt;
- ``acl``: what each account may read and write (Mosquitto denies everything else);
- ``credentials.json`` (mode 0600, never read by the broker): the clear-text
  passwords, to hand out once. Running the command again keeps the passwords of
  accounts that still exist, so a floor change does not re-key every device;
  ``rotate`` issues new ones.

**Client ids are bound to accounts.** An MQTT client id names a session: a client
connecting with another's id disconnects it and takes or wipes its session (a
persistent session holds the events the controller has not acknowledged). So the
service accounts (``passwd-services``) log in on the service listener only, and the
device accounts (``passwd-devices``) on the device listener only, where
``use_username_as_clientid`` replaces whatever client id a device sends with its own
account name: no device account can present the controller's id, or another
device's. (One listener cannot do both: several processes share a service account,
each with a client id of its own.) With TLS configured, each listener gets a TLS twin
and the clear-text ones stay on loopback, so passwords never cross the network in
clear.

**Ownership.** The broker reads the password and ACL files after it has dropped root
for its own user (``mosquitto`` on Debian): written as root, they belong to that user
and its group, mode 0640 - readable by the broker, not by other users. Written by
another user, they stay that user's, and the broker must run as it (or in its group).
``credentials.json`` stays 0600 and its writer's: the broker never needs it.

Accounts (the topic root is ``wcs/v1/{site}``):

=================  ==============================================================
``controller``     reads every device's events, acks and statuses; writes commands,
                   order states, alerts and dead letters (the outbox relay too) and
                   its presence (``controller/+/status``, which every account reads)
``api``            reads order states, statuses and alerts (live feed); writes what
                   its outbox relay sends: order states, alerts, commands
``drivers``        the ``wcs drivers`` host: publishes events, statuses, acks and
                   dead letters of every device; reads every device's commands
``monitor``        read-only view of the whole site (operations dashboards)
``dev-{id}``       one per floor device: publishes only its own ``evt/#``,
                   ``status`` (and Last Will) and ``ack``; reads only its own
                   ``cmd/#``. Dead letters of a device's frames come from the
                   drivers host, so a device cannot forge another's.
=================  ==============================================================

A publish the ACL denies is dropped by the broker without telling the client (MQTT
3.1.1 has no way to), so a device publishing as another one is simply not heard.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pwd
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from wcs.contract.topics import Topics
from wcs.errors import ConfigError
from wcs.floor import Floor

Access = Literal["read", "write", "readwrite"]
Role = Literal["controller", "api", "drivers", "monitor", "device"]

# What mosquitto_passwd writes for Mosquitto 2: PBKDF2-SHA512, 101 rounds, 12-byte salt.
HASH_ID = 7
HASH_ITERATIONS = 101
SALT_BYTES = 12
PASSWORD_BYTES = 24

CONFIG_FILE = "mosquitto.conf"
SERVICES_PASSWD_FILE = "passwd-services"
DEVICES_PASSWD_FILE = "passwd-devices"
ACL_FILE = "acl"
SECRETS_FILE = "credentials.json"
BROKER_USER = "mosquitto"

# The controller stops reading when its commit queues are full and relies on the
# broker to hold device events meanwhile; Mosquitto's default of 1000 queued
# messages per client would drop them after a second of a busy floor.
MAX_QUEUED_MESSAGES = 100_000


@dataclass(frozen=True, slots=True)
class Rule:
    access: Access
    topic: str


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    role: Role
    rules: tuple[Rule, ...]
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class Listener:
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class TlsFiles:
    certfile: Path
    keyfile: Path
    cafile: Path | None = None
    require_certificate: bool = False


@dataclass(frozen=True, slots=True)
class BrokerOptions:
    listener: Listener = Listener("0.0.0.0", 1883)  # services: controller, api, drivers
    device_listener: Listener = Listener("0.0.0.0", 1884)  # devices speaking MQTT
    tls: TlsFiles | None = None
    tls_listener: Listener = Listener("0.0.0.0", 8883)
    device_tls_listener: Listener = Listener("0.0.0.0", 8884)
    persistence_dir: Path | None = Path("/var/lib/mosquitto")
    log_dest: str = "syslog"
    # Who the broker runs as: the owner of the files it reads (when written as root).
    broker_user: str | None = BROKER_USER


@dataclass(frozen=True, slots=True)
class Written:
    """What ``write_broker_config`` produced."""

    directory: Path
    accounts: tuple[Account, ...]
    passwords: Mapping[str, str] = field(repr=False)
    new_accounts: tuple[str, ...]

    @property
    def config(self) -> Path:
        return self.directory / CONFIG_FILE

    @property
    def secrets(self) -> Path:
        return self.directory / SECRETS_FILE


def device_username(device_id: str) -> str:
    """The account name of one device.

    Device ids may contain ``:``, which ends the user name in a password file line;
    it is percent-encoded (``%`` itself cannot occur in an id, so names stay unique).
    """
    return "dev-" + quote(device_id, safe="-_.")


def accounts_for(floor: Floor) -> tuple[Account, ...]:
    """Every account of the floor with its ACL, service accounts first."""
    t = Topics(floor.site)
    dev = f"{t.root}/dev"
    controller = (
        Rule("read", f"{dev}/+/evt/#"),
        Rule("read", f"{dev}/+/ack"),
        Rule("read", f"{dev}/+/status"),
        Rule("write", f"{dev}/+/cmd/#"),
        Rule("readwrite", f"{t.root}/order/+/state"),
        Rule("write", f"{t.root}/alert/#"),
        Rule("write", t.dlq()),
        Rule("readwrite", t.all_controller_statuses()),
    )
    api = (
        Rule("readwrite", f"{t.root}/order/+/state"),
        Rule("readwrite", f"{t.root}/alert/#"),
        Rule("read", f"{dev}/+/status"),
        Rule("write", f"{dev}/+/cmd/#"),
        Rule("read", t.all_controller_statuses()),
    )
    drivers = (
        Rule("write", f"{dev}/+/evt/#"),
        Rule("readwrite", f"{dev}/+/status"),
        Rule("write", f"{dev}/+/ack"),
        Rule("read", f"{dev}/+/cmd/#"),
        Rule("write", t.dlq()),
        Rule("read", t.all_controller_statuses()),
    )
    monitor = (Rule("read", f"{t.root}/#"),)
    accounts = [
        Account("controller", "controller", controller),
        Account("api", "api", api),
        Account("drivers", "drivers", drivers),
        Account("monitor", "monitor", monitor),
    ]
    for device in floor.devices:
        own = f"{dev}/{device.id}"
        accounts.append(
            Account(
                device_username(device.id),
                "device",
                (
                    Rule("write", f"{own}/evt/#"),
                    Rule("write", f"{own}/status"),
                    Rule("write", f"{own}/ack"),
                    Rule("read", f"{own}/cmd/#"),
                    Rule("read", t.all_controller_statuses()),
                ),
                device_id=device.id,
            )
        )
    return tuple(accounts)


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The Mosquitto 2 password hash: ``$7$101$<salt b64>$<PBKDF2-SHA512 b64>``."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, HASH_ITERATIONS)
    b64 = base64.b64encode
    return f"${HASH_ID}${HASH_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches a ``$7$`` hash (ours or mosquitto_passwd's)."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[1] != str(HASH_ID):
        return False
    iterations, salt, digest = int(parts[2]), base64.b64decode(parts[3]), parts[4]
    computed = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return secrets.compare_digest(base64.b64encode(computed).decode(), digest)


def passwd_text(passwords: Mapping[str, str], order: Sequence[str]) -> str:
    return "".join(f"{name}:{hash_password(passwords[name])}\n" for name in order)


def acl_text(accounts: Sequence[Account]) -> str:
    lines = [
        "# Generated by `wcs broker-config`; anything not granted here is denied.",
        "",
    ]
    for account in accounts:
        what = f"device {account.device_id}" if account.device_id else f"{account.role} service"
        lines += [f"# {what}", f"user {account.username}"]
        lines += [f"topic {rule.access} {rule.topic}" for rule in account.rules]
        lines.append("")
    return "\n".join(lines)


def _listener_block(
    listen: Listener,
    passwd: Path,
    acl: Path,
    *,
    devices: bool,
    tls: TlsFiles | None = None,
) -> list[str]:
    lines = [
        "",
        f"# {'devices: each connects as its account name' if devices else 'services'}",
        f"listener {listen.port} {listen.host}",
        "protocol mqtt",
        "allow_anonymous false",
        f"password_file {passwd}",
        f"acl_file {acl}",
    ]
    if devices:
        lines.append("use_username_as_clientid true")
    if tls is not None:
        lines += [f"certfile {tls.certfile}", f"keyfile {tls.keyfile}"]
        if tls.cafile is not None:
            lines.append(f"cafile {tls.cafile}")
        if tls.require_certificate:
            if tls.cafile is None:
                raise ConfigError("client certificates need --cafile to be checked against")
            lines.append("require_certificate true")
    return lines


def _loopback(listen: Listener) -> Listener:
    if listen.host in ("0.0.0.0", "::", ""):
        return Listener("127.0.0.1", listen.port)
    return listen


def config_text(options: BrokerOptions, directory: Path) -> str:
    """The broker's own configuration, pointing at the password and ACL files."""
    services, devices = options.listener, options.device_listener
    if services.port == devices.port and services.host == devices.host:
        raise ConfigError("the service and device listeners need different ports")
    if options.tls is not None:
        # With TLS on offer, clear-text logins stay on this machine.
        services, devices = _loopback(services), _loopback(devices)
    acl = directory / ACL_FILE
    lines = [
        "# Generated by `wcs broker-config`.",
        # Each listener has its own accounts: devices cannot log in where services do.
        "per_listener_settings true",
        "set_tcp_nodelay true",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        # Events are at most 64 KiB and a print job's ZPL 256 KiB (JSON-escaped it
        # may grow); anything bigger is an attack or a bug, refused at the door.
        "max_packet_size 1048576",
        f"log_dest {options.log_dest}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "connection_messages true",
    ]
    if options.persistence_dir is not None:
        lines += [
            # Persistent sessions of the controller must survive a broker restart.
            "persistence true",
            f"persistence_location {options.persistence_dir}/",
            "autosave_interval 60",
        ]
    else:
        lines.append("persistence false")
    service_passwd = directory / SERVICES_PASSWD_FILE
    device_passwd = directory / DEVICES_PASSWD_FILE
    lines += _listener_block(services, service_passwd, acl, devices=False)
    lines += _listener_block(devices, device_passwd, acl, devices=True)
    if options.tls is not None:
        lines += _listener_block(
            options.tls_listener, service_passwd, acl, devices=False, tls=options.tls
        )
        lines += _listener_block(
            options.device_tls_listener, device_passwd, acl, devices=True, tls=options.tls
        )
    return "\n".join(lines) + "\n"


def _check_tls(tls: TlsFiles) -> None:
    for what, path in (("certificate", tls.certfile), ("key", tls.keyfile), ("CA", tls.cafile)):
        if path is not None and not path.is_file():
            raise ConfigError(f"TLS {what} file {path} does not exist")


def _read_secrets(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(name): str(entry["password"]) for name, entry in data["accounts"].items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a credentials file written by wcs ({exc})") from None


def _write_private(path: Path, text: str, mode: int, owner: tuple[int, int] | None = None) -> None:
    """Write a file that is never readable by others, not even for a moment; ``owner``
    (uid, gid) is given to it before it takes its name."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        if owner is not None:
            os.fchown(fd, *owner)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    tmp.replace(path)


def broker_owner(user: str | None) -> tuple[int, int] | None:
    """(uid, gid) of the broker's user when we run as root and can hand files to it;
    None otherwise (the files stay ours)."""
    if user is None or os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ConfigError(
            f"the broker's user {user!r} does not exist; name the user Mosquitto runs as "
            "with --broker-user"
        ) from None
    return entry.pw_uid, entry.pw_gid


def write_broker_config(
    floor: Floor,
    directory: Path,
    options: BrokerOptions | None = None,
    *,
    rotate: bool = False,
) -> Written:
    """Write config, password file, ACL file and credentials for ``floor`` into ``directory``."""
    options = options or BrokerOptions()
    if options.tls is not None:
        _check_tls(options.tls)
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    accounts = accounts_for(floor)
    kept = {} if rotate else _read_secrets(directory / SECRETS_FILE)
    passwords: dict[str, str] = {}
    new: list[str] = []
    for account in accounts:
        if account.username in kept:
            passwords[account.username] = kept[account.username]
        else:
            passwords[account.username] = secrets.token_urlsafe(PASSWORD_BYTES)
            new.append(account.username)
    services = [a.username for a in accounts if a.role != "device"]
    devices = [a.username for a in accounts if a.role == "device"]
    # The broker reads these after dropping root for its own user: theirs, 0640.
    owner = broker_owner(options.broker_user)
    _write_private(directory / SERVICES_PASSWD_FILE, passwd_text(passwords, services), 0o640, owner)
    _write_private(directory / DEVICES_PASSWD_FILE, passwd_text(passwords, devices), 0o640, owner)
    _write_private(directory / ACL_FILE, acl_text(accounts), 0o640, owner)
    (directory / "passwd").unlink(missing_ok=True)  # the single file of earlier versions
    secrets_doc = {
        "site": floor.site,
        "accounts": {
            a.username: {"role": a.role, "device": a.device_id, "password": passwords[a.username]}
            for a in accounts
        },
    }
    _write_private(directory / SECRETS_FILE, json.dumps(secrets_doc, indent=2) + "\n", 0o600)
    (directory / CONFIG_FILE).write_text(config_text(options, directory), encoding="utf-8")
    return Written(directory, accounts, passwords, tuple(new))


def mqtt_url(username: str, password: str, host: str, port: int, *, tls: bool = False) -> str:
    """A ``WCS_MQTT_URL`` for one account.

    Generated names and passwords hold only characters a URL's user part takes as
    they are, and the settings read them back without decoding."""
    scheme = "mqtts" if tls else "mqtt"
    return f"{scheme}://{username}:{password}@{host}:{port}"
