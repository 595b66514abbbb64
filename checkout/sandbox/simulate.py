"""Sandbox-only controls outside the API: a payer sending coins, the clock, the hosted invoice.

These stand in for the world around a processor (the blockchain, time passing, the
payer's browser); they need no API key, and exist only where the sandbox is mounted.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, render_template, request
from sqlalchemy import select

from checkout.wire import decimals, jsontext

from . import addresses, clock, currencies, invoices, operations, outbox, payloads, store
from .protocol import ApiError, validation_error

bp = Blueprint("sandbox_world", __name__, url_prefix="/sandbox", template_folder="templates")
STATUSES = ("not_confirmed", "confirmed", "cancelled")
MAX_ADVANCE = 400 * 24 * 3600


@bp.errorhandler(ApiError)
def _api_error(error: ApiError) -> Response:
    return error.response()


def _json_object() -> dict[str, Any]:
    try:
        body = jsontext.loads(request.get_data())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, {"errors": {"body": "The body must be a JSON object."}}) from exc
    if not isinstance(body, dict):
        raise ApiError(400, {"errors": {"body": "The body must be a JSON object."}})
    return body


def _json(data: Any, status: int = 200) -> Response:
    return Response(jsontext.dumps(data), status=status, mimetype="application/json")


def _tag(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and len(value) <= 64:
        return value
    raise validation_error({"tag": "The tag must be a string or a whole number."})


@bp.post("/simulate/payment")
def simulate_payment() -> Response:
    """A payer sends `amount` to `address` (with `tag` for XRP)."""
    body = _json_object()
    errors: dict[str, str] = {}
    address = body.get("address")
    if not isinstance(address, str) or not address.strip() or len(address) > 128:
        errors["address"] = "The address field is required."
    try:
        amount = decimals.parse_amount(body.get("amount"), currencies.PLACES)
    except decimals.AmountError as exc:
        errors["amount"] = f"The amount is invalid: {exc}."
    status = body.get("status", "not_confirmed")
    if status not in STATUSES:
        errors["status"] = "The status must be one of " + ", ".join(STATUSES) + "."
    tag = _tag(body.get("tag"))
    if errors:
        raise validation_error(errors)
    assert isinstance(address, str)
    with store.transaction() as session:
        row = addresses.find(session, address.strip(), tag)
        if row is None:
            what = "address and tag" if tag is not None else "address"
            raise ApiError(404, {"errors": {"address": f"Unknown {what}."}})
        now = clock.now(session)
        op = operations.receive(session, row, amount, str(status), now, outbox.notify_url())
        return _json(payloads.build(session, op), 201)


@bp.post("/simulate/invoice-currency")
def simulate_invoice_currency() -> Response:
    """The payer picks a currency on the hosted page of a type 1 or 2 invoice."""
    body = _json_object()
    sender = currencies.get(body.get("currency"))
    invoice_id = body.get("id")
    errors = {}
    if sender is None or not sender.is_crypto:
        errors["currency"] = "The selected currency is invalid."
    if not isinstance(invoice_id, int) or isinstance(invoice_id, bool):
        errors["id"] = "The id must be an integer."
    if errors:
        raise validation_error(errors)
    assert sender is not None
    with store.transaction() as session:
        op = session.get(store.Operation, invoice_id)
        if op is None or op.type != "invoice":
            raise ApiError(404, {"errors": {"id": "The selected id is invalid."}})
        invoice = session.get(store.Invoice, op.id)
        assert invoice is not None
        if not currencies.is_pair(sender, currencies.BY_CODE[invoice.currency]) and \
                sender.code != invoice.currency:
            raise validation_error({"currency": "Exchange is unavailable for given currencies"})
        now = clock.now(session)
        invoices.choose_currency(session, op, sender, now)
        return _json({"data": invoices.response(session, op, request.host_url.rstrip("/"),
                                                now)})


@bp.route("/clock", methods=["GET", "POST"])
def sandbox_clock() -> Response:
    """GET: the sandbox time; POST {"advance_seconds": N}: move it forward."""
    from flask import current_app

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if request.method == "POST":
        seconds = _json_object().get("advance_seconds")
        if (not isinstance(seconds, int) or isinstance(seconds, bool)
                or not 0 <= seconds <= MAX_ADVANCE):
            raise validation_error({"advance_seconds": "The advance seconds must be a whole "
                                                       f"number from 0 to {MAX_ADVANCE}."})
        return _json({"now": clock.advance(app, seconds)})
    with store.transaction() as session:
        return _json({"now": clock.now(session)})


@bp.get("/invoice/<code>")
def hosted_invoice(code: str) -> str:
    """The processor's own hosted invoice page (our site shows its own instead)."""
    with store.transaction() as session:
        invoice = session.scalar(select(store.Invoice).where(store.Invoice.code == code))
        if invoice is None:
            abort(404)
        op = session.get(store.Operation, invoice.id)
        assert op is not None
        address = session.get(store.Address, op.address_id) if op.address_id else None
        return render_template("sandbox/invoice.html", invoice=invoice, op=op, address=address)
