"""Our database connections over TLS with a private CA and a client certificate,
given as libpq's parameters in WCS_DATABASE_URL, against a PostgreSQL server that
takes TLS connections only and authenticates them by certificate."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.certificates import certificates
from wcs.persistence.db import make_engine
from wcs.persistence.private_postgres import SUPERUSER, PrivatePostgres, ServerTls
from wcs.persistence.readiness import DatabaseNotReady, check_database
from wcs.settings import Settings


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Path]]]:
    # cert authentication maps the client certificate's common name to the user
    files = certificates(tmp_path_factory.mktemp("pki"), client=SUPERUSER)
    tls = ServerTls(files["server"], files["server-key"], files["ca"])
    with PrivatePostgres(tls=tls) as pg:
        yield pg.url, files


async def _ssl_in_use(url: str) -> bool:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            query = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            return bool(await conn.scalar(text(query)))
    finally:
        await engine.dispose()


def _url(base: str, **params: Path | str) -> str:
    return base + "?" + "&".join(f"{k}={v}" for k, v in params.items())


async def test_tls_with_a_private_ca_and_a_client_certificate(
    tls_server: tuple[str, dict[str, Path]],
) -> None:
    base, files = tls_server
    url = Settings(
        database_url=_url(base, sslmode="verify-full", sslrootcert=files["ca"],
                          sslcert=files["client"], sslkey=files["client-key"]),
    ).database_url  # fmt: skip
    assert await _ssl_in_use(url)
    # The files alone mean verify-full; the readiness check every process makes first
    # connects the same way (and finds no schema in this empty database).
    alone = _url(base, sslrootcert=files["ca"], sslcert=files["client"], sslkey=files["client-key"])
    assert await _ssl_in_use(alone)
    with pytest.raises(DatabaseNotReady, match="has no schema yet"):
        await check_database(alone)


@pytest.mark.parametrize(
    ("params", "refusal"),
    [
        ({}, "no encryption"),  # clear text: the server takes TLS only
        ({"sslmode": "verify-full", "sslrootcert": "ca"}, "requires a valid client certificate"),
        # the server's certificate is not signed by a CA the system trusts
        ({"sslmode": "verify-full", "sslcert": "client", "sslkey": "client-key"},
         "certificate verify failed"),
    ],
)  # fmt: skip
async def test_without_tls_the_ca_or_the_certificate_no_connection(
    tls_server: tuple[str, dict[str, Path]], params: dict[str, str], refusal: str
) -> None:
    base, files = tls_server
    url = _url(base, **{k: files[v] if k != "sslmode" else v for k, v in params.items()})
    with pytest.raises((DBAPIError, ssl.SSLError), match=refusal):
        await asyncio.wait_for(_ssl_in_use(url if params else base), 20)


def test_tls_files_are_checked_when_the_settings_are_read(tmp_path: Path) -> None:
    pem = tmp_path / "x.pem"
    pem.write_text("x")
    base = "postgresql://wcs@db/wcs"
    for url, message in (
        (f"{base}?sslcert={pem}", "sslcert and sslkey go together"),
        (f"{base}?sslrootcert={tmp_path / 'no.pem'}", "sslrootcert=.* is not a readable file"),
    ):
        with pytest.raises(ValidationError, match=message):
            Settings(database_url=url)
