"""Deposit news: a deposit callback moves the `Deposit` row of one of our addresses forward,
and the pages showing that address with it; one at a quote's address is late invoice money.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from .. import clock, money
from ..models import Deposit, DepositAddress, InvoiceQuote, Merchant
from ..pagekinds import deposit as deposit_kind
from ..pagekinds import snapshot
from ..states import CANCELLED
from . import late_news
from .late_news import (
    address_of,
    forward_deposit,
    invoice_of,
    quote_by_address,
    quote_by_foreign_id,
)
from .news_base import (
    APPLIED,
    FLAGGED,
    IGNORED,
    NOT_OURS,
    Key,
    Malformed,
    Result,
    confirmations_of,
    insert_ignoring_conflict,
    not_forward,
    storable,
    text_or_none,
)


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
        return deposit_kind.REFUSED_BELOW_MINIMUM
    return None


def _object(payload: dict[str, Any], name: str) -> dict[str, Any]:
    value = payload.get(name)
    if not isinstance(value, dict):
        raise Malformed(f"{name} is missing")
    return value


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
        txid=txid if isinstance(txid, str) and len(txid) <= 255 and storable(txid) else None,
        confirmations=confirmations_of(leg.get("confirmations")) if leg is not None else 0,
        refusal=refusal_of(payload) if payload.get("status") == CANCELLED else None,
    )


# Built once: each deposit callback asks it (a statement built anew costs about as much as
# the ORM's work to run it).
OUR_ADDRESSES = (select(DepositAddress)
                 .where(DepositAddress.merchant_id == bindparam("merchant"),
                        DepositAddress.address == bindparam("address"))
                 .order_by(DepositAddress.id))


def find_address(session: Session, merchant_id: int,
                 crypto_address: dict[str, Any]) -> DepositAddress | Result:
    """Our address this callback is about; NOT_OURS, or FLAGGED when it contradicts ours."""
    address = crypto_address.get("address")
    if not isinstance(address, str) or not address or not storable(address):
        raise Malformed("crypto_address.address is missing")
    ours = session.scalars(OUR_ADDRESSES, {"merchant": merchant_id, "address": address}).all()
    if not ours:
        return Result(NOT_OURS)
    tag = text_or_none(crypto_address.get("tag"))
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
    if key.status not in deposit_kind.RANK:
        return Result(IGNORED)
    facts = deposit_facts(payload, crypto_address)
    result = advance_deposit(session, merchant_id, key, found, facts)
    if result.outcome == APPLIED:
        refreshed = deposit_kind.refresh_for_address(session, found.id)
        # A new transaction changes what the address's pages list even when their status
        # stays (the Deposit row went in by a Core insert the snapshot cannot see).
        snapshot.mark(session, [page.id for page in refreshed.pages])
        return replace(result, accepted_short=tuple(page.id for page in
                                                    refreshed.accepted_short))
    return result


def late_quote(session: Session, merchant_id: int,
               crypto_address: dict[str, Any]) -> InvoiceQuote | None:
    """The invoice quote whose address a deposit callback is about, if it is one of ours:
    by the address's foreign_id (our quote's, unique), else by the address itself."""
    if crypto_address.get("foreign_id") is not None:
        return quote_by_foreign_id(session, merchant_id, crypto_address["foreign_id"])
    address = crypto_address.get("address")
    if not isinstance(address, str) or not address or not storable(address):
        return None
    return quote_by_address(session, merchant_id, address,
                                 text_or_none(crypto_address.get("tag")))


def apply_late_deposit(session: Session, merchant_id: int, key: Key, payload: dict[str, Any],
                       crypto_address: dict[str, Any], quote: InvoiceQuote,
                       callback_id: int | None) -> Result:
    """A deposit callback at one of our quotes' addresses: money the invoice did not take
    (it came after the invoice failed). Kept as the address's Deposit, shown on the invoice's
    page, and told to the shop once in its own ids (late_news.py)."""
    invoice = invoice_of(session, quote)
    if quote.address is None or crypto_address.get("address") != quote.address:
        return Result(FLAGGED, "address differs from the address of our invoice")
    if text_or_none(crypto_address.get("tag")) != quote.tag:
        return Result(FLAGGED, "tag differs from the tag of our invoice")
    ours = address_of(session, quote, invoice)
    problem = contradiction(ours, payload, crypto_address)
    if problem:
        return Result(FLAGGED, problem)
    if key.status not in deposit_kind.RANK:
        return Result(IGNORED)
    result = advance_deposit(session, merchant_id, key, ours,
                             deposit_facts(payload, crypto_address))
    if result.outcome == APPLIED:
        snapshot.mark(session, [invoice.page_id])
        merchant = session.get(Merchant, merchant_id)
        assert merchant is not None
        forward_deposit(session, merchant, invoice, payload, callback_id)
        late_news.judge(session, merchant, invoice, merchant_id, key.processor_id, payload)
    return result


def advance_deposit(session: Session, merchant_id: int, key: Key, address: DepositAddress,
                    facts: DepositFacts) -> Result:
    """Create or move the `Deposit` row forward; a final status is never left."""
    deposit_kind.forget_read(session)  # what was read of the address's deposits is old now
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
    refused = not_forward(deposit.status, key.status, deposit_kind.RANK, deposit_kind.FINAL)
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
