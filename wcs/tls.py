"""TLS for the connections we open: the one place their ``ssl.SSLContext`` is made.

Every client of ours (the broker, PostgreSQL, the carrier's API, the SMS webhook, the
SMTP server) checks the server's certificate against a CA file when one is given (a
private CA) or the system's trust store, and presents our client certificate when the
settings name one. ``ClientTls.check`` reads the files when the settings are read, so
a wrong path or a file that is not what it should be is one line naming the setting
at start, not a traceback at the first connection.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from pathlib import Path


def client_context(
    ca_file: Path | str | None = None,
    cert_file: Path | str | None = None,
    key_file: Path | str | None = None,
) -> ssl.SSLContext:
    """A client's TLS context: the server's certificate and name checked against
    ``ca_file`` (the system's trust store when None), ``cert_file`` and ``key_file``
    our certificate for servers that ask for one (the key may be in ``cert_file``)."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    if cert_file is not None:
        context.load_cert_chain(str(cert_file), str(key_file) if key_file is not None else None)
    return context


@dataclass(frozen=True, slots=True)
class ClientTls:
    """The TLS files of one kind of connection, named by ``setting`` (the variables'
    common prefix, e.g. ``WCS_CARRIER``: ``WCS_CARRIER_CA_FILE``, ``..._CERT_FILE``,
    ``..._KEY_FILE``)."""

    setting: str
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @property
    def given(self) -> dict[str, Path]:
        """The files set, by variable name."""
        files = {
            f"{self.setting}_CA_FILE": self.ca_file,
            f"{self.setting}_CERT_FILE": self.cert_file,
            f"{self.setting}_KEY_FILE": self.key_file,
        }
        return {name: path for name, path in files.items() if path is not None}

    def context(self) -> ssl.SSLContext | None:
        """The context for these files; None without any (the library's own default,
        which checks the server against the system's trust store)."""
        if not self.given:
            return None
        return client_context(self.ca_file, self.cert_file, self.key_file)

    def check(self) -> None:
        """Raise ValueError, one line naming the variable, unless every file given can
        be read and is what it should be (a CA in PEM, a certificate and its key)."""
        cert, key = f"{self.setting}_CERT_FILE", f"{self.setting}_KEY_FILE"
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError(f"{cert} and {key} go together")
        for name, path in self.given.items():
            if not path.is_file():
                raise ValueError(f"{name}: {path} is not a readable file")
        if self.ca_file is not None:
            try:
                ssl.create_default_context(cafile=str(self.ca_file))
            except (ssl.SSLError, OSError) as exc:
                raise ValueError(
                    f"{self.setting}_CA_FILE: {self.ca_file} holds no PEM certificate ({_why(exc)})"
                ) from None
        if self.cert_file is not None:
            try:
                client_context(None, self.cert_file, self.key_file)
            except (ssl.SSLError, OSError) as exc:
                raise ValueError(
                    f"{cert} and {key}: {self.cert_file} and {self.key_file} are not a PEM "
                    f"certificate and its private key ({_why(exc)})"
                ) from None


def _why(exc: BaseException) -> str:
    """OpenSSL's reason in words (``KEY_VALUES_MISMATCH`` -> key values mismatch)."""
    reason = getattr(exc, "reason", None)
    if reason:
        return str(reason).lower().replace("_", " ")
    text = str(getattr(exc, "strerror", None) or exc)
    text = re.sub(r"^\[\w+\]\s*|\s*\(_ssl\.c:\d+\)$", "", text)
    return "unreadable PEM" if text == "PEM lib" else text
