"""Processor callbacks in: verify the raw bytes, store them as received, apply once, forward.

`POST /callbacks/coinspaid` answers 200 only once the callback and its outbox delivery are
committed, so the processor keeps retrying until we really hold it. The same `absorb` path
applies what reconciliation learns, under the same idempotency key.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from flask import Blueprint, Flask, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from . import auth, clock, db, deliveries, invoices, money, payments, snapshot, text
from .auth import BAD_CONTENT, Refusal, refuse
from .late import (
    STATUS_OF_INVOICE_NEWS,
    address_of,
    forward_deposit,
    forward_invoice,
    invoice_of,
    is_late_news,
    late_legs,
    quote_by_address,
    quote_by_foreign_id,
)
from .models import (
    AppliedCallback,
    Callback,
    Deposit,
    DepositAddress,
    Invoice,
    InvoiceQuote,
    Merchant,
)
from .text import NotText

log = logging.getLogger(__name__)
bp = Blueprint("callbacks", __name__)

# The largest callbacks (many invoice instalments) stay far below this; a bound keeps a
# hostile sender from making us buffer and hash megabytes before the signature check.
MAX_BODY = 256 * 1024
MAX_PROCESSOR_ID = 2**63 - 1

TYPES = frozenset(
    {"deposit", "deposit_exchange", "withdrawal", "withdrawal_exchange", "exchange", "invoice"})
DEPOSIT_TYPES = frozenset({"deposit", "deposit_exchange"})

# Forward-only ranks: a state moves only to a higher rank; equal final ranks never replace
# each other (the first final state the processor told us stays).
DEPOSIT_RANK = {"not_confirmed": 0, "confirmed": 1, "cancelled": 1}
DEPOSIT_FINAL = frozenset({"confirmed", "cancelled"})
INVOICE_RANK = {"created": 0, "pending": 1, "processing": 2, "confirmed": 3, "failed": 3}
INVOICE_FINAL = frozenset({"confirmed", "failed"})

# Callback.outcome values.
APPLIED = "applied"  # moved our state forward
STALE = "stale"  # about our payment, but older news than what we hold
DUPLICATE = "duplicate"  # this (id, type, status) was applied before
NOT_OURS = "not_ours"  # an address or invoice this site never issued: forwarded only
IGNORED = "ignored"  # nothing of ours to change (withdrawals, exchanges, other statuses)
FLAGGED = "flagged"  # contradicts what we issued, or is malformed: kept for audit


@dataclass(frozen=True)
class Key:
    """What makes a callback the same news: the processor's id, type and status."""

    processor_id: int
    type: str
    status: str


@dataclass(frozen=True)
class Result:
    outcome: str
    flag: str | None = None
    # About one of our invoice quotes (a late payment): its bytes name our quote, never the
    # shop's invoice, so the shop hears it from us (late.py) or not at all.
    private: bool = False


class Malformed(ValueError):
    """A signed callback whose fields cannot be read; kept and flagged, never applied."""


# ---------------------------------------------------------------------------------------------
# The endpoint


@bp.post("/callbacks/coinspaid")
def receive() -> ResponseReturnValue:
    # Set before the body is read: Werkzeug then refuses a longer body with 413.
    request.max_content_length = MAX_BODY
    # Raw bytes whatever the Content-Type says: the signature covers exactly these.
    raw = request.get_data(cache=False, parse_form_data=False)
    merchant = auth.authenticate_request(raw)  # once per request: the limiter asks it too
    if isinstance(merchant, Refusal):
        log.warning("callback refused: %s", merchant.code)
        return refuse(merchant)
    try:
        payload = auth.parse_object(raw)
    except NotText as exc:
        log.warning("signed callback for merchant %s has no text in %s", merchant.client_id,
                    exc.field)
        return jsonify(errors={exc.field: text.message(exc.field)}), 400
    if payload is None:
        log.warning("signed callback for merchant %s is not a JSON object", merchant.client_id)
        return refuse(BAD_CONTENT)
    with db.transaction() as session:
        callback = absorb(session, merchant, raw, payload, source="processor")
    log.info("callback %s for merchant %s: %s", callback.id, merchant.client_id,
             callback.outcome)
    return jsonify(status="ok")


# ---------------------------------------------------------------------------------------------
# Store, then apply


def absorb(session: Session, merchant: Merchant, raw: bytes, payload: dict[str, Any], *,
           source: str) -> Callback:
    """Keep a callback as received, queue it for the merchant, apply it at most once.

    The `Callback` insert comes first: on SQLite it takes the write lock before anything
    is read, so a concurrent duplicate waits for our commit instead of failing.
    """
    callback = Callback(merchant_id=merchant.client_id, source=source, body=raw,
                        received_at=clock.now())
    describe(callback, payload)
    session.add(callback)
    session.flush()
    result = apply(session, merchant.client_id, callback.id, payload)
    callback.outcome, callback.flag = result.outcome, result.flag
    if forwards_raw(callback, result, source):
        deliveries.enqueue(session, merchant, callback)
    if result.flag:
        log.warning("callback %s for merchant %s flagged: %s", callback.id,
                    merchant.client_id, result.flag)
    session.flush()
    return callback


def forwards_raw(callback: Callback, result: Result, source: str) -> bool:
    """Whether the shop receives these bytes as they came.

    A replay of news already applied is not news: kept and counted, not forwarded again.
    Invoice callbacks about our quotes never go out as received (they carry the processor's
    ids and our quote's foreign_id): `apply_invoice` queues the shop's own event instead;
    an invoice the merchant made at the processor directly is its own, and goes out as is.
    """
    if result.outcome == DUPLICATE or result.private:
        return False
    if callback.type == "invoice" and result.outcome != NOT_OURS:
        return False
    if source == "reconcile":
        # News we had to ask for: the processor's own callback was lost, and may never
        # reach us, so the shop hears it from us now (in the same callback shape, signed).
        return result.outcome == APPLIED
    return True


def describe(callback: Callback, payload: dict[str, Any]) -> None:
    """Copy the searchable fields, as far as they are well-formed."""
    raw_id = payload.get("id")
    callback.processor_id = raw_id if _valid_id(raw_id) else None
    callback.type = _short_text(payload.get("type"))
    callback.status = _short_text(payload.get("status"))


def _valid_id(value: Any) -> bool:
    return type(value) is int and 0 < value <= MAX_PROCESSOR_ID


def _storable(value: str) -> bool:
    """PostgreSQL text cannot hold NUL: such a value would fail the whole transaction (a 500,
    the callback lost) instead of being kept and flagged."""
    return "\x00" not in value


def _short_text(value: Any) -> str | None:
    ok = isinstance(value, str) and 0 < len(value) <= 32 and _storable(value)
    return value if ok else None


def key_of(payload: dict[str, Any]) -> Key:
    raw_id, type_, status = payload.get("id"), payload.get("type"), payload.get("status")
    if not _valid_id(raw_id):
        raise Malformed("id is not a positive integer")
    if _short_text(type_) is None or _short_text(status) is None:
        raise Malformed("type or status is missing")
    return Key(cast(int, raw_id), cast(str, type_), cast(str, status))


def apply(session: Session, merchant_id: int, callback_id: int,
          payload: dict[str, Any]) -> Result:
    """Apply one callback's news to our state, once per (id, type, status), forward only."""
    try:
        key = key_of(payload)
    except Malformed as exc:
        return Result(FLAGGED, f"malformed: {exc}")
    if key.type not in TYPES:
        return Result(IGNORED)
    try:
        if not claim_key(session, merchant_id, key, callback_id,
                         news_of(key, payload)):
            return Result(DUPLICATE)
        if key.type in DEPOSIT_TYPES:
            return apply_deposit(session, merchant_id, key, payload, callback_id)
        if key.type == "invoice":
            return apply_invoice(session, merchant_id, key, payload, callback_id)
    except Malformed as exc:
        return Result(FLAGGED, f"malformed: {exc}")
    # Withdrawals and exchanges are the merchant's own business: forwarded, nothing to show.
    return Result(IGNORED)


def insert_ignoring_conflict(session: Session, model: type[Any], values: dict[str, Any],
                             unique: list[str]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING: True when this call inserted the row.

    The database's unique constraint decides between concurrent writers; the loser
    waits for the winner's commit (PostgreSQL) or for the write lock (SQLite). Whether
    a row was inserted is read from RETURNING: drivers disagree on rowcount here.
    """
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(model).values(**values).on_conflict_do_nothing(index_elements=unique)
    return session.execute(stmt.returning(model.id)).first() is not None


def news_of(key: Key, payload: dict[str, Any]) -> str:
    """The status part of the idempotency key: the status, and for an open invoice what is
    still missing too, so that each instalment (`pending` with a smaller remaining amount)
    is news of its own."""
    if key.type != "invoice" or key.status in INVOICE_FINAL:
        return key.status
    remaining = _remaining(payload)
    if remaining is None:
        return key.status
    news = f"{key.status}:{money.plain(remaining)}"
    if len(news) > 32:
        raise Malformed("remaining_amount is out of bounds")
    return news


def claim_key(session: Session, merchant_id: int, key: Key, callback_id: int,
              status: str | None = None) -> bool:
    return insert_ignoring_conflict(
        session, AppliedCallback,
        {"merchant_id": merchant_id, "processor_id": key.processor_id, "type": key.type,
         "status": status or key.status, "callback_id": callback_id},
        ["merchant_id", "processor_id", "type", "status"])


def key_applied(session: Session, merchant_id: int, key: Key) -> bool:
    return session.scalar(select(AppliedCallback.id).where(
        AppliedCallback.merchant_id == merchant_id,
        AppliedCallback.processor_id == key.processor_id,
        AppliedCallback.type == key.type,
        AppliedCallback.status == key.status)) is not None


# ---------------------------------------------------------------------------------------------
# Deposits


@dataclass(frozen=True)
class DepositFacts:
    currency: str
    amount: str
    txid: str | None
    confirmations: int
    refusal: str | None = None


def refusal_of(payload: dict[str, Any]) -> str | None:
    """Why the processor refused a payment, when its `error` says it was too small."""
    error = payload.get("error")
    if isinstance(error, str) and "less than minimum" in error.lower():
        return payments.REFUSED_BELOW_MINIMUM
    return None


def _object(payload: dict[str, Any], name: str) -> dict[str, Any]:
    value = payload.get(name)
    if not isinstance(value, dict):
        raise Malformed(f"{name} is missing")
    return value


def _text_or_none(value: Any) -> str | None:
    """Tags come as strings or numbers (XRP); compare them as text."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Malformed("tag is not text")
    return str(value)


def _blockchain_legs(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The legs that moved coins to the address; a deposit_exchange adds an exchange leg."""
    legs = payload.get("transactions")
    if not isinstance(legs, list):
        return []
    return [leg for leg in legs
            if isinstance(leg, dict) and leg.get("transaction_type") != "exchange"]


def _legs_total(legs: list[dict[str, Any]]) -> Decimal | None:
    """What several legs of one deposit add up to; None when there is no leg."""
    if not legs:
        return None
    try:
        return sum((money.from_processor(leg.get("amount")) for leg in legs), Decimal(0))
    except money.AmountError as exc:
        raise Malformed("a transaction amount is missing or not a number") from exc


def _confirmations(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 10:
        return int(value)
    return 0


def deposit_facts(payload: dict[str, Any], address: dict[str, Any]) -> DepositFacts:
    """What the payer sent: the crypto amount (the processor's string is the truth)."""
    sent = payload.get("currency_sent")
    legs = _blockchain_legs(payload)
    leg = legs[0] if legs else None
    raw_amount: Any = sent.get("amount") if isinstance(sent, dict) else None
    if raw_amount is None:
        # Without currency_sent the legs say what arrived: all of them, not the first.
        raw_amount = _legs_total(legs)
    try:
        amount = money.from_processor(raw_amount)
    except money.AmountError as exc:
        raise Malformed("amount is missing or not a number") from exc
    if amount < 0:
        raise Malformed("amount is negative")
    currency = address.get("currency")
    if not isinstance(currency, str):
        raise Malformed("crypto_address.currency is missing")
    txid = leg.get("txid") if leg is not None else None
    return DepositFacts(
        currency=currency.upper(),
        amount=money.text(amount),
        txid=txid if isinstance(txid, str) and len(txid) <= 255 and _storable(txid) else None,
        confirmations=_confirmations(leg.get("confirmations")) if leg is not None else 0,
        refusal=refusal_of(payload) if payload.get("status") == "cancelled" else None,
    )


def find_address(session: Session, merchant_id: int,
                 crypto_address: dict[str, Any]) -> DepositAddress | Result:
    """Our address this callback is about; NOT_OURS, or FLAGGED when it contradicts ours."""
    address = crypto_address.get("address")
    if not isinstance(address, str) or not address or not _storable(address):
        raise Malformed("crypto_address.address is missing")
    ours = session.scalars(select(DepositAddress).where(
        DepositAddress.merchant_id == merchant_id, DepositAddress.address == address,
    ).order_by(DepositAddress.id)).all()
    if not ours:
        return Result(NOT_OURS)
    tag = _text_or_none(crypto_address.get("tag"))
    same_tag = [a for a in ours if a.tag == tag]
    if not same_tag:
        return Result(FLAGGED, "tag differs from the tag we issued for this address")
    # One address may have been issued more than once (an EVM address for ether and its
    # tokens; the same foreign_id with and without conversion): the row the callback
    # describes best is the one it is about; `contradiction` then judges that row.
    return max(same_tag, key=lambda row: _likeness(row, crypto_address))


def _likeness(row: DepositAddress, crypto_address: dict[str, Any]) -> tuple[bool, bool, bool]:
    currency, foreign_id = crypto_address.get("currency"), crypto_address.get("foreign_id")
    convert_to = crypto_address.get("convert_to") or ""
    return (
        isinstance(currency, str) and currency.upper() == row.currency.upper(),
        foreign_id is not None and str(foreign_id) == row.foreign_id,
        isinstance(convert_to, str) and convert_to.upper() == row.convert_to.upper(),
    )


def contradiction(ours: DepositAddress, payload: dict[str, Any],
                  crypto_address: dict[str, Any]) -> str | None:
    """Why a callback for our address cannot be about the payment we asked for."""
    currency = crypto_address.get("currency")
    if not isinstance(currency, str) or currency.upper() != ours.currency.upper():
        return "currency differs from the currency of our address"
    sent = payload.get("currency_sent")
    if isinstance(sent, dict) and isinstance(sent.get("currency"), str) \
            and sent["currency"].upper() != ours.currency.upper():
        return "currency sent differs from the currency of our address"
    for leg in _blockchain_legs(payload):
        # Without currency_sent a leg's amount is what we count: it must be our coin.
        leg_currency = leg.get("currency")
        if isinstance(leg_currency, str) and leg_currency.upper() != ours.currency.upper():
            return "currency of the transaction differs from the currency of our address"
    if crypto_address.get("cross_currency") in (True, "true", "1"):
        return "cross-currency deposit: not the currency our address was issued for"
    foreign_id = crypto_address.get("foreign_id")
    if foreign_id is not None and str(foreign_id) != ours.foreign_id:
        return "foreign_id differs from the foreign_id of our address"
    return None


def apply_deposit(session: Session, merchant_id: int, key: Key,
                  payload: dict[str, Any], callback_id: int | None = None) -> Result:
    crypto_address = _object(payload, "crypto_address")
    quote = late_quote(session, merchant_id, crypto_address)
    if quote is not None:
        return replace(apply_late_deposit(session, merchant_id, key, payload, crypto_address,
                                          quote, callback_id), private=True)
    found = find_address(session, merchant_id, crypto_address)
    if isinstance(found, Result):
        return found
    problem = contradiction(found, payload, crypto_address)
    if problem:
        return Result(FLAGGED, problem)
    if key.status not in DEPOSIT_RANK:
        return Result(IGNORED)
    facts = deposit_facts(payload, crypto_address)
    result = advance_deposit(session, merchant_id, key, found, facts)
    if result.outcome == APPLIED:
        pages = payments.refresh_for_address(session, found.id)
        # A new transaction changes what the address's pages list even when their status
        # stays (the Deposit row went in by a Core insert the snapshot cannot see).
        snapshot.mark(session, [page.id for page in pages])
    return result


def late_quote(session: Session, merchant_id: int,
               crypto_address: dict[str, Any]) -> InvoiceQuote | None:
    """The invoice quote whose address a deposit callback is about, if it is one of ours:
    by the address's foreign_id (our quote's, unique), else by the address itself."""
    if crypto_address.get("foreign_id") is not None:
        return quote_by_foreign_id(session, merchant_id, crypto_address["foreign_id"])
    address = crypto_address.get("address")
    if not isinstance(address, str) or not address or not _storable(address):
        return None
    return quote_by_address(session, merchant_id, address,
                                 _text_or_none(crypto_address.get("tag")))


def apply_late_deposit(session: Session, merchant_id: int, key: Key, payload: dict[str, Any],
                       crypto_address: dict[str, Any], quote: InvoiceQuote,
                       callback_id: int | None) -> Result:
    """A deposit callback at one of our quotes' addresses: money the invoice did not take
    (it came after the invoice failed). Kept as the address's Deposit, shown on the invoice's
    page, and told to the shop once in its own ids (late.py)."""
    invoice = invoice_of(session, quote)
    if quote.address is None or crypto_address.get("address") != quote.address:
        return Result(FLAGGED, "address differs from the address of our invoice")
    if _text_or_none(crypto_address.get("tag")) != quote.tag:
        return Result(FLAGGED, "tag differs from the tag of our invoice")
    ours = address_of(session, quote, invoice)
    problem = contradiction(ours, payload, crypto_address)
    if problem:
        return Result(FLAGGED, problem)
    if key.status not in DEPOSIT_RANK:
        return Result(IGNORED)
    result = advance_deposit(session, merchant_id, key, ours,
                             deposit_facts(payload, crypto_address))
    if result.outcome == APPLIED:
        snapshot.mark(session, [invoice.page_id])
        merchant = session.get(Merchant, merchant_id)
        assert merchant is not None
        forward_deposit(session, merchant, invoice, payload, callback_id)
    return result


def apply_late_invoice(session: Session, merchant_id: int, key: Key, payload: dict[str, Any],
                       quote: InvoiceQuote, invoice: Invoice, callback_id: int) -> Result:
    """An invoice callback reporting money after the quote or the invoice failed: the
    invoice keeps its first final word; the money is kept as a Deposit at the quote's
    address (keyed by the processor's invoice id, one row per quote, moving forward from
    seen to credited), shown on the page, and the shop hears the processor's news once."""
    legs = late_legs(quote, _legs(payload))
    ours = address_of(session, quote, invoice)
    amount = sum((Decimal(str(leg["amount"])) for leg in legs), Decimal(0))
    txid = legs[0].get("txid")
    facts = DepositFacts(
        currency=quote.sender_currency.upper(), amount=money.text(amount),
        txid=txid if isinstance(txid, str) else None,
        confirmations=min(int(leg.get("confirmations") or 0) for leg in legs))
    status = STATUS_OF_INVOICE_NEWS[key.status]
    result = advance_deposit(session, merchant_id, Key(key.processor_id, key.type, status),
                             ours, facts)
    if result.outcome == APPLIED:
        snapshot.mark(session, [invoice.page_id])
        merchant = session.get(Merchant, merchant_id)
        assert merchant is not None
        forward_invoice(session, merchant, invoice, quote, payload, key.status,
                             callback_id)
    return result


def not_forward(current: str, new: str, rank: dict[str, int],
                final: frozenset[str]) -> Result | None:
    """None when `new` moves `current` forward; otherwise why the news is not applied.

    A final state keeps the first final word; another final status after it (money credited
    to a payment we showed as cancelled or failed, or the reverse) is flagged, so that an
    operator can find it.
    """
    if current in final:
        if new in final and new != current:
            return Result(FLAGGED, f"{new} after final {current}")
        return Result(STALE)
    if rank[new] <= rank.get(current, -1):
        return Result(STALE)
    return None


def advance_deposit(session: Session, merchant_id: int, key: Key, address: DepositAddress,
                    facts: DepositFacts) -> Result:
    """Create or move the `Deposit` row forward; a final status is never left."""
    now = clock.now()
    created = insert_ignoring_conflict(session, Deposit, {
        "merchant_id": merchant_id, "processor_id": key.processor_id, "address_id": address.id,
        "currency": facts.currency, "amount": facts.amount, "txid": facts.txid,
        "confirmations": facts.confirmations, "status": key.status,
        "refusal": facts.refusal, "created_at": now, "updated_at": now,
    }, ["merchant_id", "processor_id"])
    if created:
        return Result(APPLIED)
    # Another status of the same transaction may be applied right now: serialise on the row.
    deposit = session.scalars(select(Deposit).where(
        Deposit.merchant_id == merchant_id, Deposit.processor_id == key.processor_id,
    ).with_for_update().execution_options(populate_existing=True)).one()
    if deposit.address_id != address.id:
        return Result(FLAGGED, "transaction id was seen before at another address")
    refused = not_forward(deposit.status, key.status, DEPOSIT_RANK, DEPOSIT_FINAL)
    if refused:
        return refused
    deposit.status = key.status
    deposit.refusal = facts.refusal
    deposit.amount = facts.amount
    deposit.txid = facts.txid or deposit.txid
    deposit.confirmations = max(deposit.confirmations, facts.confirmations)
    deposit.updated_at = now
    session.flush()
    return Result(APPLIED)


# ---------------------------------------------------------------------------------------------
# Invoices


FAILURE_REASONS = (
    ("paid less", "underpaid"),
    ("processing too long", "timeout"),
    ("not paid", "expired"),
    ("cancel", "cancelled"),
)


def failure_reason(error: Any) -> str | None:
    text = error.lower() if isinstance(error, str) else ""
    for needle, reason in FAILURE_REASONS:
        if needle in text:
            return reason
    return None


def _remaining(payload: dict[str, Any]) -> Decimal | None:
    sent = payload.get("currency_sent")
    if not isinstance(sent, dict) or sent.get("remaining_amount") is None:
        return None
    return _bounded_amount(sent.get("remaining_amount"), "remaining_amount")


def _bounded_amount(value: Any, name: str) -> Decimal:
    try:
        amount = money.from_processor(value)
    except money.AmountError as exc:
        raise Malformed(f"{name} is not a number") from exc
    if amount < 0 or amount.adjusted() >= 20 or len(money.text(amount)) > 40:
        raise Malformed(f"{name} is out of bounds")
    return amount


def _bounded_text(value: Any, limit: int) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _storable(value):
        return None
    return value[:limit]


def _unix_time(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**37:
        return None
    return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)


LEG_TEXT = {"currency": 16, "transaction_type": 16, "type": 16, "address": 255, "tag": 64,
            "txid": 255}
MAX_LEGS = 50


def _legs(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The processor's transaction legs, each field bounded (what the shop's event and the
    receipt show); an unreadable leg is left out rather than stored."""
    legs = payload.get("transactions")
    if not isinstance(legs, list):
        return []
    kept: list[dict[str, Any]] = []
    for leg in legs[:MAX_LEGS]:
        if not isinstance(leg, dict):
            continue
        item: dict[str, Any] = {}
        if _valid_id(leg.get("id")):
            item["id"] = leg["id"]
        for name, limit in LEG_TEXT.items():
            item[name] = _bounded_text(leg.get(name), limit)
        try:
            item["amount"] = money.text(_bounded_amount(leg.get("amount"), "amount"),
                                        invoices.PLACES)
        except Malformed:
            continue
        item["confirmations"] = _confirmations(leg.get("confirmations"))
        kept.append(item)
    return kept


def _fees(payload: dict[str, Any]) -> list[dict[str, Any]]:
    fees = payload.get("fees")
    if not isinstance(fees, list):
        return []
    kept = []
    for fee in fees[:MAX_LEGS]:
        if not isinstance(fee, dict):
            continue
        try:
            amount = money.text(_bounded_amount(fee.get("amount"), "fee"), invoices.PLACES)
        except Malformed:
            continue
        kept.append({"type": _bounded_text(fee.get("type"), 64),
                     "currency": _bounded_text(fee.get("currency"), 16), "amount": amount})
    return kept


def invoice_moves(current: str, new: str, current_remaining: Decimal | None,
                  new_remaining: Decimal | None) -> Result | None:
    """None when `new` is news that moves an invoice (or quote) forward; else why not.

    Final states keep the first final word. Otherwise money decides first: less still
    missing is always news (an instalment), more missing is older news. With the same amount
    missing the status must rank higher, except `processing` -> `pending` while something is
    still missing: a seen part confirmed and the rest is due (good_until_expired).
    """
    if current in INVOICE_FINAL or new in INVOICE_FINAL:
        return not_forward(current, new, INVOICE_RANK, INVOICE_FINAL)
    if current_remaining is not None and new_remaining is not None:
        if new_remaining < current_remaining:
            return None
        if new_remaining > current_remaining:
            return Result(STALE)
    if current == "processing" and new == "pending" and new_remaining:
        return None
    if INVOICE_RANK[new] > INVOICE_RANK.get(current, -1):
        return None
    return Result(STALE)


def adopt_quote(session: Session, quote: InvoiceQuote, key: Key, payload: dict[str, Any]
                ) -> None:
    """Complete an unanswered quote from the processor's callback, as its answer would have;
    it becomes the invoice's current quote unless another one is."""
    quote.processor_id = key.processor_id
    crypto = payload.get("crypto_address")
    if isinstance(crypto, dict):
        # An empty address is the processor saying it gave none (see shop_event).
        quote.address = _bounded_text(crypto.get("address"), 255) or None
        quote.tag = _bounded_text(_text_or_none(crypto.get("tag")), 64)
    sent = payload.get("currency_sent")
    if isinstance(sent, dict) and sent.get("amount") is not None:
        quote.sender_amount = money.text(_bounded_amount(sent.get("amount"), "amount"))
    quote.fixed_at = _unix_time(payload.get("fixed_at"))
    quote.release_at = _unix_time(payload.get("expires_at"))
    quote.status = "pending"
    quote.remaining_amount = quote.sender_amount
    session.flush()
    if invoices.current_quote(session, quote.invoice_id) is None:
        invoices.make_current(session, quote.invoice_id, quote.id)
        quote.current = True


def apply_invoice(session: Session, merchant_id: int, key: Key, payload: dict[str, Any],
                  callback_id: int) -> Result:
    """A processor invoice callback: about one of our quotes, by its processor id.

    The quote always keeps the processor's latest word (amounts, legs). The shop's invoice
    moves forward only with its current quote; a superseded quote moves it only when money
    arrived there in full (confirmed); any other money on a superseded quote is flagged and
    kept. An expired quote of an invoice without a timer leaves the invoice open: the
    customer may pick again. Each move is forwarded to the shop once, as its own invoice.
    """
    quote = session.scalars(select(InvoiceQuote).where(
        InvoiceQuote.merchant_id == merchant_id, InvoiceQuote.processor_id == key.processor_id,
    ).with_for_update().execution_options(populate_existing=True)).first()
    foreign_id = payload.get("foreign_id")
    if quote is None and isinstance(foreign_id, str) and _storable(foreign_id):
        # A quote whose processor answer we never stored (lost, or not yet committed): the
        # foreign_id is ours, stored before the call, so the callback still finds it.
        quote = session.scalars(select(InvoiceQuote).where(
            InvoiceQuote.merchant_id == merchant_id, InvoiceQuote.foreign_id == foreign_id,
            InvoiceQuote.processor_id.is_(None),
        ).with_for_update().execution_options(populate_existing=True)).first()
        if quote is not None:
            adopt_quote(session, quote, key, payload)
    if quote is None:
        return Result(NOT_OURS)
    if foreign_id is not None and str(foreign_id) != quote.foreign_id:
        return Result(FLAGGED, "foreign_id differs from the foreign_id of our invoice")
    if key.status not in INVOICE_RANK:
        return Result(IGNORED)
    invoice = session.scalars(select(Invoice).where(Invoice.id == quote.invoice_id)
                              .with_for_update().execution_options(populate_existing=True)
                              ).one()
    if is_late_news(quote, invoice, key.status, _legs(payload)):
        return apply_late_invoice(session, merchant_id, key, payload, quote, invoice,
                                  callback_id)
    remaining = _remaining(payload)
    held = None if quote.remaining_amount is None else Decimal(quote.remaining_amount)
    legs = _legs(payload)
    error = _bounded_text(payload.get("error"), 255) or ""
    refused = invoice_moves(quote.status, key.status, held, remaining)
    if refused is not None and refused.outcome == FLAGGED:
        return refused
    if refused is None:
        quote.status = key.status
        if remaining is not None:
            quote.remaining_amount = money.text(remaining)
            if quote.sender_amount is not None:
                paid = max(Decimal(quote.sender_amount) - remaining, Decimal(0))
                quote.amount_paid = money.text(paid)
        quote.transactions_json = json.dumps(legs)
        quote.release_at = _unix_time(payload.get("expires_at")) or quote.release_at
        quote.error = error or None
        quote.updated_at = clock.now()
        session.flush()
    money_seen = bool(legs) or Decimal(quote.amount_paid or "0") > 0
    if not quote.current:
        if key.status != "confirmed" or refused is not None:
            if money_seen:
                quote.flag = f"{key.status}: payment to a superseded quote"
                return Result(FLAGGED, quote.flag)
            return refused or Result(IGNORED)
    if refused is not None:
        return refused
    if not invoice.timer and key.status == "failed" and not money_seen and \
            failure_reason(error) == "expired" and invoice.status in ("created", "pending"):
        # No shop-facing timer: the price expired, not the invoice. A fresh pick quotes again.
        invoices.sync_page(session, invoice, quote)
        return Result(APPLIED)
    # The invoice follows one quote at a time: what that quote last missed is comparable.
    moved = invoice_moves(invoice.status, key.status, held, remaining)
    if moved is not None:
        if moved.outcome == FLAGGED or money_seen and key.status != invoice.status:
            return Result(FLAGGED, moved.flag or f"{key.status} after {invoice.status}")
        invoices.sync_page(session, invoice, invoices.current_quote(session, invoice.id))
        return moved
    if not quote.current:
        # Paid in full where the customer was asked before: that quote is the invoice's now.
        invoices.make_current(session, invoice.id, quote.id)
    invoice.status = key.status
    invoice.reason = failure_reason(error) if key.status == "failed" else None
    invoice.updated_at = clock.now()
    session.flush()
    invoices.sync_page(session, invoice, quote)
    merchant = session.get(Merchant, merchant_id)
    assert merchant is not None
    invoices.forward(session, merchant, invoice, quote, status=key.status, error=error,
                     fees=_fees(payload), callback_id=callback_id)
    return Result(APPLIED)


def init_app(app: Flask) -> None:
    """Register the processor-callback blueprint (exempt from CSRF: it is signed instead)."""
    app.register_blueprint(bp)
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(bp)
