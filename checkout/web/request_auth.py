"""A signed request, verified once: the rate limiter's exemption of a signed callback and the
view ask the same question of the same request (the check itself: auth.py).
"""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from ..auth import Refusal, authenticate
from ..models import Merchant

AUTHENTICATED = "checkout.authenticated"  # in the request's environ: its answer


def authenticate_request(raw: bytes) -> Merchant | Refusal:
    """`authenticate` of this request's headers over `raw`, computed once per request: the
    rate limiter's exemption of a signed callback and the view ask the same question, and an
    HMAC-SHA512 over a body of up to 256 KiB is not asked for twice. Kept with the request
    (its environ: an app context, and so `g`, may outlive one request in tests) and with the
    bytes and headers it answers for, so other bytes are verified anew."""
    asked = (raw, request.headers.get("X-Processing-Key"),
             request.headers.get("X-Processing-Signature"))
    known: tuple[tuple[bytes, str | None, str | None], Merchant | Refusal] | None = (
        request.environ.get(AUTHENTICATED))
    if known is not None and known[0] == asked:
        return known[1]
    found = authenticate(*asked)
    request.environ[AUTHENTICATED] = (asked, found)
    return found


def refuse(refusal: Refusal) -> ResponseReturnValue:
    return jsonify(error=refusal.error, code=refusal.code), refusal.status
