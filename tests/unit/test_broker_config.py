"""Broker configuration: password hashes Mosquitto accepts, per-account ACLs, files."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from wcs.broker_config import (
    BrokerOptions,
    Listener,
    TlsFiles,
    accounts_for,
    acl_text,
    config_text,
    device_username,
    hash_password,
    verify_password,
    write_broker_config,
)
from wcs.children import run
from wcs.errors import ConfigError
from wcs.floor import Floor

FLOOR = Floor.model_validate(
    {
        "site": "wh9",
        "devices": [
            {"id": "scan-a", "kind": "scanner", "zone": "pick", "link": {"url": "loop://"}},
            {"id": "ptl:1", "kind": "ptl", "zone": "pick", "link": {"type": "modbus"},
             "slots": {1: "A-01-01-1"}},
        ],
    }
)  # fmt: skip


def test_hash_is_the_one_mosquitto_passwd_writes(tmp_path: Path) -> None:
    tool = shutil.which("mosquitto_passwd")
    assert tool is not None, "mosquitto_passwd comes with the mosquitto package"
    passwd = tmp_path / "passwd"
    run([tool, "-c", "-b", str(passwd), "alice", "s3cret pass"], check=True, timeout=30)
    encoded = passwd.read_text().strip().split(":", 1)[1]
    _, kind, rounds, salt, _ = encoded.split("$")
    assert (kind, rounds) == ("7", "101")
    import base64

    assert hash_password("s3cret pass", base64.b64decode(salt)) == encoded
    assert verify_password("s3cret pass", encoded)
    assert not verify_password("s3cret pasS", encoded)
    ours = hash_password("x")
    assert verify_password("x", ours) and ours != hash_password("x")  # fresh salt each time


def test_device_accounts_see_only_their_own_topics() -> None:
    accounts = {a.username: a for a in accounts_for(FLOOR)}
    assert set(accounts) == {"controller", "api", "drivers", "monitor", "dev-scan-a", "dev-ptl%3A1"}
    assert device_username("ptl:1") == "dev-ptl%3A1"  # ':' would end a passwd file name
    rules = {(r.access, r.topic) for r in accounts["dev-ptl%3A1"].rules}
    root = "wcs/v1/wh9/dev/ptl:1"
    assert rules == {
        ("write", f"{root}/evt/#"),
        ("write", f"{root}/status"),
        ("write", f"{root}/ack"),
        ("read", f"{root}/cmd/#"),
        # Every account may read the controllers' presence (PTL panels show it).
        ("read", "wcs/v1/wh9/controller/+/status"),
    }
    controller = {(r.access, r.topic) for r in accounts["controller"].rules}
    assert ("readwrite", "wcs/v1/wh9/controller/+/status") in controller
    assert ("read", "wcs/v1/wh9/dev/+/evt/#") in controller
    assert ("write", "wcs/v1/wh9/dev/+/cmd/#") in controller
    assert not any(r.access != "read" for r in accounts["monitor"].rules)
    text = acl_text(list(accounts.values()))
    assert "user dev-scan-a\ntopic write wcs/v1/wh9/dev/scan-a/evt/#\n" in text
    assert "pattern" not in text and "anonymous" not in text


def test_files_modes_and_kept_passwords(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    first = write_broker_config(FLOOR, out, BrokerOptions(persistence_dir=None))
    assert set(first.new_accounts) == {a.username for a in first.accounts}
    assert stat.S_IMODE((out / "credentials.json").stat().st_mode) == 0o600
    hashes = {}
    for name in ("passwd-services", "passwd-devices", "acl"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o640
    for name in ("passwd-services", "passwd-devices"):
        lines = dict(line.split(":", 1) for line in (out / name).read_text().splitlines())
        assert all(verify_password(first.passwords[user], h) for user, h in lines.items())
        hashes[name] = set(lines)
    # Device accounts can log in only where their client id is their name, services
    # only where devices cannot.
    assert hashes["passwd-devices"] == {"dev-scan-a", "dev-ptl%3A1"}
    assert hashes["passwd-services"] == {"controller", "api", "drivers", "monitor"}
    conf = (out / "mosquitto.conf").read_text()
    assert "persistence false" in conf and "per_listener_settings true" in conf
    blocks = conf.split("\nlistener ")[1:]
    assert [b.splitlines()[0] for b in blocks] == ["1883 0.0.0.0", "1884 0.0.0.0"]
    services, devices = (set(b.splitlines()) for b in blocks)
    for block, passwd in ((services, "passwd-services"), (devices, "passwd-devices")):
        assert {"allow_anonymous false", f"password_file {out}/{passwd}",
                f"acl_file {out}/acl"} <= block  # fmt: skip
    assert "use_username_as_clientid true" in devices
    assert "use_username_as_clientid true" not in services

    bigger = FLOOR.model_copy(
        update={"devices": [*FLOOR.devices, FLOOR.devices[0].model_copy(update={"id": "scan-b"})]}
    )
    second = write_broker_config(bigger, out, BrokerOptions(persistence_dir=None))
    assert second.new_accounts == ("dev-scan-b",)
    assert {k: second.passwords[k] for k in first.passwords} == dict(first.passwords)
    stored = json.loads((out / "credentials.json").read_text())
    assert stored["accounts"]["dev-scan-b"]["device"] == "scan-b"

    rotated = write_broker_config(bigger, out, BrokerOptions(persistence_dir=None), rotate=True)
    assert len(rotated.new_accounts) == len(rotated.accounts)
    assert rotated.passwords["controller"] != first.passwords["controller"]


def test_tls_listener_keeps_clear_text_on_loopback(tmp_path: Path) -> None:
    cert, key, ca = (tmp_path / n for n in ("c.pem", "k.pem", "ca.pem"))
    for path in (cert, key, ca):
        path.write_text("x")
    options = BrokerOptions(
        listener=Listener("0.0.0.0", 1883),
        tls=TlsFiles(cert, key, ca, require_certificate=True),
        tls_listener=Listener("0.0.0.0", 8883),
    )
    text = config_text(options, tmp_path)
    lines = text.splitlines()
    assert "listener 1883 127.0.0.1" in lines and "listener 8883 0.0.0.0" in lines
    assert "listener 1884 127.0.0.1" in lines and "listener 8884 0.0.0.0" in lines
    assert f"certfile {cert}" in lines and "require_certificate true" in lines
    device_tls = text.split("\nlistener 8884 0.0.0.0\n")[1]
    assert "use_username_as_clientid true" in device_tls and f"cafile {ca}" in device_tls
    with pytest.raises(ConfigError, match="cafile"):
        config_text(BrokerOptions(tls=TlsFiles(cert, key, None, True)), tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        write_broker_config(
            FLOOR, tmp_path / "o", BrokerOptions(tls=TlsFiles(cert, tmp_path / "no"))
        )


def test_cli_prints_new_credentials_once(tmp_path: Path) -> None:
    floor = tmp_path / "floor.yaml"
    floor.write_text(
        "site: wh9\ndevices:\n"
        "  - {id: scan-a, kind: scanner, zone: pick, link: {url: 'loop://'}}\n",
        encoding="utf-8",
    )
    out = tmp_path / "broker"
    args = ["broker-config", "--floor", str(floor), "--out", str(out), "--data-dir", "/tmp/q"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    printed = dict(line.split("\t") for line in first.stdout.splitlines())
    stored = json.loads((out / "credentials.json").read_text())["accounts"]
    assert set(printed) == set(stored) == {"controller", "api", "drivers", "monitor", "dev-scan-a"}
    password = stored["dev-scan-a"]["password"]
    assert printed["dev-scan-a"] == f"mqtt://dev-scan-a:{password}@127.0.0.1:1884"
    controller = stored["controller"]["password"]
    assert printed["controller"] == f"mqtt://controller:{controller}@127.0.0.1:1883"
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and again.stdout == ""  # nothing new: nothing printed
    bad = CliRunner().invoke(app, [*args, "--tls-cert", str(floor)])
    assert bad.exit_code == 2 and "go together" in bad.stderr


def test_written_as_root_the_files_belong_to_the_brokers_user(tmp_path: Path) -> None:
    """Mosquitto drops root before it reads the password and ACL files."""
    import os
    import pwd

    root = os.geteuid() == 0
    # Written by another user, the files stay theirs (the broker must run as them).
    broker = pwd.getpwnam("mosquitto") if root else pwd.getpwuid(os.geteuid())
    out = tmp_path / "broker"
    write_broker_config(FLOOR, out, BrokerOptions(persistence_dir=None))
    for name in ("passwd-services", "passwd-devices", "acl"):
        info = (out / name).stat()
        assert (info.st_uid, info.st_gid) == (broker.pw_uid, broker.pw_gid), name
        assert stat.S_IMODE(info.st_mode) == 0o640
    secrets = (out / "credentials.json").stat()
    assert secrets.st_uid == os.geteuid() and stat.S_IMODE(secrets.st_mode) == 0o600
    if root:
        options = BrokerOptions(persistence_dir=None, broker_user="nobody-x")
        with pytest.raises(ConfigError, match="does not exist"):
            write_broker_config(FLOOR, out, options)
