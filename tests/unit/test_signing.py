"""Webhook signatures: HMAC-SHA256 over timestamp + body, with a replay window."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from wcs.carriers.signing import (
    DEFAULT_TOLERANCE_S,
    compute_signature,
    parse_header,
    sign,
    verify,
)
from wcs.errors import Forbidden, SignatureInvalid

SECRET = "whsec-test-1"
BODY = b'{"tracking_no":"FC1","status":"delivered"}'
NOW = 1_760_000_000


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert compute_signature(BODY, SECRET, NOW) == expected
    assert sign(BODY, SECRET, timestamp=NOW) == f"t={NOW},v1={expected}"


def test_valid_signature_verifies_and_returns_its_timestamp() -> None:
    header = sign(BODY, SECRET, timestamp=NOW)
    assert verify(BODY, header, SECRET, now=NOW + 10) == NOW


def test_tampered_body_is_refused() -> None:
    header = sign(BODY, SECRET, timestamp=NOW)
    with pytest.raises(SignatureInvalid, match="does not match") as caught:
        verify(BODY.replace(b"delivered", b"cancelled"), header, SECRET, now=NOW)
    assert caught.value.context["reason"] == "mismatch"


def test_wrong_secret_is_refused() -> None:
    header = sign(BODY, "another-secret", timestamp=NOW)
    with pytest.raises(SignatureInvalid, match="wrong secret"):
        verify(BODY, header, SECRET, now=NOW)


def test_changed_timestamp_breaks_the_signature() -> None:
    signature = compute_signature(BODY, SECRET, NOW)
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify(BODY, f"t={NOW + 1},v1={signature}", SECRET, now=NOW)


@pytest.mark.parametrize("offset", [DEFAULT_TOLERANCE_S + 1, -(DEFAULT_TOLERANCE_S + 1), 86_400])
def test_stale_or_future_timestamp_is_refused(offset: int) -> None:
    header = sign(BODY, SECRET, timestamp=NOW)
    with pytest.raises(SignatureInvalid, match="outside") as caught:
        verify(BODY, header, SECRET, now=NOW + offset)
    assert caught.value.context["reason"] == "stale"


def test_edge_of_the_window_still_verifies() -> None:
    header = sign(BODY, SECRET, timestamp=NOW)
    assert verify(BODY, header, SECRET, now=NOW + DEFAULT_TOLERANCE_S) == NOW
    assert verify(BODY, header, SECRET, now=NOW + 30, tolerance_s=30) == NOW
    with pytest.raises(SignatureInvalid):
        verify(BODY, header, SECRET, now=NOW + 31, tolerance_s=30)


GOOD_SIG = "a" * 64


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        f"v1={GOOD_SIG}",  # no timestamp
        f"t={NOW}",  # no signature
        f"t=abc,v1={GOOD_SIG}",
        f"t=-5,v1={GOOD_SIG}",
        f"t={NOW},t={NOW},v1={GOOD_SIG}",
        f"t={NOW},v1=nothex",
        f"t={NOW},v1={'A' * 64}",  # upper-case hex is not what we emit
        f"t={NOW},v1={GOOD_SIG[:-1]}",
        f"t={NOW},v1={GOOD_SIG}," + "x=" + "y" * 3000,
        f"t=١٢٣,v1={GOOD_SIG}",  # non-ASCII digits must not parse as a time
    ],
)
def test_malformed_header_is_refused(header: str | None) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        verify(BODY, header, SECRET, now=NOW)
    assert caught.value.context["reason"] in {"missing", "malformed"}


def test_signature_errors_are_forbidden_in_the_error_tree() -> None:
    assert issubclass(SignatureInvalid, Forbidden)


def test_unknown_schemes_are_ignored_beside_v1() -> None:
    header = sign(BODY, SECRET, timestamp=NOW) + ",v0=deadbeef"
    assert parse_header(header).signatures == (compute_signature(BODY, SECRET, NOW),)
    assert verify(BODY, header, SECRET, now=NOW) == NOW


def test_secret_rotation_old_and_new_secret_both_accepted() -> None:
    header = sign(BODY, ["new-secret", "old-secret"], timestamp=NOW)
    assert verify(BODY, header, "old-secret", now=NOW) == NOW
    assert verify(BODY, header, ["new-secret"], now=NOW) == NOW
    single = sign(BODY, "old-secret", timestamp=NOW)
    assert verify(BODY, single, ["new-secret", "old-secret"], now=NOW) == NOW
    with pytest.raises(SignatureInvalid):
        verify(BODY, single, ["new-secret"], now=NOW)


def test_empty_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        sign(BODY, "", timestamp=NOW)
    with pytest.raises(ValueError, match="at least one"):
        verify(BODY, sign(BODY, SECRET, timestamp=NOW), [], now=NOW)
