"""The processor's v2 API at /sandbox/api/v2: same paths, headers, signatures and shapes.

Every call but /ping needs a JSON body and the two signed headers; errors leave nothing
written. Success bodies are wrapped in `{"data": ...}`, except transactions/info.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import PathConverter

from checkout.wire import decimals, phpjson, signing

from . import accounts, addresses, clock, currencies, invoices, operations, outbox, payloads, store
from .currencies import Currency, amount_text
from .protocol import (
    BAD_KEY,
    BAD_SIGNATURE,
    NO_KEY,
    NO_SIGNATURE,
    RATE_LIMITED_BODY,
    ApiError,
    Fields,
    read_body,
    validation_error,
)

bp = Blueprint("sandbox_api", __name__, url_prefix="/sandbox/api/v2")


class ForeignIdConverter(PathConverter):
    """Any text, slashes included, even leading ones: a foreign_id is the merchant's."""

    regex = ".+?"
    part_isolating = False


@bp.record_once
def _register_converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters.setdefault("foreign_id", ForeignIdConverter)
RATE_LIMIT = 30  # exchange/calculate calls per minute per IP
TAKEN = "The foreign id has already been taken."
NO_EXCHANGE = "Exchange is unavailable for given currencies"
NOT_ENOUGH = "Not enough balance."


@dataclass(frozen=True)
class Caller:
    client_id: int


def ok(data: Any, status: int = 200) -> Response:
    return Response(phpjson.dumps({"data": data}), status=status, mimetype="application/json")


def caller() -> Caller:
    found: Caller = g.sandbox_caller
    return found


def params() -> Fields:
    return Fields(g.sandbox_params)


def base_url() -> str:
    configured: str | None = current_app.config.get("PUBLIC_URL")
    return (configured or request.host_url).rstrip("/")


@bp.errorhandler(ApiError)
def _api_error(error: ApiError) -> Response:
    return error.response()


@bp.errorhandler(IntegrityError)
def _duplicate(_error: IntegrityError) -> Response:
    # Two identical requests at once: the unique foreign_id lets only one through.
    return validation_error({"foreign_id": TAKEN}).response()


def _rate_limit() -> None:
    """exchange/calculate: 30 calls a minute per IP, counted in the database (all processes)."""
    ip = request.remote_addr or "-"
    with store.transaction() as session:
        now = clock.now(session)
        session.execute(delete(store.RateHit).where(store.RateHit.at <= now - 60))
        recent = session.scalar(select(func.count()).select_from(store.RateHit)
                                .where(store.RateHit.ip == ip))
        if (recent or 0) >= RATE_LIMIT:
            raise ApiError(429, RATE_LIMITED_BODY)
        session.add(store.RateHit(ip=ip, at=now))


@bp.before_request
def _authenticate() -> None:
    """Content format first, then the key and signature over the exact raw body."""
    if request.endpoint in ("sandbox_api.ping", "sandbox_api.invalid_url"):
        return
    if request.endpoint == "sandbox_api.exchange_calculate":
        _rate_limit()
    g.sandbox_params = read_body()
    key = request.headers.get("X-Processing-Key")
    signature = request.headers.get("X-Processing-Signature")
    if not key:
        raise ApiError(403, NO_KEY)
    if not signature:
        raise ApiError(403, NO_SIGNATURE)
    with store.transaction() as session:
        account = accounts.by_key(session, key)
        if account is None:
            raise ApiError(403, BAD_KEY)
        secret, client_id = account.api_secret, account.client_id
    if not signing.verify(request.get_data(), secret, signature):
        raise ApiError(403, BAD_SIGNATURE)
    g.sandbox_caller = Caller(client_id)


@bp.get("/ping")
def ping() -> Response:
    return Response("OK", mimetype="text/plain")


_EVERY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@bp.route("/", methods=_EVERY_METHOD, defaults={"path": ""}, merge_slashes=False,
          strict_slashes=False)
@bp.route("/<path:path>", methods=_EVERY_METHOD, merge_slashes=False)
def invalid_url(path: str) -> Response:
    """No such endpoint: the processor answers "No key header" (coinspaid-api.md §1)."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    for method in ("GET", "POST"):
        try:
            endpoint, _ = adapter.match(method=method)
        except HTTPException:
            continue
        if endpoint != request.endpoint:  # a real endpoint, asked with the wrong method
            raise MethodNotAllowed(valid_methods=[method])
    return ApiError(403, NO_KEY).response()


# --- currencies and balances ----------------------------------------------------------

def _currency_entry(c: Currency) -> dict[str, Any]:
    return {"id": c.id, "type": c.type, "currency": c.code,
            "minimum_amount": amount_text(c.minimum_amount),
            "deposit_fee_percent": format(c.deposit_fee_percent, "f"),
            "withdrawal_fee_percent": format(c.withdrawal_fee_percent, "f"),
            "precision": currencies.PLACES}


@bp.post("/currencies/list")
def currencies_list() -> Response:
    fields = params()
    visible = fields.boolean("visible", required=False)
    fields.check()
    return ok([] if visible is False else [_currency_entry(c) for c in currencies.CURRENCIES])


def _pair_entry(source: Currency, target: Currency, now: int) -> dict[str, Any]:
    side: dict[str, Any] = {"currency": source.code, "type": source.type,
                            "min_amount": amount_text(currencies.exchange_minimum(source, now))}
    if source.is_crypto:
        side["min_amount_deposit_with_exchange"] = amount_text(source.minimum_amount)
    return {"currency_from": side, "currency_to": {"currency": target.code, "type": target.type},
            "rate_from": "1", "rate_to": amount_text(currencies.rate(source, target, now))}


def _pairs(*, required: bool) -> Response:
    fields = params()
    source = fields.currency("currency_from", required=required)
    target = fields.currency("currency_to", required=required)
    fields.check()
    with store.transaction() as session:
        now = clock.now(session)
    return ok([_pair_entry(a, b, now) for a in currencies.CURRENCIES
               for b in currencies.CURRENCIES
               if currencies.is_pair(a, b) and (source is None or a is source)
               and (target is None or b is target)])


@bp.post("/currencies/pairs")
def currencies_pairs() -> Response:
    return _pairs(required=False)  # optional filters


@bp.post("/currencies/rates")
def currencies_rates() -> Response:
    return _pairs(required=True)  # the rate of one pair: both currencies are the request


@bp.post("/accounts/list")
def accounts_list() -> Response:
    with store.transaction() as session:
        held = accounts.balances(session, caller().client_id)
    return ok([{"currency": code, "type": currencies.BY_CODE[code].type,
                "balance": amount_text(amount)} for code, amount in held.items()])


# --- deposit addresses ----------------------------------------------------------------

def _pair_or_fail(fields: Fields, name: str, source: Currency | None,
                  target: Currency | None) -> None:
    if source is not None and target is not None and not currencies.is_pair(source, target):
        fields.fail(name, NO_EXCHANGE)


@bp.post("/addresses/take")
def addresses_take() -> Response:
    fields = params()
    foreign_id = fields.string("foreign_id", numbers=True)
    currency = fields.currency("currency", crypto=True)
    convert_to = fields.currency("convert_to", required=False)
    reference = fields.string("end_user_reference", required=False)
    _pair_or_fail(fields, "convert_to", currency, convert_to)
    fields.check()
    assert currency is not None
    with store.transaction() as session:
        now = clock.now(session)
        row = addresses.allocate(
            session, caller().client_id, currency, now, foreign_id=foreign_id,
            convert_to=convert_to.code if convert_to and convert_to is not currency else None,
            end_user_reference=reference)
        data: dict[str, Any] = {"id": row.id, "currency": row.currency,
                                "convert_to": row.convert_to, "address": row.address,
                                "tag": row.tag, "foreign_id": row.foreign_id}
        if reference is not None:
            data["end_user_reference"] = reference
    return ok(data, 201)


# --- withdrawals ----------------------------------------------------------------------

def _foreign_taken(session: Session, scope: str, foreign_id: str) -> bool:
    return session.scalar(select(store.Operation.id).where(
        store.Operation.client_id == caller().client_id, store.Operation.scope == scope,
        store.Operation.foreign_id == foreign_id)) is not None


def _withdrawal_request(fields: Fields, now: int) -> operations.WithdrawalRequest:
    foreign_id = fields.string("foreign_id", numbers=True)
    source = fields.currency("currency")
    chain = fields.currency("convert_to", required=False, crypto=True)
    address = fields.string("address")
    tag = fields.string("tag", required=False, max_length=64, numbers=True)
    reference = fields.string("end_user_reference", required=False)
    if fields.present("amount") and fields.present("amount_to"):
        fields.fail("amount", "The amount and amount to fields may not both be present.")
    elif not fields.present("amount") and not fields.present("amount_to"):
        fields.fail("amount", "The amount field is required when amount to is not present.")
    if source is not None and chain is None and not source.is_crypto:
        fields.fail("convert_to", "The convert to field is required when currency is "
                                  f"{source.code}.")
    elif chain is None and fields.present("amount_to") and not fields.present("amount"):
        # amount_to is an amount of convert_to; without one there is nothing to convert to.
        fields.fail("convert_to", "The convert to field is required when amount to is present.")
    _pair_or_fail(fields, "convert_to", source, chain)
    fields.check()
    assert source is not None and foreign_id is not None and address is not None
    chain = chain or source
    # The chain's minimum, in the currency the amount is given in.
    amount = fields.amount("amount", required=False, minimum=_in(chain.minimum_amount, chain,
                                                                 source, now))
    amount_to = fields.amount("amount_to", required=False, minimum=chain.minimum_amount)
    fields.check()
    return operations.WithdrawalRequest(foreign_id, source, chain, address, tag, amount,
                                        amount_to, reference)


def _in(amount: Decimal, source: Currency, target: Currency, now: int) -> Decimal:
    """`amount` of `source` expressed in `target`, rounded up (a floor stays a floor)."""
    if source is target:
        return amount
    return operations.up(currencies.convert(amount, source, target, now))


@bp.post("/withdrawal/crypto")
def withdrawal_crypto() -> Response:
    with store.transaction() as session:
        now = clock.now(session)
        req = _withdrawal_request(params(), now)
        if _foreign_taken(session, "withdrawal", req.foreign_id):
            raise validation_error({"foreign_id": TAKEN})
        try:
            op = operations.withdraw(session, caller().client_id, req, now, outbox.notify_url())
        except accounts.NotEnoughBalance as exc:
            raise validation_error({"amount": NOT_ENOUGH}) from exc
        # Every accepted withdrawal is answered `processing`, one held by the account's
        # limits too: the merchant hears of that from its `pending` callback.
        data = {"id": op.id, "foreign_id": op.foreign_id, "type": op.type,
                "status": "processing",
                "amount": amount_text(decimals.from_processor(op.amount_sent)),
                "sender_amount": amount_text(decimals.from_processor(op.amount_sent)),
                "sender_currency": op.currency_sent,
                "receiver_amount": amount_text(decimals.from_processor(op.amount_received)),
                "receiver_currency": op.currency_received}
    return ok(data, 201)


# --- exchanges ------------------------------------------------------------------------

def _exchange_fields(fields: Fields, now: int, *, minimum: bool) -> operations.Exchange:
    source = fields.currency("sender_currency")
    target = fields.currency("receiver_currency")
    if source is not None and target is not None and not currencies.is_pair(source, target):
        fields.fail("sender_currency", NO_EXCHANGE)
    if fields.present("sender_amount") and fields.present("receiver_amount"):
        fields.fail("sender_amount", "The sender amount and receiver amount fields may not both "
                                     "be present.")
    elif not fields.present("sender_amount") and not fields.present("receiver_amount"):
        fields.fail("sender_amount", "The sender amount field is required when receiver amount "
                                     "is not present.")
    if fields.present("price_precision") and not (
            isinstance(fields.body["price_precision"], int)
            and not isinstance(fields.body["price_precision"], bool)):
        fields.fail("price_precision", "The price precision must be an integer.")
    fields.check()
    assert source is not None and target is not None
    sender_amount = fields.amount("sender_amount", required=False)
    receiver_amount = fields.amount("receiver_amount", required=False)
    fields.check()
    deal = operations.quote(source, target, sender_amount, receiver_amount, now)
    floor = currencies.exchange_minimum(source, now)
    if minimum and deal.sender_amount < floor:
        # Sic: the documented message ends with a space.
        raise validation_error({"sender_amount": f"The amount must be at least "
                                                 f"{amount_text(floor)} "})
    return deal


def _exchange_data(deal: operations.Exchange, now: int) -> dict[str, Any]:
    return {"sender_amount": amount_text(deal.sender_amount),
            "sender_currency": deal.source.code,
            "receiver_amount": amount_text(deal.receiver_amount),
            "receiver_currency": deal.target.code,
            "fee_amount": amount_text(deal.fee_amount), "fee_currency": deal.target.code,
            "price": amount_text(deal.price)}


@bp.post("/exchange/calculate")
def exchange_calculate() -> Response:
    with store.transaction() as session:
        now = clock.now(session)
        deal = _exchange_fields(params(), now, minimum=False)
        session.add(store.Quote(
            client_id=caller().client_id, sender_currency=deal.source.code,
            receiver_currency=deal.target.code, sender_amount=decimals.text(deal.sender_amount),
            receiver_amount=decimals.text(deal.receiver_amount), price=decimals.text(deal.price),
            ts_release=now + 60))
    data = _exchange_data(deal, now)
    data.update({"ts_fixed": now, "ts_release": now + 60, "fix_period": 60})
    return ok(data)


def _quoted(session: Session, fields: Fields, deal: operations.Exchange,
            now: int) -> operations.Exchange:
    """The deal at a price we quoted this account for this amount, still fixed; else 400."""
    price = fields.amount("price")
    fields.check()
    quotes = session.scalars(select(store.Quote).where(
        store.Quote.client_id == caller().client_id,
        store.Quote.sender_currency == deal.source.code,
        store.Quote.receiver_currency == deal.target.code,
        store.Quote.ts_release >= now).order_by(store.Quote.id.desc())).all()
    given = "sender_amount" if fields.present("sender_amount") else "receiver_amount"
    amount = deal.sender_amount if given == "sender_amount" else deal.receiver_amount
    for q in quotes:
        if Decimal(q.price) == price and Decimal(getattr(q, given)) == amount:
            sender = Decimal(q.sender_amount)
            return operations.Exchange(
                deal.source, deal.target, sender, Decimal(q.receiver_amount),
                currencies.percent_of(Decimal(q.receiver_amount),
                                      currencies.EXCHANGE_FEE_PERCENT), Decimal(q.price))
    raise validation_error({"price": "The price is not valid or has expired."})


def _exchange(fixed: bool) -> Response:
    with store.transaction() as session:
        now = clock.now(session)
        fields = params()
        foreign_id = fields.string("foreign_id", numbers=True)
        deal = _exchange_fields(fields, now, minimum=True)
        assert foreign_id is not None
        if fixed:
            deal = _quoted(session, fields, deal, now)
        if _foreign_taken(session, "exchange", foreign_id):
            raise validation_error({"foreign_id": TAKEN})
        try:
            op = operations.exchange(session, caller().client_id, deal, foreign_id, now,
                                     outbox.notify_url())
        except accounts.NotEnoughBalance as exc:
            raise validation_error({"sender_amount": NOT_ENOUGH}) from exc
        data: dict[str, Any] = {"id": op.id, "foreign_id": op.foreign_id, "type": "exchange"}
        data.update(_exchange_data(deal, now))
        data["status"] = op.status
    return ok(data, 201)


@bp.post("/exchange/fixed")
def exchange_fixed() -> Response:
    return _exchange(fixed=True)


@bp.post("/exchange/now")
def exchange_now() -> Response:
    return _exchange(fixed=False)


# --- invoices -------------------------------------------------------------------------

def _invoice_request(fields: Fields, now: int) -> invoices.InvoiceRequest:
    timer = fields.boolean("timer")
    title = fields.string("title", max_length=50)
    description = fields.string("description", required=False, max_length=1000)
    currency = fields.currency("currency")
    amount = fields.amount("amount")
    foreign_id = fields.string("foreign_id", numbers=True)
    url_success = fields.url("url_success")
    url_failed = fields.url("url_failed")
    email = fields.email("email_user")
    sender = fields.currency("sender_currency", required=False, crypto=True)
    kind = fields.choice("type", ("fill_or_kill", "good_until_expired"), "fill_or_kill")
    reference = fields.string("end_user_reference", required=False)
    if sender is not currency:  # paying in the invoice's own currency needs no exchange
        _pair_or_fail(fields, "sender_currency", sender, currency)
    if currency is not None and amount is not None:
        small = invoices.below_minimum(currency, amount, now)
        if small:
            fields.fail("amount", small)
    fields.check()
    assert timer is not None and title is not None and currency is not None
    assert amount is not None and foreign_id is not None
    assert url_success is not None and url_failed is not None
    return invoices.InvoiceRequest(foreign_id, title, description, currency, amount, timer,
                                   sender, kind, url_success, url_failed, email, reference)


@bp.post("/invoices/create")
def invoices_create() -> Response:
    with store.transaction() as session:
        now = clock.now(session)
        req = _invoice_request(params(), now)
        if invoices.exists(session, caller().client_id, req.foreign_id):
            raise validation_error({"foreign_id": TAKEN})
        op = invoices.create(session, caller().client_id, req, now, outbox.notify_url())
        data = invoices.response(session, op, base_url(), now)
    return ok(data)


# merge_slashes off: a foreign_id "/7" or "a//b" is a different invoice than "7" or "a/b".
@bp.post("/invoices/<foreign_id:foreign_id>/cancel/", merge_slashes=False)
def invoices_cancel(foreign_id: str) -> Response:
    with store.transaction() as session:
        invoices.cancel(session, caller().client_id, foreign_id, clock.now(session))
    return Response("[]", mimetype="application/json")


# --- transactions/info ----------------------------------------------------------------

MAX_ID = 2 ** 63 - 1
_INFO_STATUS = {"processing": "not_confirmed", "verifying": "not_confirmed",
                "error": "cancelled", "rejected": "cancelled"}


def _find(session: Session, fields: Fields) -> store.Operation | None:
    mine = store.Operation.client_id == caller().client_id
    newest = store.Operation.id.desc()
    if "id" in fields.body:
        value = fields.body["id"]
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
            raise validation_error({"id": "The id must be an integer."})
        if int(value) > MAX_ID:  # no such row, and the database's integer would overflow
            return None
        return session.scalar(select(store.Operation).where(mine, store.Operation.id == int(value)))
    if "foreign_id" in fields.body:
        foreign_id = fields.string("foreign_id", numbers=True)
        fields.check()
        found = session.scalar(select(store.Operation).where(
            mine, store.Operation.foreign_id == foreign_id).order_by(newest).limit(1))
        if found is not None:
            return found
        # Deposits carry their foreign_id on the address.
        return session.scalar(select(store.Operation).join(
            store.Address, store.Address.id == store.Operation.address_id).where(
            mine, store.Address.foreign_id == foreign_id,
            store.Operation.type.in_(("deposit", "deposit_exchange")))
            .order_by(newest).limit(1))
    txid = fields.string("txid", max_length=128)
    fields.check()
    found = session.scalar(select(store.Operation).where(mine, store.Operation.txid == txid))
    if found is not None:
        return found
    return session.scalar(select(store.Operation).join(
        store.Payment, store.Payment.operation_id == store.Operation.id).where(
        mine, store.Payment.txid == txid).limit(1))


@bp.get("/transactions/info")
def transactions_info() -> Response:
    fields = params()
    given = [name for name in ("id", "foreign_id", "txid") if name in fields.body]
    if len(given) != 1:
        raise validation_error({"id": "Exactly one of id, foreign id or txid is required."})
    with store.transaction() as session:
        op = _find(session, fields)
        if op is None:
            raise validation_error({given[0]: f"The selected {given[0].replace('_', ' ')} is "
                                              "invalid."}, 404)
        obj = payloads.build(session, op)
    if op.type != "invoice":
        obj["status"] = _INFO_STATUS.get(obj["status"], obj["status"])
    return Response(phpjson.dumps(obj), mimetype="application/json")
