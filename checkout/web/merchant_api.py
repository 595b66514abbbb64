"""The merchant API at /api/v2: CoinsPaid's `invoices/create` and `invoices/{foreign_id}/cancel/`.

A shop that speaks to CoinsPaid changes only its base URL: the same signed headers over the
same bytes, the same `{"data": ...}` answers, the same error shapes (coinspaid-api.md §1,
§2.11, §2.12). This blueprint speaks HTTP only: `invoice_wire` reads the fields in the processor's
words, `services/invoices` does the work. Every answer is
JSON, errors included: no HTML page ever reaches a shop's client.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Flask, Response, request
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import HTTPException
from werkzeug.routing import PathConverter

from .. import auth, db, processor, text
from ..models import Merchant
from ..services import invoices
from ..text import NotText
from . import invoice_wire, ratelimit

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api/v2")

# An invoice request is a few hundred bytes; the bound keeps a hostile body from being
# buffered and hashed in full before it is refused.
MAX_BODY = 64 * 1024
_EVERY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class ForeignIdConverter(PathConverter):
    """Any text, slashes included, even leading ones: a foreign_id is the shop's."""

    regex = r"[\s\S]+?"  # line breaks too ("." misses them: then no route matched)
    part_isolating = False


@bp.record_once
def _register_converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters.setdefault("shop_foreign_id", ForeignIdConverter)


def _json(body: Any, status: int = 200) -> Response:
    # Compact, in our key order (jsonify would sort the keys).
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return Response(text, status=status, mimetype="application/json")


def _refusal(refusal: auth.Refusal) -> Response:
    return _json({"error": refusal.error, "code": refusal.code}, refusal.status)


def _errors(errors: dict[str, Any], status: int = 400) -> Response:
    return _json({"errors": errors}, status)


def _caller() -> tuple[Merchant, dict[str, Any]] | Response:
    """Content format first, then the key and the signature over the exact raw bytes, then
    whether every string is text (a validation error, as the processor orders them)."""
    request.max_content_length = MAX_BODY  # a longer body: 413 (inputs.py, errors.py)
    raw = request.get_data(cache=True, parse_form_data=False)
    not_text: NotText | None = None
    try:
        params = auth.parse_params(raw) if request.mimetype == "application/json" else None
    except NotText as exc:
        params, not_text = {}, exc
    if params is None:
        return _refusal(auth.BAD_CONTENT)
    # Refused authentications count per client address too (the API limit counts per key,
    # and a bot makes a new key up for every call): past the limit, no key is looked up.
    ratelimit.refused_too_often("api")
    merchant = auth.authenticate(raw, request.headers.get("X-Processing-Key"),
                                 request.headers.get("X-Processing-Signature"))
    if isinstance(merchant, auth.Refusal):
        log.info("api request refused: %s", merchant.code)
        ratelimit.count_refusal("api")
        return _refusal(merchant)
    if not_text is not None:
        return bad_text(not_text.field)
    return merchant, params


@bp.post("/invoices/create")
def invoices_create() -> Response:
    caller = _caller()
    if isinstance(caller, Response):
        return caller
    merchant, params = caller
    session = db.session()
    try:
        req = invoice_wire.validate(session, merchant, params)
        made = invoices.open_invoice(merchant, req)
    except invoices.InvalidRequest as exc:
        return _errors(exc.errors, exc.status)
    except processor.ProcessorError as exc:
        # Type 3, the processor did not answer the quote. open_invoice keeps an invoice whose
        # quote may exist (the page completes it); one that surely does not, it removes.
        log.warning("invoices/create for merchant %s: quote failed (%s)", merchant.client_id,
                    type(exc).__name__)
        return _json({"error": "The processor is unavailable. Please try again.",
                      "code": "processor_unavailable"}, 503)
    log.info("invoice %s created for merchant %s", made.invoice.id, merchant.client_id)
    return _json({"data": invoices.answer(made.invoice, made.current)})


# merge_slashes off: a foreign_id "/7" or "a//b" is a different invoice than "7" or "a/b".
@bp.post("/invoices/<shop_foreign_id:foreign_id>/cancel/", merge_slashes=False)
def invoices_cancel(foreign_id: str) -> Response:
    caller = _caller()
    if isinstance(caller, Response):
        return caller
    merchant, _ = caller
    try:
        invoice_wire.check_foreign_id(foreign_id)
        invoices.cancel(merchant, foreign_id)
    except invoices.InvalidRequest as exc:
        return _errors(exc.errors, exc.status)
    except invoices.UnknownInvoice:
        return _errors(invoice_wire.UNKNOWN_FOREIGN_ID, 404)
    except invoices.WrongState:
        return _errors(dict(invoice_wire.WRONG_STATE))
    return _json([])


@bp.route("/", methods=_EVERY_METHOD, defaults={"path": ""}, merge_slashes=False,
          strict_slashes=False)
@bp.route("/<path:path>", methods=_EVERY_METHOD, merge_slashes=False)
def invalid_url(path: str) -> Response:
    """No such endpoint (or not with this method): "No key header", as the processor says."""
    del path
    return _refusal(auth.NO_KEY)


def is_api_path(path: str) -> bool:
    return path.startswith(bp.url_prefix + "/") if bp.url_prefix else False


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    """Every error under /api/v2/ in the processor's shape (errors.py sends those that no
    view of this blueprint met: a path no rule matches, a body over the limit)."""
    if isinstance(exc, text.BadText):
        return bad_text(exc.field)
    if exc.code == 500:
        return server_error(getattr(exc, "original_exception", None) or exc)
    return _json({"error": exc.name, "code": (exc.name or "error").lower().replace(" ", "_")},
                 exc.code or 500)


@bp.errorhandler(Exception)
def server_error(exc: Exception) -> Response:
    log.exception("api: unexpected error", exc_info=exc)
    return _json({"error": "Server error", "code": "server_error"}, 500)


def bad_text(field: str) -> Response:
    return _errors({field: text.message(field)})


def init_app(app: Flask) -> None:
    """Register the API (exempt from CSRF: every request is signed instead)."""
    app.register_blueprint(bp)
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(bp)
