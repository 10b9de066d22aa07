"""Test certificates made with openssl: a private CA, a server certificate for
127.0.0.1 and a client certificate signed by that CA."""

from __future__ import annotations

import shutil
from pathlib import Path

from wcs.children import run


def certificates(tmp: Path, *, client: str = "controller") -> dict[str, Path]:
    """PEM files ``ca``, ``ca-key``, ``server``, ``server-key``, ``client`` and
    ``client-key`` under ``tmp``; the client certificate's common name is ``client``."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl makes the test certificates"

    def openssl_run(*args: str) -> None:
        run([openssl, *args], check=True, capture_output=True, timeout=60)

    files = {n: tmp / f"{n}.pem" for n in ("ca", "ca-key", "server", "server-key",
                                            "client", "client-key")}  # fmt: skip
    openssl_run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", "/CN=wcs test CA", "-keyout", str(files["ca-key"]),
                "-out", str(files["ca"]))  # fmt: skip
    for name, subject, extra in (
        ("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1"),
        ("client", f"/CN={client}", "extendedKeyUsage=clientAuth"),
    ):
        csr = tmp / f"{name}.csr"
        ext = tmp / f"{name}.ext"
        ext.write_text(extra + "\n")
        openssl_run("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
                    "-keyout", str(files[f"{name}-key"]), "-out", str(csr))  # fmt: skip
        openssl_run("x509", "-req", "-in", str(csr), "-CA", str(files["ca"]), "-CAkey",
                    str(files["ca-key"]), "-CAcreateserial", "-days", "2", "-extfile",
                    str(ext), "-out", str(files[name]))  # fmt: skip
    return files
