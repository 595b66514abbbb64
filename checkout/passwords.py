"""Back-office passwords, hashed with argon2id (argon2-cffi's defaults, RFC 9106's second
recommended parameter set)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
# Verified when no account matches, so that a wrong email costs what a wrong password does.
_DUMMY = _HASHER.hash("checkout: no such account")

MINIMUM_LENGTH = 12
MAXIMUM_LENGTH = 256


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored`; with nothing stored, as slow and always False."""
    try:
        if stored is None:
            _HASHER.verify(_DUMMY, password + "\x00")
            return False
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)
