"""Webhook signatures: HMAC-SHA256 over ``"<unix timestamp>." + body``.

The sender puts ``X-WCS-Signature: t=<unix>,v1=<hex>`` on the request. Signing the
timestamp together with the body means an attacker who captured one request cannot
replay it later: the receiver refuses timestamps outside a tolerance window, and the
timestamp cannot be changed without breaking the MAC.

Several ``v1=`` entries may appear (a sender rotating its secret signs with both);
the request is accepted when any of them matches any of the receiver's secrets.
The receiver must verify the raw body bytes exactly as received, before parsing.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable
from dataclasses import dataclass

from wcs.errors import SignatureInvalid

SIGNATURE_HEADER = "X-WCS-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300
# A header is a few hundred bytes; anything far larger is junk, refused before parsing.
_MAX_HEADER_LEN = 2048


@dataclass(frozen=True, slots=True)
class SignatureHeader:
    timestamp: int
    signatures: tuple[str, ...]


def _key(secret: str | bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    if not key:
        raise ValueError("webhook secret must not be empty")
    return key


def compute_signature(body: bytes, secret: str | bytes, timestamp: int) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>." + body``."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def sign(
    body: bytes,
    secret: str | bytes | Iterable[str | bytes],
    *,
    timestamp: int | None = None,
) -> str:
    """The ``X-WCS-Signature`` header value for ``body``; several secrets while rotating."""
    ts = int(time.time()) if timestamp is None else timestamp
    secrets = [secret] if isinstance(secret, str | bytes) else list(secret)
    if not secrets:
        raise ValueError("at least one webhook secret is needed to sign")
    parts = [f"t={ts}"] + [f"{SCHEME}={compute_signature(body, s, ts)}" for s in secrets]
    return ",".join(parts)


def parse_header(header: str | None) -> SignatureHeader:
    """Split ``t=..,v1=..`` into its parts; SignatureInvalid when it is not that shape."""
    if not header:
        raise SignatureInvalid(
            f"missing {SIGNATURE_HEADER} header", reason="missing", header=SIGNATURE_HEADER
        )
    if len(header) > _MAX_HEADER_LEN:
        raise SignatureInvalid(f"{SIGNATURE_HEADER} header is too long", reason="malformed")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureInvalid(
                f"{SIGNATURE_HEADER} header is malformed (expected t=<unix>,v1=<hex>)",
                reason="malformed",
            )
        if key == "t":
            if timestamp is not None or not value.isascii() or not value.isdigit():
                raise SignatureInvalid(
                    f"{SIGNATURE_HEADER} header has a bad timestamp", reason="malformed"
                )
            timestamp = int(value)
        elif key == SCHEME:
            if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
                raise SignatureInvalid(
                    f"{SIGNATURE_HEADER} header has a bad {SCHEME} signature", reason="malformed"
                )
            signatures.append(value)
        # Unknown schemes are skipped so a sender can add a newer one alongside v1.
    if timestamp is None or not signatures:
        raise SignatureInvalid(
            f"{SIGNATURE_HEADER} header needs both t= and {SCHEME}=", reason="malformed"
        )
    return SignatureHeader(timestamp, tuple(signatures))


def verify(
    body: bytes,
    header: str | None,
    secret: str | bytes | Iterable[str | bytes],
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> int:
    """Check the header against ``body``; return its timestamp or raise SignatureInvalid.

    ``secret`` may be several secrets while one is being rotated out. The tolerance
    applies both ways so a sender whose clock runs ahead cannot mint far-future
    signatures that stay valid for long.
    """
    secrets = [secret] if isinstance(secret, str | bytes) else list(secret)
    if not secrets:
        raise ValueError("at least one webhook secret is needed to verify")
    parsed = parse_header(header)
    current = time.time() if now is None else now
    age = current - parsed.timestamp
    if abs(age) > tolerance_s:
        raise SignatureInvalid(
            f"webhook signature timestamp is {age:+.0f} s from now, outside ±{tolerance_s} s "
            "(replayed request, or a clock is wrong)",
            reason="stale",
            age_s=age,
        )
    # Compare against every candidate without stopping early, so timing says nothing
    # about which secret or which signature came close.
    matched = False
    for candidate_secret in secrets:
        expected = compute_signature(body, candidate_secret, parsed.timestamp)
        for given in parsed.signatures:
            matched |= hmac.compare_digest(expected, given)
    if not matched:
        raise SignatureInvalid(
            "webhook signature does not match the body (wrong secret or altered body)",
            reason="mismatch",
        )
    return parsed.timestamp
