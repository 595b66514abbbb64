"""HMAC-SHA512 over exact bytes, lowercase hex: the processor's one signing scheme.

Requests, callbacks and Payment Terminal links all use it, on the site's side and on the
embedded sandbox's.
"""

from __future__ import annotations

import hashlib
import hmac


def sign(body: bytes, secret: str) -> str:
    """Hex HMAC-SHA512 of `body` keyed with `secret` (UTF-8)."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha512).hexdigest()


def verify(body: bytes, secret: str, signature: str | None) -> bool:
    """Constant-time check of a received signature against the raw body bytes."""
    if not signature:
        return False
    expected = sign(body, secret)
    # compare_digest on ASCII-only str; anything else is simply wrong.
    try:
        return hmac.compare_digest(expected, signature.strip().lower())
    except TypeError:
        return False
