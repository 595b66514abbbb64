"""The app-wide error answers: each route's errors in its own audience's shape.

Under /api/v2/ every error is JSON in the processor's shape, those no view of the API met
included (a path no rule matches, a method it does not take, a body over the limit, a 500):
a shop's CoinsPaid client never reads an HTML page. Customers get HTML pages. The other
machine routes (callbacks, the sandbox) answer for themselves.
"""

from __future__ import annotations

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from . import api, inputs, pages, text

# What a customer route can meet outside its views; other codes keep Werkzeug's answer.
CUSTOMER_CODES = frozenset({404, 405, 413, 500})


def http_error(exc: HTTPException) -> ResponseReturnValue:
    if api.is_api_path(request.path):
        return api.http_error(exc)
    if request.path.startswith(inputs.MACHINE_PREFIXES):
        if isinstance(exc, text.BadText):
            return jsonify(errors={exc.field: exc.description}), 400
        return exc
    if isinstance(exc, text.BadText):
        return pages.error_page(400, _("This request has an unreadable %(field)s. Please go "
                                       "back and try again.", field=exc.field))
    if exc.code in CUSTOMER_CODES:
        return pages.customer_error(exc)
    return exc


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, http_error)
