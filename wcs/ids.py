"""Identifiers: time-ordered, URL- and topic-safe, generated without coordination."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _b32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """``prefix`` + 10 chars of milliseconds + 10 random chars; sorts by creation time."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(7), "big") >> 6  # 50 bits
    return f"{prefix}{_b32(millis, 10)}{_b32(rand, 10)}"
