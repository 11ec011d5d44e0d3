"""Passwords and PINs as argon2id hashes (argon2-cffi's defaults, which follow RFC 9106).

A PIN is short, so its hash alone would not stop a guesser with the database: the agents' line
also ends a call after three wrong PINs, and a PIN only works from the agent's own number.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
MIN_PASSWORD = 8
PIN_LENGTHS = range(4, 9)


def hash_secret(secret: str) -> str:
    return _HASHER.hash(secret)


def verify_secret(stored: str | None, secret: str) -> bool:
    """True if ``secret`` matches the stored hash; False for no hash or a damaged one."""
    if not stored:
        return False
    try:
        return _HASHER.verify(stored, secret)
    except (VerificationError, InvalidHashError):
        return False
