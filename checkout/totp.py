"""The second factor: TOTP (RFC 6238: SHA-1, 6 digits, 30 s), as every authenticator app
reads it, and one-time recovery codes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

import pyotp

from .clock import unix

ISSUER = "Checkout back office"
STEP = 30
# A code from the step before or after is accepted too: phones' clocks drift.
WINDOW = 1
RECOVERY_CODES = 10


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str, issuer: str = ISSUER) -> str:
    """The otpauth:// URI an authenticator app reads from the enrolment QR."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def grouped(secret: str) -> str:
    """The secret as text to type, in groups of four."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def accepted_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The time step `code` belongs to, if it is right now and newer than `last_step` (a code
    is good once); None otherwise."""
    code = code.replace(" ", "").strip()
    # ASCII digits only: "١٢٣٤٥٦" is digits to str.isdigit, and no code (nor comparable).
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = unix(now) // STEP
    for step in range(current - WINDOW, current + WINDOW + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.at(step * STEP), code):
            return step
    return None


def code_at(secret: str, now: datetime) -> str:
    """The code an authenticator shows at `now` (tests and the sandbox's demo)."""
    return pyotp.TOTP(secret).at(unix(now))


def code_of_step(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).at(step * STEP)


def new_recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    """Codes as shown once: ten lower-case letters and digits in two groups of five."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(alphabet) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def recovery_digest(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").replace(" ", "").lower().encode()).hexdigest()
