"""A signed request, verified once: the rate limiter's exemption of a signed callback and the
view ask the same question of the same request (the check itself: auth.py).
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from ..auth import Refusal, authenticate
from ..models import Merchant

AUTHENTICATED = "checkout.authenticated"  # in the request's environ: its answer


def authenticate_request(raw: bytes) -> Merchant | Refusal:
    """`authenticate` of this request's headers over `raw`, computed once per request: the
    rate limiter's exemption of a signed callback and the view ask the same question, and an
    HMAC-SHA512 over a body of up to 256 KiB is not asked for twice."""
    return authenticated(request.environ, raw)


def authenticated(environ: dict[str, Any], raw: bytes) -> Merchant | Refusal:
    """`authenticate_request` from a request's WSGI environ, for code in front of Flask
    (callback_front.py), whose answer the route then finds. Kept in the environ (an app
    context, and so `g`, may outlive one request in tests) with the bytes and headers it
    answers for, so other bytes are verified anew."""
    asked = (raw, environ.get("HTTP_X_PROCESSING_KEY"),
             environ.get("HTTP_X_PROCESSING_SIGNATURE"))
    known: tuple[tuple[bytes, str | None, str | None], Merchant | Refusal] | None = (
        environ.get(AUTHENTICATED))
    if known is not None and known[0] == asked:
        return known[1]
    found = authenticate(*asked)
    environ[AUTHENTICATED] = (asked, found)
    return found


def refuse(refusal: Refusal) -> ResponseReturnValue:
    return jsonify(error=refusal.error, code=refusal.code), refusal.status
