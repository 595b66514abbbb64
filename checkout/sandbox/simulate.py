"""Sandbox-only controls outside the API: a payer sending coins, the clock, the hosted invoice.

These stand in for the world around a processor (the blockchain, time passing, the
payer's browser); they need no API key, and exist only where the sandbox is mounted.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, render_template, request
from sqlalchemy import select

from checkout.wire import decimals, jsontext

from . import (
    addresses,
    backoffice,
    clock,
    currencies,
    invoices,
    operations,
    outbox,
    payloads,
    store,
)
from .protocol import ApiError, validation_error

bp = Blueprint("sandbox_world", __name__, url_prefix="/sandbox", template_folder="templates")
STATUSES = ("not_confirmed", "confirmed", "cancelled")
MAX_ADVANCE = 400 * 24 * 3600


@bp.errorhandler(ApiError)
def _api_error(error: ApiError) -> Response:
    return error.response()


@bp.errorhandler(backoffice.Refused)
def _refused(error: backoffice.Refused) -> Response:
    return validation_error({error.field: error.message}, error.status).response()


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


def _whole(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2 ** 63:
        raise validation_error({name: f"The {name.replace('_', ' ')} must be a positive "
                                      "integer."})
    return value


def _app() -> Flask:
    return current_app._get_current_object()  # type: ignore[attr-defined]


DECISIONS = ("approve", "cancel")


@bp.post("/simulate/withdrawal")
def simulate_withdrawal() -> Response:
    """A person in the processor's back office approves or cancels a withdrawal that its
    limits hold (`pending`): {"id" | "foreign_id", "decision", "error"?, "client_id"?}."""
    body = _json_object()
    errors: dict[str, str] = {}
    op_id = _whole(body, "id")
    foreign_id = body.get("foreign_id")
    if foreign_id is not None and (not isinstance(foreign_id, str) or not foreign_id):
        errors["foreign_id"] = "The foreign id must be a string."
    if (op_id is None) == (foreign_id is None):
        errors["id"] = "Exactly one of id and foreign id is required."
    decision = body.get("decision")
    if decision not in DECISIONS:
        errors["decision"] = "The decision must be one of " + ", ".join(DECISIONS) + "."
    error = body.get("error")
    if error is not None and (not isinstance(error, str) or not error.strip()
                              or len(error) > 1000):
        errors["error"] = "The error must be a text of at most 1000 characters."
    if decision == "approve" and error is not None:
        errors["error"] = "An approved withdrawal has no error."
    client_id = _whole(body, "client_id")
    if errors:
        raise validation_error(errors)
    done = backoffice.decide(_app(), approve=decision == "approve", op_id=op_id,
                             foreign_id=foreign_id, client_id=client_id, error=error)
    return _json(done)


@bp.post("/simulate/withdrawal-limit")
def simulate_withdrawal_limit() -> Response:
    """The account's withdrawal limit in one currency: {"client_id"?, "currency", "limit"},
    `limit` a decimal string (withdrawals of more wait for approval) or null (off)."""
    body = _json_object()
    errors: dict[str, str] = {}
    currency = currencies.get(body.get("currency"))
    if currency is None:
        errors["currency"] = "The selected currency is invalid."
    limit = None
    if "limit" not in body:
        errors["limit"] = "The limit field is required (null turns the limit off)."
    elif body["limit"] is not None:
        try:
            limit = decimals.parse_amount(body["limit"], currencies.PLACES, allow_zero=True)
        except decimals.AmountError as exc:
            errors["limit"] = f"The limit is invalid: {exc}."
    client_id = _whole(body, "client_id")
    if errors:
        raise validation_error(errors)
    assert currency is not None
    done = backoffice.set_limit(_app(), client_id, currency, limit)
    return _json({"client_id": done.client_id, "currency": done.currency,
                  "limit": None if done.limit is None else currencies.amount_text(done.limit)})


@bp.route("/clock", methods=["GET", "POST"])
def sandbox_clock() -> Response:
    """GET: the sandbox time; POST {"advance_seconds": N}: move it forward."""
    app = _app()
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
