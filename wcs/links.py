"""Signed, expiring, single-purpose links for customers (no account needed).

A link carries its purpose, the order it is about and an id of its own, signed with
``WCS_LINK_SECRET`` by ``itsdangerous`` (HMAC-SHA256 over the payload and the time it
was made, the purpose as the salt: a link made for one purpose never verifies for
another). Reading a link says exactly why it is refused: changed or cut off, made
for something else, expired; whether a single-use link was used is the database's
to say (``link_uses``), since a signature cannot be taken back.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Literal

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode

from wcs.errors import WcsError

Purpose = Literal["backorder", "receipt", "return", "label", "resolution", "proof"]

# How long each kind of link works, from when it was made.
LIFETIME: Mapping[Purpose, timedelta] = MappingProxyType(
    {
        "backorder": timedelta(days=14),
        "receipt": timedelta(days=30),
        "return": timedelta(days=30),
        "label": timedelta(days=30),
        "resolution": timedelta(days=60),
        "proof": timedelta(hours=1),
    }
)
# Links that act once; the others may be opened again while they last.
SINGLE_USE: frozenset[Purpose] = frozenset({"backorder", "receipt", "return", "resolution"})

Refusal = Literal["tampered", "expired", "used"]


class LinkRefused(WcsError):
    """A link that cannot be honoured; ``why`` is what the page tells the customer."""

    code = "link_refused"

    def __init__(self, message: str, why: Refusal) -> None:
        super().__init__(message, why=why)
        self.why = why


@dataclass(frozen=True, slots=True)
class Link:
    purpose: Purpose
    order_id: str
    link_id: str
    # Whatever the purpose needs besides the order (a return id, a tracking number).
    ref: str | None
    issued_at: float


class Links:
    """Makes and reads links with one secret; ``clock`` (seconds) is for tests."""

    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._clock = clock

    def _serializer(self, purpose: Purpose) -> URLSafeTimedSerializer:
        clock = self._clock

        class Signer(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock())

        return URLSafeTimedSerializer(
            self._secret,
            salt=f"wcs-link:{purpose}",
            signer=Signer,
            signer_kwargs={"digest_method": hashlib.sha256},
        )

    def make(self, purpose: Purpose, order_id: str, ref: str | None = None) -> str:
        payload = {"o": order_id, "i": secrets.token_urlsafe(12)}
        if ref is not None:
            payload["r"] = ref
        return str(self._serializer(purpose).dumps(payload))

    def read(self, purpose: Purpose, token: str) -> Link:
        serializer = self._serializer(purpose)
        max_age = int(LIFETIME[purpose].total_seconds())
        try:
            payload, issued = serializer.loads(token, max_age=max_age, return_timestamp=True)
        except SignatureExpired as exc:
            raise LinkRefused(f"the {purpose} link has expired", "expired") from exc
        except BadSignature as exc:
            raise LinkRefused(f"the {purpose} link is not valid", "tampered") from exc
        # The signature's last base64 character carries bits the decoder drops: a
        # link whose last character was changed would still verify. Only the one
        # spelling of the signature is the link.
        signature = token.rpartition(".")[2]
        if base64_encode(base64_decode(signature)).decode() != signature:
            raise LinkRefused(f"the {purpose} link is not valid", "tampered")
        data: dict[str, Any] = payload if isinstance(payload, dict) else {}
        order_id, link_id = data.get("o"), data.get("i")
        if not isinstance(order_id, str) or not isinstance(link_id, str):
            raise LinkRefused(f"the {purpose} link is not valid", "tampered")
        ref = data.get("r")
        return Link(
            purpose, order_id, link_id, ref if isinstance(ref, str) else None, issued.timestamp()
        )
