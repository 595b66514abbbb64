"""The app-wide error answers: each route's errors in its own audience's shape.

One rule says who reads an answer (`for_machines`): under the machine prefixes a program
does, elsewhere a person. Under /api/v2/ every error is JSON in the processor's shape, those
no view of the API met included (a path no rule matches, a method it does not take, a body
over the limit, a 500): a shop's CoinsPaid client never reads an HTML page. Customers get
HTML pages. The other machine routes (callbacks, the sandbox) answer for themselves, but for
a 429 (any route's rate limit, ratelimit.py), which is JSON for every machine.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException, TooManyRequests

from .. import text
from . import customer, inputs, merchant_api, ratelimit
from .console import errors as console_errors

# What a customer route can meet outside its views; other codes keep Werkzeug's answer.
CUSTOMER_CODES = frozenset({404, 405, 413, 500})


def for_machines(path: str) -> bool:
    """Whether a program reads this route's answers (JSON), not a person (HTML)."""
    return path.startswith(inputs.MACHINE_PREFIXES)


def http_error(exc: HTTPException) -> ResponseReturnValue:
    if merchant_api.is_api_path(request.path):
        return merchant_api.http_error(exc)
    if for_machines(request.path):
        if isinstance(exc, text.BadText):
            return jsonify(errors={exc.field: exc.description}), 400
        return exc
    if console_errors.handles(exc):
        return console_errors.page(exc)
    if isinstance(exc, text.BadText):
        return customer.error_page(400, _("This request has an unreadable %(field)s. Please go "
                                       "back and try again.", field=exc.field))
    if exc.code in CUSTOMER_CODES:
        return customer.customer_error(exc)
    return exc


def too_many(exc: TooManyRequests) -> Response:
    """429 with Retry-After: JSON in CoinsPaid's error shape for machines, HTML for people."""
    if for_machines(request.path):
        response = jsonify(error="Too many requests", code="too_many_requests")
        response.status_code = 429
    else:
        response = customer.error_page(429, _("Too many requests from your network just now. "
                                          "Please wait a moment and try again."))
    response.headers["Retry-After"] = str(ratelimit.seconds_to_wait(exc))
    return response


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, http_error)
    # By its code: found before a blueprint's handler of every Exception (merchant_api.py's 500).
    app.register_error_handler(429, too_many)
